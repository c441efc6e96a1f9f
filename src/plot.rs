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
    let tmp = path.with_extension("svg.tmp");
    std::fs::write(&tmp, svg)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })
}
