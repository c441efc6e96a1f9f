//! Checkpoints of a run: what `--save` and `--checkpoint-every` write (the model, its
//! description, the training state) and what `--init`, `eval` and `predict` read, by the
//! names of [`crate::checkpoint::schema`].

use std::path::Path;

use super::Prepared;
use crate::checkpoint::schema::{self, meta};
use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::data::Encoding;
use crate::error::{Error, Result};
use crate::nn::ModelSpec;
use crate::train::{Scaling, Trainer};

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
) -> Result<Checkpoint> {
    let json = |v: &dyn erased::Json| v.to_json();
    let mut ck = Checkpoint::default();
    for (p, v) in graph.params.iter().zip(params) {
        ck.insert(&p.name, &p.shape, v.clone());
    }
    if let Some((opt, state, step)) = optim {
        for (name, per_param) in schema::optim_state_names(opt).iter().zip(state) {
            for (p, v) in graph.params.iter().zip(per_param) {
                ck.insert(&schema::optim_state(name, &p.name), &p.shape, v.clone());
            }
        }
        ck.metadata.insert(meta::STEP.into(), step.to_string());
        ck.metadata.insert(meta::OPTIMIZER.into(), json(opt)?);
    }
    ck.metadata.insert(meta::FORMAT.into(), schema::FORMAT.into());
    ck.metadata.insert(meta::CONFIG.into(), json(&cfg.raw)?);
    ck.metadata.insert(meta::MODEL.into(), json(spec)?);
    ck.metadata.insert(meta::TASKS.into(), json(&cfg.tasks)?);
    ck.metadata.insert(meta::SCALING.into(), json(scaling)?);
    ck.metadata.insert(meta::FEATURES.into(), json(&feature_names.to_vec())?);
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

pub(super) fn meta_json<T: serde::de::DeserializeOwned>(ck: &Checkpoint, path: &Path, key: &str) -> Result<T> {
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
    /// Numeric feature names, in model input order.
    pub features: Vec<String>,
    /// How raw columns become its inputs (none recorded: every column numeric, nothing
    /// imputed).
    pub encoding: Encoding,
}

/// Reads the model description stored in a checkpoint.
pub fn checkpoint_info(ck: &Checkpoint, path: &Path) -> Result<CheckpointInfo> {
    Ok(CheckpointInfo {
        spec: meta_json(ck, path, meta::MODEL)?,
        tasks: meta_json(ck, path, meta::TASKS)?,
        scaling: meta_json(ck, path, meta::SCALING)?,
        features: meta_json(ck, path, meta::FEATURES)?,
        encoding: match ck.metadata.contains_key(meta::ENCODING) {
            true => meta_json(ck, path, meta::ENCODING)?,
            false => Encoding { numeric: meta_json(ck, path, meta::FEATURES)?, ..Encoding::default() },
        },
    })
}

/// A trained model from a checkpoint: its description and its parameters (by name and shape).
pub fn load_model(path: &Path) -> Result<(CheckpointInfo, Vec<Vec<f32>>)> {
    let ck = Checkpoint::load(path)?;
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
    ck: &Checkpoint,
    path: &Path,
    graph: &crate::ir::Graph,
    tasks: &[crate::mtl::TaskDef],
    fresh: &[Vec<f32>],
    optimizer: &crate::optim::Optimizer,
) -> Result<InitFrom> {
    // The checkpoint's tasks: as its metadata lists them, or, in a file of tensors alone,
    // those whose head is there.
    let known: Vec<String> = if ck.metadata.contains_key(meta::TASKS) {
        meta_json::<Vec<crate::mtl::TaskDef>>(ck, path, meta::TASKS)?.into_iter().map(|t| t.name).collect()
    } else {
        tasks
            .iter()
            .filter(|t| ck.tensors.keys().any(|k| k.starts_with(&format!("heads.{}.", t.name))))
            .map(|t| t.name.clone())
            .collect()
    };
    let is_known = |name: &str| known.iter().any(|t| t == name);
    let mut notes = Vec::new();
    let mut names = Vec::new();
    let mut shapes = Vec::new();
    let mut from_ck = Vec::new();
    for p in &graph.params {
        // A new task's own tensors: its head, and its gate in a mixture of experts.
        let new_head = tasks.iter().any(|t| {
            !is_known(&t.name)
                && (p.name.starts_with(&format!("heads.{}.", t.name))
                    || p.name.starts_with(&format!("gates.{}.", t.name)))
        });
        from_ck.push(!new_head);
        if !new_head {
            names.push(p.name.clone());
            shapes.push(p.shape.clone());
        }
    }
    for t in tasks.iter().filter(|t| !is_known(&t.name)) {
        let gated = graph.params.iter().any(|p| p.name.starts_with(&format!("gates.{}.", t.name)));
        notes.push(match gated {
            true => format!("heads.{0} and gates.{0} start fresh (task not in the checkpoint)", t.name),
            false => format!("heads.{} starts fresh (task not in the checkpoint)", t.name),
        });
    }
    let loaded = ck.take(path, &names, &shapes)?;
    // Tensors nobody uses: heads of tasks the config dropped are noted; anything else is an error.
    let used: std::collections::BTreeSet<&String> = names.iter().collect();
    let mut unexpected = Vec::new();
    for name in ck.tensors.keys() {
        if used.contains(name) || schema::STATE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        match name.strip_prefix("heads.").or_else(|| name.strip_prefix("gates.")).and_then(|r| r.split('.').next()) {
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
    let state_names = schema::optim_state_names(optimizer);
    let mut state = Vec::new();
    for s in state_names {
        let per: Option<Vec<Vec<f32>>> = graph
            .params
            .iter()
            .map(|p| {
                ck.tensors
                    .get(&schema::optim_state(s, &p.name))
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
        .get(meta::OPTIMIZER)
        .and_then(|o| serde_json::from_str::<crate::optim::Optimizer>(o).ok())
        .is_some_and(|o| std::mem::discriminant(&o) == std::mem::discriminant(optimizer));
    let step = ck.metadata.get(meta::STEP).and_then(|s| s.parse().ok()).unwrap_or(0);
    let optim = (same_opt && !state_names.is_empty() && state.len() == state_names.len()).then_some(state);
    if optim.is_none() && !state_names.is_empty() {
        notes.push("optimizer state starts fresh".into());
    }
    Ok(InitFrom { params, optim, step: if same_opt { step } else { 0 }, notes })
}

/// A checkpoint of a trainer's whole state ([`Trainer::snapshot`]): what `--checkpoint-every`
/// writes and `--resume` reads. Its parameters are the trainer's current ones (after
/// training: the kept best), so it also serves `eval`, `predict` and `--init`.
pub fn snapshot_checkpoint(cfg: &Config, prepared: &Prepared, tr: &Trainer) -> Result<Checkpoint> {
    crate::gpu::wait::block("writing a checkpoint", snapshot_checkpoint_async(cfg, prepared, tr))
}

/// [`snapshot_checkpoint`] as a future: the form a browser page uses.
pub async fn snapshot_checkpoint_async(cfg: &Config, prepared: &Prepared, tr: &Trainer) -> Result<Checkpoint> {
    let snap = tr.snapshot_async().await?;
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
    ck.metadata.insert(meta::ENCODING.into(), json(&prepared.encoding)?);
    ck.metadata.insert(meta::LOOP.into(), json(&snap.state)?);
    ck.metadata.insert(meta::WEIGHTER.into(), json(&snap.weighter)?);
    ck.metadata.insert(meta::WEIGHTS.into(), json(&snap.weights)?);
    ck.metadata.insert(meta::COEFFICIENTS.into(), json(&snap.coefficients)?);
    if let Some(best) = &snap.best_params {
        for (p, v) in graph.params.iter().zip(best) {
            ck.insert(&schema::best(&p.name), &p.shape, v.clone());
        }
    }
    if let Some(g) = &snap.weighting_gpu {
        ck.insert(schema::WEIGHTING_STATE, &[g.len()], g.clone());
    }
    Ok(ck)
}
