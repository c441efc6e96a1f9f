//! `hydra affinity`: train as the config says while measuring TAG's lookahead affinity every
//! `--every` steps, then print the matrix, its first-order estimate and how well the two agree,
//! and the recommended task groups; optionally as JSON and as an SVG heatmap.

use std::path::PathBuf;

use serde_json::json;

use super::load_or_default;
use crate::error::{Error, Result};
use crate::experiment;
use crate::gpu::Context;
use crate::mtl::affinity::{best_groups, group_score, rank_correlation};

/// What `hydra affinity` takes.
pub struct AffinityArgs {
    /// The config (default: the built-in energy example).
    pub config: Option<PathBuf>,
    /// Probe every this many steps.
    pub every: usize,
    /// Only this number of groups (default: every k from 1 to T).
    pub groups: Option<usize>,
    /// Write the JSON document here.
    pub json: Option<PathBuf>,
    /// Write the SVG heatmap here.
    pub svg: Option<PathBuf>,
}

/// Runs `hydra affinity`.
pub fn affinity(a: AffinityArgs) -> Result<()> {
    if a.every == 0 {
        return Err(Error::invalid("--every", "at least 1 step"));
    }
    let mut cfg = load_or_default(a.config.as_deref())?;
    cfg.train.affinity_every = a.every;
    let names: Vec<String> = cfg.tasks.iter().map(|t| t.name.clone()).collect();
    let t = names.len();
    if let Some(k) = a.groups.filter(|&k| k == 0 || k > t) {
        return Err(Error::invalid("--groups", format!("{k} groups of {t} tasks (1 to {t})")));
    }
    let ctx = Context::new()?;
    let prepared = experiment::prepare(&cfg)?;
    let opts = experiment::RunOptions::default();
    let (_, tr) = experiment::run(&ctx, &cfg, &prepared, &opts, &mut |_| {}, &mut |n| eprintln!("hydra: {n}"))?;
    let aff = tr.affinity().ok_or_else(|| Error::invalid("affinity", "no probe ran (fewer steps than --every?)"))?;
    let (z, est) = (aff.mean(), aff.estimate());
    let rho = rank_correlation(&z, &est, t);
    println!("lookahead affinity Z[row → column] over {} probes (every {} steps):\n", aff.probes, a.every);
    print!("{}", matrix_table(&names, &z));
    println!("\nfirst-order estimate η⟨g_row, g_col⟩ / L_col:\n");
    print!("{}", matrix_table(&names, &est));
    println!("\nrank correlation of the two (off the diagonal): {}", fmt(rho));
    let ks: Vec<usize> = match a.groups {
        Some(k) => vec![k],
        None => (1..=t).collect(),
    };
    let mut groups = serde_json::Map::new();
    for k in ks {
        let g = best_groups(&z, t, k);
        let named: Vec<Vec<String>> = g.iter().map(|grp| grp.iter().map(|&i| names[i].clone()).collect()).collect();
        println!("{k} group(s): {} (score {:.3e})", show(&named), group_score(&z, t, &g));
        groups.insert(k.to_string(), json!(named));
    }
    let matrix = |m: &[f64]| -> Vec<Vec<serde_json::Value>> {
        (0..t).map(|i| (0..t).map(|j| finite(m[i * t + j])).collect()).collect()
    };
    if let Some(p) = &a.json {
        let doc = json!({
            "tasks": names,
            "affinity": matrix(&z),
            "estimate": matrix(&est),
            "rank_correlation": finite(rho),
            "conflict_share": matrix(&aff.conflict_share()),
            "probes": aff.probes,
            "every": a.every,
            "groups": groups,
        });
        crate::report::write_text(p, &format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()))?;
    }
    if let Some(p) = &a.svg {
        crate::plot::write_affinity_svg(p, &names, &z)?;
    }
    Ok(())
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        x.into()
    } else {
        serde_json::Value::Null
    }
}

fn fmt(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "undefined".into()
    }
}

fn show(groups: &[Vec<String>]) -> String {
    groups.iter().map(|g| format!("[{}]", g.join(", "))).collect::<Vec<_>>().join(" ")
}

/// A Markdown table of a T×T matrix with the tasks' names.
pub(crate) fn matrix_table(names: &[String], m: &[f64]) -> String {
    let t = names.len();
    let mut s = format!("| | {} |\n|---|{}\n", names.join(" | "), "---|".repeat(t));
    for (i, a) in names.iter().enumerate() {
        let row: Vec<String> = (0..t)
            .map(|j| if m[i * t + j].is_finite() { format!("{:+.2e}", m[i * t + j]) } else { "–".into() })
            .collect();
        s.push_str(&format!("| {a} | {} |\n", row.join(" | ")));
    }
    s
}
