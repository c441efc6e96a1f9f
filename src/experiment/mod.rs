//! A whole run from a config: load and split the data, build the trainer for any start
//! ([`build_trainer`]), train, evaluate, compare with single-task baselines (Δm%), and write or read
//! checkpoints ([`snapshot_checkpoint`], [`load_model`]). The `hydra` command is a thin layer over this.

use std::sync::Arc;

use crate::config::{Config, EmbeddingDim};
use crate::data::builtin::{self, Source};
use crate::data::{default_embedding_dim, split_rows, Columns, Dataset, Encoding, Split, Table};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::mtl::metrics::{self, Metrics};
use crate::nn::{EmbeddingSpec, ModelSpec};
use crate::train::{single_task_baselines_async, Scaling, Splits, TrainReport, Trainer};

pub mod arrays;
mod checkpoints;
pub mod groups;
mod start;

pub use checkpoints::{
    checkpoint_info, init_from_checkpoint, load_model, make_checkpoint, snapshot_checkpoint, snapshot_checkpoint_async,
    CheckpointInfo, InitFrom, OptimSnapshot,
};
pub use start::{build_trainer, build_trainer_with, Start};

/// Data ready to train on.
pub struct Prepared {
    /// Encoded (categories as vocabulary ids, missing cells imputed) but unscaled splits.
    pub raw: [Dataset; 3],
    /// The encoding fitted on the training rows.
    pub encoding: Encoding,
    /// Scaled splits.
    pub splits: Splits,
    /// The scaling fitted on the training split.
    pub scaling: Scaling,
}

/// Loads the config's data, splits it, and fits the scaling on the training rows. All
/// validation happens here, before any GPU work.
pub fn prepare(cfg: &Config) -> Result<Prepared> {
    prepare_with(cfg, &mut |rel| Table::read(&cfg.base.join(rel)))
}

/// [`prepare`] with the files the config names (`[data] path`, `train`, `val`, `test`) read
/// by `read_table` instead of from disk: a browser page passes the file its visitor picked.
pub fn prepare_with(cfg: &Config, read_table: &mut dyn FnMut(&str) -> Result<Table>) -> Result<Prepared> {
    let d = &cfg.raw.data;
    let split = d.split.unwrap_or([0.8, 0.1, 0.1]);
    let seed = cfg.train.seed;
    let columns = Columns {
        features: d.features.as_deref(),
        ignore: &d.ignore,
        categorical: &d.categorical,
        fixed: false,
        impute: d.impute.as_deref() == Some("mean"),
        group: d.group.as_deref(),
    };
    let to_ds = |t: &Table| Dataset::read(t, &columns, &cfg.tasks);
    let raw: [Dataset; 3] = if let Some(train) = &d.train {
        let tr = to_ds(&read_table(train)?)?;
        // The other files read the training file's categorical columns as categories.
        let cats: Vec<String> = tr.categorical.iter().map(|c| c.name.clone()).collect();
        let other = Columns { categorical: &cats, fixed: true, ..columns };
        let to_ds = |t: &Table| Dataset::read(t, &other, &cfg.tasks);
        let mut load = |p: &Option<String>| -> Result<Dataset> {
            match p {
                Some(p) => to_ds(&read_table(p)?),
                None => Ok(tr.subset(&[])),
            }
        };
        let (va, te) = (load(&d.val)?, load(&d.test)?);
        for (name, ds) in [("val", &va), ("test", &te)] {
            let cat_names = |d: &Dataset| d.categorical.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            if ds.rows() > 0 && (ds.feature_names != tr.feature_names || cat_names(ds) != cat_names(&tr)) {
                return Err(Error::Config {
                    file: cfg.file.clone(),
                    key: format!("data.{name}"),
                    message: "its feature columns differ from the training file's".into(),
                });
            }
        }
        [tr, va, te]
    } else {
        let source = match (&d.path, &d.dataset) {
            (Some(p), _) => Source::One(read_table(p)?),
            (None, Some(name)) => builtin::load(name, split, seed, d.correlation.unwrap_or(0.5), d.rows)?,
            (None, None) => {
                return Err(Error::Config {
                    file: cfg.file.clone(),
                    key: "data".into(),
                    message: "no data source".into(),
                })
            }
        };
        match source {
            Source::One(t) => {
                let ds = to_ds(&t)?;
                drop(t); // the text cells are no longer needed: free them before the splits
                let [a, b, c] = split_rows(ds.rows(), split, seed, ds.groups.as_deref())?;
                [ds.subset(&a), ds.subset(&b), ds.subset(&c)]
            }
            Source::Three(ts) => {
                let [a, b, c] = *ts;
                [to_ds(&a)?, to_ds(&b)?, to_ds(&c)?]
            }
        }
    };
    let encoding = Encoding::fit(&raw[Split::Train], columns.impute);
    // Each split encoded, then its raw form dropped, one at a time.
    let encode = |d: Dataset| encoding.apply(&d);
    let [a, b, c] = raw;
    let raw = [encode(a)?, encode(b)?, encode(c)?];
    let scaling = Scaling::fit_with(&raw[Split::Train], &cfg.tasks, cfg.standardize, cfg.standardize_targets);
    let [mut train, mut val, test] = Split::ALL.map(|s| scaling.apply(&raw[s]));
    // A task without a loss of its own keeps its labels for the test metrics only.
    for t in (0..cfg.tasks.len()).filter(|&t| !cfg.tasks[t].own_loss) {
        for d in [&mut train, &mut val] {
            d.masks[t].iter_mut().for_each(|m| *m = 0.0);
        }
    }
    let splits = Splits { train, val, test };
    Ok(Prepared { raw, encoding, splits, scaling })
}

/// The model a config describes for the (encoded) training data `train`: its numeric
/// features, and an embedding for each categorical column (`[data] embedding_dim`, else
/// [`default_embedding_dim`]).
pub fn model_spec(cfg: &Config, train: &Dataset) -> ModelSpec {
    let mut spec = Trainer::spec_for(train.width(), &cfg.trunk, &cfg.head, cfg.activation, &cfg.tasks);
    spec.embeddings = train
        .categorical
        .iter()
        .map(|c| {
            let rows = c.table_rows();
            let dim = match &cfg.raw.data.embedding_dim {
                Some(EmbeddingDim::All(d)) => *d,
                Some(EmbeddingDim::Per(m)) => m.get(&c.name).copied().unwrap_or_else(|| default_embedding_dim(rows)),
                None => default_embedding_dim(rows),
            };
            EmbeddingSpec { column: c.name.clone(), rows, dim }
        })
        .collect();
    spec.arch = cfg.arch;
    spec.experts = cfg.experts;
    spec.expert = cfg.expert.clone();
    spec.shared_experts = cfg.shared_experts;
    spec.task_experts = cfg.task_experts;
    spec.levels = cfg.levels;
    spec.k = cfg.k;
    spec
}

/// A finished run.
pub struct Outcome {
    /// The training report.
    pub report: TrainReport,
    /// Per task, single-task baseline metrics on `[train, val, test]`, when asked for.
    pub baselines: Option<Vec<[Metrics; 3]>>,
    /// Per task Δ% on the reported split, and Δm% (None where undefined), when baselines ran.
    pub delta: Option<(Vec<metrics::TaskDelta>, Option<f64>)>,
    /// The scaling.
    pub scaling: Scaling,
    /// The model.
    pub spec: ModelSpec,
}

/// How a run starts and what it writes while it goes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Start from this checkpoint's parameters (transfer; heads of new tasks start fresh).
    pub init: Option<std::path::PathBuf>,
    /// Continue the run saved in this checkpoint exactly.
    pub resume: Option<std::path::PathBuf>,
    /// Write the whole state here every `every` steps (atomically).
    pub checkpoint: Option<(std::path::PathBuf, u64)>,
    /// Also train single-task baselines.
    pub baselines: bool,
    /// Keep the epoch of the best validation Δm% against these (per task, the single-task
    /// baselines' validation metrics) instead of the lowest validation loss.
    pub select_delta_m: Option<Vec<crate::mtl::metrics::Metrics>>,
    /// Data-parallel over MPI (`hydra train --distributed` under `mpirun`; the `mpi` feature).
    pub distributed: bool,
}

impl RunOptions {
    /// How the run starts (`--resume` wins over `--init`; [`run`] refuses both at once).
    pub fn start(&self) -> Start<'_> {
        match (self.init.as_deref(), self.resume.as_deref()) {
            (_, Some(path)) => Start::Resume(path),
            (Some(path), None) => Start::Init(path),
            (None, None) => Start::Fresh,
        }
    }
}

/// Trains the config's model as `opts` say.
pub fn run(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    opts: &RunOptions,
    on_eval: &mut dyn FnMut(&crate::train::EvalRecord),
    on_note: &mut dyn FnMut(&str),
) -> Result<(Outcome, Trainer)> {
    crate::gpu::wait::block("training", run_async(ctx, cfg, prepared, opts, on_eval, on_note))
}

/// [`run`] as one rank of data-parallel training over `collective` (checkpoints are written
/// by rank 0 alone).
pub fn run_distributed(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    opts: &RunOptions,
    collective: Box<dyn crate::dist::Collective>,
    on_eval: &mut dyn FnMut(&crate::train::EvalRecord),
    on_note: &mut dyn FnMut(&str),
) -> Result<(Outcome, Trainer)> {
    crate::gpu::wait::block("training", run_with(ctx, cfg, prepared, opts, Some(collective), on_eval, on_note))
}

/// [`run`] as a future: the form a browser page uses (there `opts.checkpoint`, which writes
/// a file, fails; the page saves [`snapshot_checkpoint_async`]'s bytes instead).
pub async fn run_async(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    opts: &RunOptions,
    on_eval: &mut dyn FnMut(&crate::train::EvalRecord),
    on_note: &mut dyn FnMut(&str),
) -> Result<(Outcome, Trainer)> {
    run_with(ctx, cfg, prepared, opts, None, on_eval, on_note).await
}

async fn run_with(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    opts: &RunOptions,
    collective: Option<Box<dyn crate::dist::Collective>>,
    on_eval: &mut dyn FnMut(&crate::train::EvalRecord),
    on_note: &mut dyn FnMut(&str),
) -> Result<(Outcome, Trainer)> {
    let spec = model_spec(cfg, &prepared.splits.train);
    let baselines = opts.baselines;
    if opts.init.is_some() && opts.resume.is_some() {
        return Err(Error::invalid("--resume", "give --init or --resume, not both"));
    }
    let mut tr = build_trainer_with(ctx, cfg, prepared, opts.start(), on_note, collective)?;
    if let Some(base) = &opts.select_delta_m {
        tr.select_by_delta_m(base.clone());
    }
    let report = match &opts.checkpoint {
        None => tr.fit_async(&prepared.splits, on_eval).await?,
        Some((path, every)) => {
            tr.fit_with_checkpoints_async(&prepared.splits, on_eval, *every, &mut |t| match t.rank().0 {
                0 => snapshot_checkpoint(cfg, prepared, t)?.save(path),
                _ => Ok(()),
            })
            .await?
        }
    };
    let (baselines, delta) = if baselines {
        let b = single_task_baselines_async(ctx, &spec, &cfg.tasks, &cfg.train, &prepared.scaling, &prepared.splits)
            .await?;
        let split = prepared.splits.reported();
        let per: Vec<metrics::TaskDelta> = cfg
            .tasks
            .iter()
            .enumerate()
            .map(|(t, task)| metrics::task_delta(task.kind, &report.metrics[t][split], &b[t][split]))
            .collect();
        let dm = metrics::delta_m(&per);
        (Some(b), Some((per, dm)))
    } else {
        (None, None)
    };
    Ok((Outcome { report, baselines, delta, scaling: prepared.scaling.clone(), spec }, tr))
}
