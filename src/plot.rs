//! Training curves as SVG (plotters): per-task training and validation loss by epoch, and the
//! task weights, in two panels.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::EvalRecord;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("plot {}", path.display()), e.to_string())
}

/// Writes the curves of `history` for tasks `names` to an SVG file (atomically).
pub fn write_svg(path: &Path, names: &[String], history: &[EvalRecord]) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let (top, bottom) = root.split_vertically(400);
        let epochs = history.len().max(1) as f64;
        let losses = history.iter().flat_map(|h| h.train_loss.iter().chain(&h.val_loss)).copied().filter(|v| *v > 0.0);
        let (lo, hi) = losses.fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo.ln(), hi.ln()) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(&top)
            .caption("loss by epoch (log scale; solid: train, dashed: validation)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..epochs.max(2.0), lo..hi + 1e-9)
            .map_err(|e| plot_err(path, e))?;
        chart.configure_mesh().x_desc("epoch").y_desc("ln(loss)").draw().map_err(|e| plot_err(path, e))?;
        for (t, name) in names.iter().enumerate() {
            let c = COLORS[t % COLORS.len()];
            let train: Vec<(f64, f64)> = history
                .iter()
                .filter_map(|h| h.train_loss.get(t).filter(|v| **v > 0.0).map(|v| (h.epoch as f64, v.ln())))
                .collect();
            chart
                .draw_series(LineSeries::new(train, c.stroke_width(2)))
                .map_err(|e| plot_err(path, e))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            let val: Vec<(f64, f64)> = history
                .iter()
                .filter_map(|h| h.val_loss.get(t).filter(|v| **v > 0.0).map(|v| (h.epoch as f64, v.ln())))
                .collect();
            for pair in val.windows(2).step_by(2) {
                chart.draw_series(LineSeries::new(pair.to_vec(), c.stroke_width(1))).map_err(|e| plot_err(path, e))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;

        let wmax = history.iter().flat_map(|h| h.weights.iter()).fold(0f32, |a, &v| a.max(v.abs())).max(1e-6) as f64;
        let wmin = history.iter().flat_map(|h| h.weights.iter()).fold(0f32, |a, &v| a.min(v)) as f64;
        let mut wchart = ChartBuilder::on(&bottom)
            .caption("task weights (or a gradient method's coefficients)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..epochs.max(2.0), wmin.min(0.0)..wmax * 1.1)
            .map_err(|e| plot_err(path, e))?;
        wchart.configure_mesh().x_desc("epoch").draw().map_err(|e| plot_err(path, e))?;
        for t in 0..names.len() {
            let c = COLORS[t % COLORS.len()];
            let w: Vec<(f64, f64)> =
                history.iter().filter_map(|h| h.weights.get(t).map(|v| (h.epoch as f64, f64::from(*v)))).collect();
            wchart.draw_series(LineSeries::new(w, c.stroke_width(2))).map_err(|e| plot_err(path, e))?;
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::report::write_text(path, &svg)
}

/// Writes a heatmap of the affinity matrix `z` (`z[i·T + j]` = Z[i→j]: rows the task whose
/// step, columns the task whose loss) to an SVG file, each cell labelled with its value; blue
/// for help, red for harm, white for none (NaN: grey).
pub fn write_affinity_svg(path: &Path, names: &[String], z: &[f64]) -> Result<()> {
    let t = names.len();
    let cell = 90i32;
    let (left, top) = (140i32, 70i32);
    // Wide enough for the title line whatever the number of tasks.
    let size = ((left + cell * t as i32 + 20).max(640) as u32, (top + cell * t as i32 + 40) as u32);
    let scale = z.iter().filter(|v| v.is_finite()).fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let text = |s: &str, x: i32, y: i32, px: u32| Text::new(s.to_string(), (x, y), ("sans-serif", px));
        root.draw(&text(
            "lookahead affinity Z[row → column]: 1 − L_col after a step on row's loss / before",
            10,
            10,
            16,
        ))
        .map_err(|e| plot_err(path, e))?;
        for (i, name) in names.iter().enumerate() {
            let y = top + cell * i as i32 + cell / 2 - 8;
            root.draw(&text(name, 8, y, 15)).map_err(|e| plot_err(path, e))?;
            root.draw(&text(name, left + cell * i as i32 + 6, top - 22, 15)).map_err(|e| plot_err(path, e))?;
            for j in 0..t {
                let v = z[i * t + j];
                let color = if !v.is_finite() {
                    RGBColor(200, 200, 200)
                } else {
                    let a = (v.abs() / scale).min(1.0);
                    let fade = |c: u8| (255.0 - a * (255.0 - f64::from(c))) as u8;
                    if v >= 0.0 {
                        RGBColor(fade(31), fade(119), fade(180))
                    } else {
                        RGBColor(fade(214), fade(39), fade(40))
                    }
                };
                let (x0, y0) = (left + cell * j as i32, top + cell * i as i32);
                root.draw(&Rectangle::new([(x0, y0), (x0 + cell - 2, y0 + cell - 2)], color.filled()))
                    .map_err(|e| plot_err(path, e))?;
                let label = if v.is_finite() { format!("{v:.4}") } else { "–".into() };
                root.draw(&text(&label, x0 + 10, y0 + cell / 2 - 8, 14)).map_err(|e| plot_err(path, e))?;
            }
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::report::write_text(path, &svg)
}
