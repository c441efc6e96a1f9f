//! `hydra train`: one run from a config, with its progress, log, plot, checkpoint, table and
//! metrics document.

use std::io::Write;
use std::path::PathBuf;

use super::load_or_default;
use crate::error::Result;
use crate::experiment;
use crate::gpu::Context;

/// What `hydra train` writes besides its table.
#[derive(Clone, Debug, Default)]
pub struct TrainOutputs {
    /// The final metrics document.
    pub metrics_json: Option<PathBuf>,
    /// One JSON line per evaluation.
    pub log: Option<PathBuf>,
    /// The curves as SVG.
    pub plot: Option<PathBuf>,
    /// The trained model (and its training state).
    pub save: Option<PathBuf>,
    /// The precision of the saved model's tensors: f32, f16 or bf16.
    pub save_dtype: String,
}

/// With `--baselines` and no `[train] affinity_every`, the negative-transfer report probes
/// the affinity this often (steps).
pub const NEGATIVE_TRANSFER_EVERY: usize = 10;

/// Trains as the config says (default: the built-in energy example, with baselines),
/// writing what `outputs` asks for; `quiet` prints the final table alone.
pub fn train(config: Option<PathBuf>, opts: experiment::RunOptions, outputs: TrainOutputs, quiet: bool) -> Result<()> {
    if !opts.distributed {
        return train_on(config, opts, outputs, quiet, None);
    }
    // Data-parallel: a failure on this rank ends every rank (and names this one).
    let place = super::distributed::join()?;
    match train_on(config, opts, outputs, quiet, Some(&place)) {
        Ok(()) => Ok(()),
        Err(e) => place.fail(&e),
    }
}

/// [`train`] on one process, or as one rank of a data-parallel run: rank 0 alone prints,
/// logs and writes files.
fn train_on(
    config: Option<PathBuf>,
    mut opts: experiment::RunOptions,
    outputs: TrainOutputs,
    quiet: bool,
    place: Option<&super::distributed::Place>,
) -> Result<()> {
    let rank0 = place.is_none_or(|p| p.rank == 0);
    let quiet = quiet || !rank0;
    let outputs = if rank0 { outputs } else { TrainOutputs { save_dtype: outputs.save_dtype, ..Default::default() } };
    let TrainOutputs { metrics_json, log, plot, save, save_dtype } = outputs;
    let precision = crate::checkpoint::Precision::parse(&save_dtype, "--save-dtype")?;
    // Without a config: the built-in example, with its baselines.
    opts.baselines |= config.is_none();
    let mut cfg = load_or_default(config.as_deref())?;
    // A grouping is measured against the single-task models: they train too.
    opts.baselines |= !cfg.groups.is_empty();
    // With baselines, the negative-transfer report needs the affinity probes; they change
    // nothing in the run (tested bit for bit), only its time.
    // (The probes do not run data-parallel.)
    let probes_added = opts.baselines && cfg.train.affinity_every == 0 && cfg.tasks.len() > 1 && place.is_none();
    if probes_added {
        cfg.train.affinity_every = NEGATIVE_TRANSFER_EVERY;
    }
    // Every input is read and checked before the GPU is touched.
    let prepared = experiment::prepare(&cfg)?;
    let ctx = match place {
        Some(p) => p.context()?,
        None => Context::new()?,
    };
    let names: Vec<String> = cfg.tasks.iter().map(|t| t.name.clone()).collect();
    if !quiet {
        eprintln!(
            "hydra: {} on {} | {} train / {} val / {} test rows | adapter {}",
            cfg.file,
            names.join(", "),
            prepared.splits.train.rows(),
            prepared.splits.val.rows(),
            prepared.splits.test.rows(),
            ctx.adapter().name
        );
    }
    let mut log_file = match &log {
        Some(p) => Some(std::fs::File::create(p).map_err(|source| crate::Error::Io { path: p.clone(), source })?),
        None => None,
    };
    let start = std::time::Instant::now();
    let mut log_err = None;
    let per_epoch = prepared.splits.train.rows().div_ceil(cfg.train.batch_size.max(1));
    let total = cfg.train.steps.unwrap_or(per_epoch * cfg.train.epochs) as u64;
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut history: Vec<crate::train::EvalRecord> = Vec::new();
    let mut on_eval = |r: &crate::train::EvalRecord| {
        if plot.is_some() {
            history.push(r.clone());
        }
        bar.set_position(r.step);
        let losses: Vec<String> = names.iter().zip(&r.train_loss).map(|(n, l)| format!("{n} {l:.4}")).collect();
        bar.set_message(format!("epoch {} | train loss {}", r.epoch, losses.join(", ")));
        if let Some(f) = log_file.as_mut() {
            let line = crate::report::jsonl::record(&names, r);
            if let Err(e) = writeln!(f, "{line}") {
                log_err.get_or_insert(e);
            }
        }
        if !quiet && (r.epoch % 10 == 0 || r.epoch == 1) {
            let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(" ");
            bar.println(format!(
                "epoch {:>4} step {:>6}  train loss [{}]  val loss [{}]",
                r.epoch,
                r.step,
                fmt(&r.train_loss),
                fmt(&r.val_loss)
            ));
        }
    };
    let mut on_note = |n: &str| eprintln!("hydra: {n}");
    let (out, trainer) = match place {
        Some(p) => {
            experiment::run_distributed(&ctx, &cfg, &prepared, &opts, p.collective()?, &mut on_eval, &mut on_note)?
        }
        None => experiment::run(&ctx, &cfg, &prepared, &opts, &mut on_eval, &mut on_note)?,
    };
    bar.finish_and_clear();
    if let Some(p) = &plot {
        crate::plot::write_svg(p, &names, &history)?;
    }
    if let Some(p) = &save {
        experiment::snapshot_checkpoint(&cfg, &prepared, &trainer)?.save_as(p, precision)?;
        if !quiet {
            eprintln!("hydra: saved {}", p.display());
        }
    }
    if let (Some(e), Some(p)) = (log_err, &log) {
        return Err(crate::Error::Io { path: p.clone(), source: e });
    }
    let secs = start.elapsed().as_secs_f64();
    if !rank0 {
        return Ok(());
    }
    if let Some(c) = trainer.distributed_cost() {
        eprintln!("{}", cost_line(&c));
    }
    let probes_note = probes_added && !quiet;
    print_results(&ctx, &cfg, &prepared, (&out, &trainer), secs, probes_note, metrics_json.as_deref())
}

/// The end of a run on rank 0: the steps and time, the results table, the negative-transfer
/// report, the grouping's models (which train now), and the metrics document.
fn print_results(
    ctx: &std::sync::Arc<Context>,
    cfg: &crate::config::Config,
    prepared: &experiment::Prepared,
    (out, trainer): (&experiment::Outcome, &crate::train::Trainer),
    secs: f64,
    probes_note: bool,
    metrics_json: Option<&std::path::Path>,
) -> Result<()> {
    let rep = &out.report;
    println!("trained {} steps in {secs:.1} s; kept the parameters of epoch {}", rep.steps, rep.best_epoch);
    let split = prepared.splits.reported();
    print!("{}", crate::report::table::results(&cfg.tasks, out, split, &prepared.splits.missing()));
    if let (Some((deltas, _)), Some(aff)) = (&out.delta, trainer.affinity()) {
        print!("{}", crate::report::table::negative_transfer(&cfg.tasks, deltas, aff));
        if probes_note {
            eprintln!("hydra: affinity measured every {NEGATIVE_TRANSFER_EVERY} steps for this report ([train] affinity_every sets it)");
        }
    }
    if !cfg.groups.is_empty() {
        let g = experiment::groups::run_groups(ctx, cfg, out, &mut |n| eprintln!("hydra: {n}"))?;
        print!("{}", crate::report::table::grouping(&cfg.tasks, &g));
    }
    if let Some(p) = metrics_json {
        let doc = crate::report::metrics_json::document(&cfg.tasks, out, split, secs);
        crate::report::write_text(p, &format!("{doc:#}\n"))?;
    }
    Ok(())
}

/// What data-parallel training cost, for rank 0 to print.
fn cost_line(c: &crate::train::DistCost) -> String {
    let per_step = |x: f64| 1e3 * x / c.steps.max(1) as f64;
    format!(
        "hydra: data-parallel on {} ranks: {} steps; each rank sums {} floats ({:.1} KiB) a step; per step {:.2} ms, \
         of which the sums (readback, MPI, upload) {:.2} ms ({:.0}%)",
        c.ranks,
        c.steps,
        c.floats_per_step,
        c.floats_per_step as f64 * 4.0 / 1024.0,
        per_step(c.step_seconds),
        per_step(c.sum_seconds),
        100.0 * c.sum_seconds / c.step_seconds.max(1e-12)
    )
}
