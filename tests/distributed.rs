//! Data-parallel training (`hydra::dist`) with ranks as threads of one process: the same
//! parameters as one process on the global batch, for equal weights, a loss weighting learned
//! on the GPU (UW) and a gradient method (PCGrad); the same bits on every rank; methods that
//! cannot run data-parallel refused by name; a rank that diverges stops every rank, named.
//! (`tests/mpi.rs`, with the `mpi` feature, runs the same under `mpirun`.)

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use hydra::config::Config;
use hydra::dist::{Collective, LocalGroup};
use hydra::experiment::{self, Prepared};
use hydra::train::Trainer;
use hydra::Context;

fn config(method: &str, batch: usize, epochs: usize) -> Config {
    let text = format!(
        r#"
[data]
dataset = "energy"
[[task]]
name = "heating"
target = "heating_load"
kind = "regression"
[[task]]
name = "cooling"
target = "cooling_load"
kind = "regression"
[model]
trunk = [16, 16]
[train]
lr = 3e-3
batch_size = {batch}
epochs = {epochs}
seed = 3
[weighting]
method = "{method}"
"#
    );
    Config::parse("<test>", &text, PathBuf::new()).expect("config")
}

fn single(ctx: &Arc<Context>, cfg: &Config, prepared: &Prepared) -> (Vec<Vec<f32>>, usize) {
    let spec = experiment::model_spec(cfg, &prepared.splits.train);
    let mut tr = Trainer::with_weighting(
        ctx.clone(),
        &spec,
        &cfg.tasks,
        cfg.train.clone(),
        prepared.scaling.clone(),
        None,
        cfg.weighter(),
    )
    .expect("trainer");
    let rep = tr.fit(&prepared.splits, &mut |_| {}).expect("fit");
    (tr.params().expect("params"), rep.best_epoch)
}

/// One rank's trainer for the config.
fn rank_trainer(
    ctx: Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    rank: Box<dyn Collective>,
) -> hydra::Result<Trainer> {
    let spec = experiment::model_spec(cfg, &prepared.splits.train);
    let (settings, scaling) = (cfg.train.clone(), prepared.scaling.clone());
    Trainer::distributed(ctx, &spec, &cfg.tasks, settings, scaling, None, cfg.weighter(), rank)
}

/// Trains on `ranks` threads; each returns its parameters and kept epoch, or its error.
fn data_parallel(
    ctx: &Arc<Context>,
    cfg: &Config,
    per_rank: Vec<Prepared>,
) -> Vec<hydra::Result<(Vec<Vec<f32>>, usize)>> {
    let ranks = LocalGroup::new(per_rank.len());
    let threads: Vec<_> = ranks
        .into_iter()
        .zip(per_rank)
        .map(|(rank, prepared)| {
            let (ctx, cfg) = (ctx.clone(), cfg.clone());
            std::thread::spawn(move || {
                let mut tr = rank_trainer(ctx, &cfg, &prepared, Box::new(rank))?;
                let rep = tr.fit(&prepared.splits, &mut |_| {})?;
                let cost = tr.distributed_cost().expect("cost");
                assert_eq!(cost.steps, rep.steps);
                assert!(cost.floats_per_step > 0 && cost.sum_seconds <= cost.step_seconds);
                Ok((tr.params()?, rep.best_epoch))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("rank thread")).collect()
}

fn largest_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn ranks_train_the_parameters_one_process_trains_on_the_global_batch() {
    let ctx = common::ctx();
    // (method, ranks): equal weights on 2 and on 3 ranks (64 rows: shares of 22, 21, 21),
    // UW (its log-variances learned, the constant term of its gradient once), PCGrad.
    for (method, ranks) in [("ew", 2), ("ew", 3), ("uw", 2), ("pcgrad", 2)] {
        let cfg = config(method, 64, 3);
        let prepared = experiment::prepare(&cfg).expect("data");
        let (want, want_epoch) = single(&ctx, &cfg, &prepared);
        let per_rank = (0..ranks).map(|_| experiment::prepare(&cfg).expect("data")).collect();
        let got: Vec<(Vec<Vec<f32>>, usize)> =
            data_parallel(&ctx, &cfg, per_rank).into_iter().map(|r| r.expect("rank")).collect();
        for (rank, (params, epoch)) in got.iter().enumerate() {
            // The same bits on every rank: they apply the same update to the same sums.
            assert_eq!(params, &got[0].0, "{method}: rank {rank}'s parameters differ from rank 0's");
            assert_eq!(*epoch, want_epoch, "{method}: kept epoch");
        }
        // One process sums each gradient over the batch's rows in one order, the ranks over
        // their shares and then across: the last bits differ, and Adam's steps carry them on.
        let d = largest_difference(&got[0].0, &want);
        eprintln!("{method} on {ranks} ranks: largest parameter difference from one process {d:e}");
        assert!(d < 1e-6, "{method} on {ranks} ranks: parameters off by {d} from one process");
        assert!(
            largest_difference(&want, &single(&ctx, &config(method, 32, 3), &prepared).0) > 1e-3,
            "{method}: the comparison must be able to tell a run on half the batch"
        );
    }
}

#[test]
fn methods_that_cannot_run_data_parallel_are_refused_by_name() {
    let ctx = common::ctx();
    for method in ["gls", "famo", "db_mtl", "graddrop"] {
        let cfg = config(method, 64, 1);
        let prepared = experiment::prepare(&cfg).expect("data");
        let mut ranks = LocalGroup::new(1);
        let rank: Box<dyn Collective> = Box::new(ranks.pop().expect("rank"));
        let e = rank_trainer(ctx.clone(), &cfg, &prepared, rank)
            .err()
            .unwrap_or_else(|| panic!("{method} must be refused"));
        assert!(e.to_string().contains(method) && e.to_string().contains("data-parallel"), "{e}");
    }
}

#[test]
fn a_rank_that_diverges_stops_every_rank_naming_it() {
    let ctx = common::ctx();
    let cfg = config("ew", 64, 2);
    let good = experiment::prepare(&cfg).expect("data");
    let mut bad = experiment::prepare(&cfg).expect("data");
    // Rank 1's copy of the data has a non-finite feature everywhere: its share's losses are
    // NaN from the first step.
    bad.splits.train.features.iter_mut().for_each(|v| *v = f32::NAN);
    let results = data_parallel(&ctx, &cfg, vec![good, bad]);
    for (rank, r) in results.iter().enumerate() {
        let e = r.as_ref().err().unwrap_or_else(|| panic!("rank {rank} must fail"));
        let msg = e.to_string();
        assert!(msg.contains("rank 1") && msg.contains("diverged at step 1"), "rank {rank}: {msg}");
    }
}
