//! `hydra eval` and `hydra predict`: a checkpoint on a split of a config's data, or on the
//! rows of a CSV file.

use std::path::Path;

use crate::config::Config;
use crate::data::Table;
use crate::error::Result;
use crate::experiment;
use crate::gpu::Context;
use crate::train::{Evaluator, Scaling};

/// Evaluates a checkpoint on one split of a config's data.
pub fn eval(config: &Path, checkpoint: &Path, split: &str, json: bool) -> Result<()> {
    let s = crate::data::Split::parse(split, "--split")?;
    let cfg = Config::load(config)?;
    let prepared = experiment::prepare(&cfg)?;
    let (info, params) = experiment::load_model(checkpoint)?;
    if info.encoding != prepared.encoding {
        return Err(crate::Error::invalid(
            "--checkpoint",
            "its vocabularies or imputed means differ from those of the config's training rows",
        ));
    }
    if info.features != prepared.splits.train.feature_names {
        return Err(crate::Error::invalid(
            "--checkpoint",
            format!(
                "trained on features {:?}, the config gives {:?}",
                info.features, prepared.splits.train.feature_names
            ),
        ));
    }
    let ctx = Context::new()?;
    let mut ev = Evaluator::new(ctx, &info.spec, &info.tasks, info.scaling.clone());
    let mut data = prepared.raw[s].clone();
    // The checkpoint's own scaling, applied to the raw split.
    data = Scaling::apply(&info.scaling, &data);
    if data.labels.len() != info.tasks.len() {
        return Err(crate::Error::invalid("--config", "its tasks differ from the checkpoint's"));
    }
    let (losses, mets) = ev.evaluate(crate::train::Params::Host(&params), &data)?;
    if json {
        let tasks: serde_json::Map<String, serde_json::Value> =
            info.tasks.iter().zip(&mets).map(|(t, m)| (t.name.clone(), serde_json::json!({ split: m }))).collect();
        println!("{}", serde_json::json!({ "tasks": tasks, "losses": losses }));
    } else {
        for ((t, m), l) in info.tasks.iter().zip(&mets).zip(&losses) {
            let ms = m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join("  ");
            println!("{:<12} {split}: loss {l:.4}  {ms}", t.name);
        }
    }
    Ok(())
}

/// Predicts every task for the rows of a CSV file into another.
pub fn predict(checkpoint: &Path, input: &Path, output: &Path) -> Result<()> {
    let (info, params) = experiment::load_model(checkpoint)?;
    let table = Table::read(input)?;
    let data = info.encoding.read(&table)?;
    let ctx = Context::new()?;
    let mut ev = Evaluator::new(ctx, &info.spec, &info.tasks, info.scaling.clone());
    let preds = ev.predict(&params, &data)?;
    let mut text = info.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(",");
    text.push('\n');
    for r in 0..data.rows() {
        let row: Vec<String> = preds
            .iter()
            .zip(&info.tasks)
            .map(|(p, t)| match t.kind {
                crate::mtl::TaskKind::Multiclass => match t.labels.get(p[r] as usize) {
                    Some(label) => csv_field(label),
                    None => format!("{}", p[r] as usize),
                },
                _ => format!("{}", p[r]),
            })
            .collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    crate::report::write_text(output, &text)
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
