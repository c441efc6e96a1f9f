//! `hydra compare`: the config trained once per weighting method against the single-task
//! baselines, as a Markdown table.

use std::path::PathBuf;

use super::load_or_default;
use crate::error::Result;
use crate::experiment;
use crate::gpu::Context;

/// Trains the config (default: the built-in energy example) once per method in `methods`
/// (default: every registered one), gradient methods on `target`, and prints the table.
pub fn compare(config: Option<PathBuf>, methods: &[String], target: &str) -> Result<()> {
    let mut cfg = load_or_default(config.as_deref())?;
    cfg.target = match target {
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
    let prepared = experiment::prepare(&cfg)?;
    let ctx = Context::new()?;
    let split = prepared.splits.reported();
    let spec = experiment::model_spec(&cfg, &prepared.splits.train);
    let t0 = std::time::Instant::now();
    let base =
        crate::train::single_task_baselines(&ctx, &spec, &cfg.tasks, &cfg.train, &prepared.scaling, &prepared.splits)?;
    eprintln!("hydra: single-task baselines in {:.1} s", t0.elapsed().as_secs_f64());
    let table = crate::report::table::CompareTable::new(&cfg.tasks, split);
    println!("{}", table.head());
    println!("{}", table.row("single-task", &base, None, None, None));
    for name in &names {
        cfg.weighting = crate::mtl::weighting::Method::by_name(name)?;
        let start = std::time::Instant::now();
        let (out, _) = experiment::run(&ctx, &cfg, &prepared, &Default::default(), &mut |_| {}, &mut |_| {})?;
        let secs = start.elapsed().as_secs_f64();
        let epochs = out.report.history.len();
        let per: Vec<crate::mtl::metrics::TaskDelta> = cfg
            .tasks
            .iter()
            .enumerate()
            .map(|(t, task)| crate::mtl::metrics::task_delta(task.kind, &out.report.metrics[t][split], &base[t][split]))
            .collect();
        let dm = crate::mtl::metrics::delta_m(&per);
        println!("{}", table.row(name, &out.report.metrics, dm, Some(secs / epochs.max(1) as f64), Some(epochs)));
    }
    Ok(())
}
