//! A whole run from a config: load and split the data, train, evaluate, and compare with
//! single-task baselines (Δm%). The `hydra` command is a thin layer over this.

use std::sync::Arc;

use crate::config::Config;
use crate::data::builtin::{self, Source};
use crate::data::{split_rows, Dataset, Table};
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::mtl::metrics::{self, Metrics};
use crate::nn::ModelSpec;
use crate::train::{single_task_baselines, Scaling, Splits, TrainReport, Trainer};

/// Data ready to train on.
pub struct Prepared {
    /// Raw (unscaled) splits.
    pub raw: [Dataset; 3],
    /// Scaled splits.
    pub splits: Splits,
    /// The scaling fitted on the training split.
    pub scaling: Scaling,
}

fn read_table(cfg: &Config, rel: &str) -> Result<Table> {
    Table::read(&cfg.base.join(rel))
}

/// Loads the config's data, splits it, and fits the scaling on the training rows. All
/// validation happens here, before any GPU work.
pub fn prepare(cfg: &Config) -> Result<Prepared> {
    let d = &cfg.raw.data;
    let split = d.split.unwrap_or([0.8, 0.1, 0.1]);
    let seed = cfg.train.seed;
    let to_ds = |t: &Table| Dataset::from_table(t, d.features.as_deref(), &d.ignore, &cfg.tasks, d.group.as_deref());
    let raw: [Dataset; 3] = if let Some(train) = &d.train {
        let tr = to_ds(&read_table(cfg, train)?)?;
        let load = |p: &Option<String>| -> Result<Dataset> {
            match p {
                Some(p) => to_ds(&read_table(cfg, p)?),
                None => Ok(tr.subset(&[])),
            }
        };
        let (va, te) = (load(&d.val)?, load(&d.test)?);
        for (name, ds) in [("val", &va), ("test", &te)] {
            if ds.rows() > 0 && ds.feature_names != tr.feature_names {
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
            (Some(p), _) => Source::One(read_table(cfg, p)?),
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
                let [a, b, c] = split_rows(ds.rows(), split, seed, ds.groups.as_deref())?;
                [ds.subset(&a), ds.subset(&b), ds.subset(&c)]
            }
            Source::Three(ts) => {
                let [a, b, c] = *ts;
                [to_ds(&a)?, to_ds(&b)?, to_ds(&c)?]
            }
        }
    };
    let scaling = Scaling::fit(&raw[0], &cfg.tasks, cfg.standardize);
    let splits = Splits { train: scaling.apply(&raw[0]), val: scaling.apply(&raw[1]), test: scaling.apply(&raw[2]) };
    Ok(Prepared { raw, splits, scaling })
}

/// The model a config describes, for `inputs` features.
pub fn model_spec(cfg: &Config, inputs: usize) -> ModelSpec {
    Trainer::spec_for(inputs, &cfg.trunk, &cfg.head, cfg.activation, &cfg.tasks)
}

/// A finished run.
pub struct Outcome {
    /// The training report.
    pub report: TrainReport,
    /// Per task, single-task baseline metrics on `[train, val, test]`, when asked for.
    pub baselines: Option<Vec<[Metrics; 3]>>,
    /// Per task Δ% on the test split, and Δm%, when baselines ran.
    pub delta: Option<(Vec<f64>, f64)>,
    /// The scaling.
    pub scaling: Scaling,
    /// The model.
    pub spec: ModelSpec,
}

/// The trainer a config describes (model, tasks, settings, weighting), from `init` or the seed.
fn config_trainer(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    init: Option<Vec<Vec<f32>>>,
) -> Result<Trainer> {
    let spec = model_spec(cfg, prepared.splits.train.width());
    Trainer::with_weighting(
        ctx.clone(),
        &spec,
        &cfg.tasks,
        cfg.train.clone(),
        prepared.scaling.clone(),
        init,
        cfg.weighter(),
    )
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

/// How a trainer starts.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Parameters from the seed.
    Fresh,
    /// Parameters by name from a checkpoint (`--init`): heads of tasks it lacks start fresh,
    /// and its optimizer state is taken where it is complete for this optimizer.
    Init(&'a std::path::Path),
    /// The whole state of a run saved by `--checkpoint-every` (`--resume`): training
    /// continues exactly.
    Resume(&'a std::path::Path),
}

/// The one way to build a config's trainer, for every start: the model, tasks, settings and
/// weighting always come from the config; the start only says where parameters and state
/// come from. `on_note` hears what `--init` did not take from the checkpoint.
pub fn build_trainer(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    start: Start<'_>,
    on_note: &mut dyn FnMut(&str),
) -> Result<Trainer> {
    match start {
        Start::Fresh => config_trainer(ctx, cfg, prepared, None),
        Start::Resume(path) => resume_trainer(ctx, cfg, prepared, path),
        Start::Init(path) => {
            let ck = crate::checkpoint::Checkpoint::load(path)?;
            let info = checkpoint_info(&ck, path)?;
            if info.features != prepared.splits.train.feature_names {
                return Err(Error::file(
                    path.display(),
                    format!(
                        "trained on features {:?}, the config gives {:?}",
                        info.features, prepared.splits.train.feature_names
                    ),
                ));
            }
            let spec = model_spec(cfg, prepared.splits.train.width());
            let fresh = crate::nn::MultiTaskModel::build(&spec, cfg.train.batch_size)?;
            let fresh_params = fresh.graph.init_params(cfg.train.seed)?;
            let InitFrom { params, optim, step, notes } =
                init_from_checkpoint(&ck, path, &fresh.graph, &cfg.tasks, &fresh_params, &cfg.train.optimizer)?;
            for n in &notes {
                on_note(n);
            }
            // The weighting's own parameters (uw's log-variances) start at their defaults.
            let mut tr = config_trainer(ctx, cfg, prepared, Some(params))?;
            if let Some(state) = optim {
                tr.graph_mut().write_optim_state(&state, step)?;
            }
            Ok(tr)
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
    let spec = model_spec(cfg, prepared.splits.train.width());
    let baselines = opts.baselines;
    if opts.init.is_some() && opts.resume.is_some() {
        return Err(Error::invalid("--resume", "give --init or --resume, not both"));
    }
    let mut tr = build_trainer(ctx, cfg, prepared, opts.start(), on_note)?;
    let report = match &opts.checkpoint {
        None => tr.fit(&prepared.splits, on_eval)?,
        Some((path, every)) => tr.fit_with_checkpoints(&prepared.splits, on_eval, *every, &mut |t| {
            snapshot_checkpoint(cfg, prepared, t)?.save(path)
        })?,
    };
    let (baselines, delta) = if baselines {
        let b = single_task_baselines(ctx, &spec, &cfg.tasks, &cfg.train, &prepared.scaling, &prepared.splits)?;
        let split = if prepared.splits.test.rows() > 0 { 2 } else { 1 };
        let per: Vec<f64> = cfg
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

/// Names of optimizer state tensors, per state buffer.
pub fn optim_state_names(opt: &crate::optim::Optimizer) -> &'static [&'static str] {
    match opt {
        crate::optim::Optimizer::Sgd { momentum, .. } if *momentum != 0.0 => &["momentum_buffer"],
        crate::optim::Optimizer::Sgd { .. } => &[],
        _ => &["exp_avg", "exp_avg_sq"],
    }
}

/// An optimizer, its state tensors (each per parameter) and its step count.
pub type OptimSnapshot<'a> = (&'a crate::optim::Optimizer, &'a [Vec<Vec<f32>>], u64);

/// What `--init` takes from a checkpoint ([`init_from_checkpoint`]).
pub struct InitFrom {
    /// Every parameter, in graph order.
    pub params: Vec<Vec<f32>>,
    /// The optimizer state, when complete for this optimizer.
    pub optim: Option<Vec<Vec<Vec<f32>>>>,
    /// The step count that state belongs to.
    pub step: u64,
    /// What was not taken, for the user.
    pub notes: Vec<String>,
}

/// A checkpoint of a trained model: parameters, optional optimizer state and step, and the
/// metadata `predict` and `eval` need (config, model, tasks, scaling, feature names).
pub fn make_checkpoint(
    cfg: &Config,
    spec: &ModelSpec,
    scaling: &Scaling,
    feature_names: &[String],
    graph: &crate::ir::Graph,
    params: &[Vec<f32>],
    optim: Option<OptimSnapshot<'_>>,
) -> Result<crate::checkpoint::Checkpoint> {
    let json = |v: &dyn erased::Json| v.to_json();
    let mut ck = crate::checkpoint::Checkpoint::default();
    for (p, v) in graph.params.iter().zip(params) {
        ck.insert(&p.name, &p.shape, v.clone());
    }
    if let Some((opt, state, step)) = optim {
        for (name, per_param) in optim_state_names(opt).iter().zip(state) {
            for (p, v) in graph.params.iter().zip(per_param) {
                ck.insert(&format!("optim.{name}.{}", p.name), &p.shape, v.clone());
            }
        }
        ck.metadata.insert("step".into(), step.to_string());
        ck.metadata.insert("optimizer".into(), json(opt)?);
    }
    ck.metadata.insert("format".into(), "hydra-mtl 1".into());
    ck.metadata.insert("config".into(), json(&cfg.raw)?);
    ck.metadata.insert("model".into(), json(spec)?);
    ck.metadata.insert("tasks".into(), json(&cfg.tasks)?);
    ck.metadata.insert("scaling".into(), json(scaling)?);
    ck.metadata.insert("features".into(), json(&feature_names.to_vec())?);
    Ok(ck)
}

mod erased {
    /// Serializes anything serde can, as a JSON string.
    pub trait Json {
        fn to_json(&self) -> crate::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> crate::Result<String> {
            serde_json::to_string(self).map_err(|e| crate::Error::invalid("checkpoint metadata", e.to_string()))
        }
    }
}

fn meta_json<T: serde::de::DeserializeOwned>(
    ck: &crate::checkpoint::Checkpoint,
    path: &std::path::Path,
    key: &str,
) -> Result<T> {
    serde_json::from_str(ck.meta(path, key)?)
        .map_err(|e| Error::file(path.display(), format!("metadata {key:?} is unreadable: {e}")))
}

/// What a checkpoint says about its model.
pub struct CheckpointInfo {
    /// The model.
    pub spec: ModelSpec,
    /// Its tasks.
    pub tasks: Vec<crate::mtl::TaskDef>,
    /// The scaling of its inputs and targets.
    pub scaling: Scaling,
    /// Feature names, in model input order.
    pub features: Vec<String>,
}

/// Reads the model description stored in a checkpoint.
pub fn checkpoint_info(ck: &crate::checkpoint::Checkpoint, path: &std::path::Path) -> Result<CheckpointInfo> {
    Ok(CheckpointInfo {
        spec: meta_json(ck, path, "model")?,
        tasks: meta_json(ck, path, "tasks")?,
        scaling: meta_json(ck, path, "scaling")?,
        features: meta_json(ck, path, "features")?,
    })
}

/// A trained model from a checkpoint: its description and its parameters (by name and shape).
pub fn load_model(path: &std::path::Path) -> Result<(CheckpointInfo, Vec<Vec<f32>>)> {
    let ck = crate::checkpoint::Checkpoint::load(path)?;
    let info = checkpoint_info(&ck, path)?;
    let model = crate::nn::MultiTaskModel::build(&info.spec, 1)?;
    let names: Vec<String> = model.graph.params.iter().map(|p| p.name.clone()).collect();
    let shapes: Vec<Vec<usize>> = model.graph.params.iter().map(|p| p.shape.clone()).collect();
    let params = ck.take(path, &names, &shapes)?;
    Ok((info, params))
}

/// Initial parameters for `graph` from a checkpoint, by name. Parameters of heads of tasks
/// the checkpoint does not have start from `fresh` (a new task: transfer); every other
/// parameter must be present with its shape. Returns the parameters, the optimizer state
/// when the checkpoint has all of it for this optimizer, the step, and notes for the user.
pub fn init_from_checkpoint(
    ck: &crate::checkpoint::Checkpoint,
    path: &std::path::Path,
    graph: &crate::ir::Graph,
    tasks: &[crate::mtl::TaskDef],
    fresh: &[Vec<f32>],
    optimizer: &crate::optim::Optimizer,
) -> Result<InitFrom> {
    let known: Vec<crate::mtl::TaskDef> = meta_json(ck, path, "tasks")?;
    let is_known = |name: &str| known.iter().any(|t| t.name == name);
    let mut notes = Vec::new();
    let mut names = Vec::new();
    let mut shapes = Vec::new();
    let mut from_ck = Vec::new();
    for p in &graph.params {
        let new_head = tasks.iter().any(|t| !is_known(&t.name) && p.name.starts_with(&format!("heads.{}.", t.name)));
        from_ck.push(!new_head);
        if !new_head {
            names.push(p.name.clone());
            shapes.push(p.shape.clone());
        }
    }
    for t in tasks.iter().filter(|t| !is_known(&t.name)) {
        notes.push(format!("heads.{} starts fresh (task not in the checkpoint)", t.name));
    }
    let loaded = ck.take(path, &names, &shapes)?;
    // Tensors nobody uses: heads of tasks the config dropped are noted; anything else is an error.
    let used: std::collections::BTreeSet<&String> = names.iter().collect();
    let mut unexpected = Vec::new();
    for name in ck.tensors.keys() {
        if used.contains(name) || ["optim.", "weighting.", "best."].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        match name.strip_prefix("heads.").and_then(|r| r.split('.').next()) {
            Some(task) if !tasks.iter().any(|t| t.name == task) => {
                notes.push(format!("{name} ignored (task not in the config)"))
            }
            _ => unexpected.push(name.clone()),
        }
    }
    if !unexpected.is_empty() {
        return Err(Error::file(
            path.display(),
            format!("unexpected tensors for this model: {}", unexpected.join(", ")),
        ));
    }
    let mut it = loaded.into_iter();
    let params: Vec<Vec<f32>> =
        from_ck.iter().zip(fresh).map(|(&c, f)| if c { it.next().unwrap_or_default() } else { f.clone() }).collect();
    // Optimizer state: only when complete for this optimizer and every parameter.
    let state_names = optim_state_names(optimizer);
    let mut state = Vec::new();
    for s in state_names {
        let per: Option<Vec<Vec<f32>>> = graph
            .params
            .iter()
            .map(|p| {
                ck.tensors
                    .get(&format!("optim.{s}.{}", p.name))
                    .filter(|(sh, _)| *sh == p.shape)
                    .map(|(_, v)| v.clone())
            })
            .collect();
        match per {
            Some(v) => state.push(v),
            None => break,
        }
    }
    let same_opt = ck
        .metadata
        .get("optimizer")
        .and_then(|o| serde_json::from_str::<crate::optim::Optimizer>(o).ok())
        .is_some_and(|o| std::mem::discriminant(&o) == std::mem::discriminant(optimizer));
    let step = ck.metadata.get("step").and_then(|s| s.parse().ok()).unwrap_or(0);
    let optim = (same_opt && !state_names.is_empty() && state.len() == state_names.len()).then_some(state);
    if optim.is_none() && !state_names.is_empty() {
        notes.push("optimizer state starts fresh".into());
    }
    Ok(InitFrom { params, optim, step: if same_opt { step } else { 0 }, notes })
}

/// A checkpoint of a trainer's whole state ([`Trainer::snapshot`]): what `--checkpoint-every`
/// writes and `--resume` reads. Its parameters are the trainer's current ones (after
/// training: the kept best), so it also serves `eval`, `predict` and `--init`.
pub fn snapshot_checkpoint(cfg: &Config, prepared: &Prepared, tr: &Trainer) -> Result<crate::checkpoint::Checkpoint> {
    let snap = tr.snapshot()?;
    let graph = &tr.model().graph;
    let mut ck = make_checkpoint(
        cfg,
        &tr.model().spec,
        tr.scaling(),
        &prepared.splits.train.feature_names,
        graph,
        &snap.params,
        Some((&cfg.train.optimizer, &snap.optim_state, snap.steps)),
    )?;
    let json = |v: &dyn erased::Json| v.to_json();
    ck.metadata.insert("loop".into(), json(&snap.state)?);
    ck.metadata.insert("weighter".into(), json(&snap.weighter)?);
    ck.metadata.insert("weights".into(), json(&snap.weights)?);
    ck.metadata.insert("coefficients".into(), json(&snap.coefficients)?);
    if let Some(best) = &snap.best_params {
        for (p, v) in graph.params.iter().zip(best) {
            ck.insert(&format!("best.{}", p.name), &p.shape, v.clone());
        }
    }
    if let Some(g) = &snap.weighting_gpu {
        ck.insert("weighting.state", &[g.len()], g.clone());
    }
    Ok(ck)
}

/// A trainer for the config, restored from a checkpoint written by [`snapshot_checkpoint`]:
/// training continues exactly where it stopped.
fn resume_trainer(ctx: &Arc<Context>, cfg: &Config, prepared: &Prepared, path: &std::path::Path) -> Result<Trainer> {
    let ck = crate::checkpoint::Checkpoint::load(path)?;
    let info = checkpoint_info(&ck, path)?;
    let spec = model_spec(cfg, prepared.splits.train.width());
    if info.spec != spec || info.features != prepared.splits.train.feature_names {
        return Err(Error::file(
            path.display(),
            "it was written for another model or other features than this config's",
        ));
    }
    let mut tr = config_trainer(ctx, cfg, prepared, None)?;
    let names = tr.param_names();
    let (n, s): (Vec<String>, Vec<Vec<usize>>) = names.iter().cloned().unzip();
    let params = ck.take(path, &n, &s)?;
    let best_names: Vec<String> = n.iter().map(|x| format!("best.{x}")).collect();
    let best_params =
        if ck.tensors.contains_key(&best_names[0]) { Some(ck.take(path, &best_names, &s)?) } else { None };
    let mut optim_state = Vec::new();
    for st in optim_state_names(&cfg.train.optimizer) {
        let sn: Vec<String> = n.iter().map(|x| format!("optim.{st}.{x}")).collect();
        optim_state.push(ck.take(path, &sn, &s)?);
    }
    let snap = crate::train::Snapshot {
        params,
        optim_state,
        steps: ck
            .meta(path, "step")?
            .parse()
            .map_err(|_| Error::file(path.display(), "metadata \"step\" is not a number"))?,
        state: meta_json(&ck, path, "loop")?,
        best_params,
        weighter: meta_json(&ck, path, "weighter")?,
        weights: meta_json(&ck, path, "weights")?,
        coefficients: meta_json(&ck, path, "coefficients")?,
        weighting_gpu: ck.tensors.get("weighting.state").map(|(_, v)| v.clone()),
    };
    if snap.weighter.method != cfg.weighting {
        return Err(Error::file(
            path.display(),
            format!("written with weighting {}, the config says {}", snap.weighter.method.name(), cfg.weighting.name()),
        ));
    }
    tr.restore(snap)?;
    Ok(tr)
}
