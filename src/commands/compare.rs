//! `hydra compare`: the config trained once per weighting method against the single-task
//! baselines, as a Markdown table.

use std::path::PathBuf;

use super::load_or_default;
use crate::error::Result;
use crate::experiment;
use crate::gpu::Context;
use crate::report::table::SeedRun;

/// Trains the config (default: the built-in energy example) once per method in `methods`
/// (default: every registered one) and per seed (`seeds` of them from the config's seed on;
/// each seed draws the split and the initial parameters, and has its own single-task
/// baselines), gradient methods on `target`, and prints the table (mean ± std over the seeds
/// when more than one).
/// `select` picks each run's kept epoch: "val_loss" (the lowest validation loss, as `train`)
/// or "delta_m" (the best validation Δm% against that seed's baselines, LibMTL's choice).
pub fn compare(config: Option<PathBuf>, methods: &[String], target: &str, seeds: usize, select: &str) -> Result<()> {
    if seeds == 0 {
        return Err(crate::Error::invalid("--seeds", "at least 1"));
    }
    let by_delta_m = match select {
        "val_loss" => false,
        "delta_m" => true,
        other => return Err(crate::Error::invalid("--select", format!("{other:?} (expected val_loss or delta_m)"))),
    };
    let mut cfg = load_or_default(config.as_deref())?;
    let asked = match target {
        "params" => crate::mtl::weighting::Target::Params,
        "representation" => crate::mtl::weighting::Target::Representation,
        other => {
            return Err(crate::Error::invalid("--target", format!("{other:?} (expected params or representation)")))
        }
    };
    let names: Vec<String> = if methods.is_empty() {
        crate::mtl::weighting::registry::names().iter().map(|s| s.to_string()).collect()
    } else {
        methods.to_vec()
    };
    let ctx = Context::new()?;
    let first = cfg.train.seed;
    let t0 = std::time::Instant::now();
    // Per seed: its data and its single-task baselines.
    let mut per_seed = Vec::new();
    for s in 0..seeds as u64 {
        cfg.train.seed = first + s;
        let prepared = experiment::prepare(&cfg)?;
        let spec = experiment::model_spec(&cfg, &prepared.splits.train);
        let base = crate::train::single_task_baselines(
            &ctx,
            &spec,
            &cfg.tasks,
            &cfg.train,
            &prepared.scaling,
            &prepared.splits,
        )?;
        per_seed.push((cfg.train.seed, prepared, base));
    }
    eprintln!("hydra: single-task baselines for {seeds} seed(s) in {:.1} s", t0.elapsed().as_secs_f64());
    let split = per_seed[0].1.splits.reported();
    let table = crate::report::table::CompareTable::new(&cfg.tasks, split);
    println!("{}", table.head());
    let base_runs: Vec<SeedRun> = per_seed
        .iter()
        .map(|(_, _, b)| SeedRun { metrics: b.clone(), delta_m: None, seconds_per_epoch: None, epochs: None })
        .collect();
    println!("{}", table.row_over_seeds("single-task", &base_runs));
    for name in &names {
        cfg.weighting = crate::mtl::weighting::Method::by_name(name)?;
        // A method that takes one target only (GradDrop: the representation; the methods with
        // per-task state: the parameters) runs on it, and its row says so.
        let takes = cfg.weighting.entry().targets;
        cfg.target = if takes.is_empty() || takes.contains(&asked) { asked } else { takes[0] };
        let label = if cfg.target == asked || takes.is_empty() {
            name.clone()
        } else {
            format!("{name} ({})", if cfg.target == crate::mtl::weighting::Target::Params { "params" } else { "repr." })
        };
        let mut runs = Vec::new();
        for (seed, prepared, base) in &per_seed {
            cfg.train.seed = *seed;
            let start = std::time::Instant::now();
            let opts = experiment::RunOptions {
                select_delta_m: by_delta_m.then(|| base.iter().map(|b| b[crate::data::Split::Val].clone()).collect()),
                ..Default::default()
            };
            let (out, _) = experiment::run(&ctx, &cfg, prepared, &opts, &mut |_| {}, &mut |_| {})?;
            let secs = start.elapsed().as_secs_f64();
            let epochs = out.report.history.len();
            let per: Vec<crate::mtl::metrics::TaskDelta> = cfg
                .tasks
                .iter()
                .enumerate()
                .map(|(t, task)| {
                    crate::mtl::metrics::task_delta(task.kind, &out.report.metrics[t][split], &base[t][split])
                })
                .collect();
            runs.push(SeedRun {
                metrics: out.report.metrics.clone(),
                delta_m: crate::mtl::metrics::delta_m(&per),
                seconds_per_epoch: Some(secs / epochs.max(1) as f64),
                epochs: Some(epochs),
            });
        }
        println!("{}", table.row_over_seeds(&label, &runs));
    }
    Ok(())
}
