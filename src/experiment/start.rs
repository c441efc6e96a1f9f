//! The one way to build a config's trainer: fresh, from `--init`, or from `--resume`.

use std::path::Path;
use std::sync::Arc;

use super::checkpoints::{checkpoint_info, init_from_checkpoint, meta_json, CheckpointInfo, InitFrom};
use super::{model_spec, Prepared};
use crate::checkpoint::schema::{self, meta};
use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::dist::Collective;
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::train::{Snapshot, Trainer};

/// The trainer a config describes (model, tasks, settings, weighting), from `init` or the seed;
/// one rank of data-parallel training when `collective` is given.
fn config_trainer(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    init: Option<Vec<Vec<f32>>>,
    collective: Option<Box<dyn Collective>>,
) -> Result<Trainer> {
    let spec = model_spec(cfg, &prepared.splits.train);
    let (settings, scaling) = (cfg.train.clone(), prepared.scaling.clone());
    match collective {
        None => Trainer::with_weighting(ctx.clone(), &spec, &cfg.tasks, settings, scaling, init, cfg.weighter()),
        Some(c) => Trainer::distributed(ctx.clone(), &spec, &cfg.tasks, settings, scaling, init, cfg.weighter(), c),
    }
}

/// How a trainer starts.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Parameters from the seed.
    Fresh,
    /// Parameters by name from a checkpoint (`--init`): heads of tasks it lacks start fresh,
    /// and its optimizer state is taken where it is complete for this optimizer.
    Init(&'a Path),
    /// The whole state of a run saved by `--checkpoint-every` (`--resume`): training
    /// continues exactly.
    Resume(&'a Path),
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
    build_trainer_with(ctx, cfg, prepared, start, on_note, None)
}

/// [`build_trainer`], as one rank of data-parallel training when `collective` is given (every
/// rank builds its own from the same config, data and start).
pub fn build_trainer_with(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    start: Start<'_>,
    on_note: &mut dyn FnMut(&str),
    collective: Option<Box<dyn Collective>>,
) -> Result<Trainer> {
    match start {
        Start::Fresh => config_trainer(ctx, cfg, prepared, None, collective),
        Start::Resume(path) => resume_trainer(ctx, cfg, prepared, path, collective),
        Start::Init(path) => {
            let ck = Checkpoint::load(path)?;
            if !ck.metadata.contains_key(meta::MODEL) {
                // A file of tensors alone, as `safetensors.torch.save_file(model.state_dict())`
                // writes it: the config says what the model is; names and shapes must match it.
                on_note(&format!(
                    "{} has no Hydra metadata (a PyTorch state_dict?): the config gives the model and the \
                     features; tensors are taken by name and shape",
                    path.display()
                ));
            } else {
                check_features(&checkpoint_info(&ck, path)?, prepared, path)?;
            }
            let spec = model_spec(cfg, &prepared.splits.train);
            let fresh = crate::nn::MultiTaskModel::build(&spec, cfg.train.batch_size)?;
            let fresh_params = fresh.graph.init_params(cfg.train.seed)?;
            let InitFrom { params, optim, step, notes } =
                init_from_checkpoint(&ck, path, &fresh.graph, &cfg.tasks, &fresh_params, &cfg.train.optimizer)?;
            for n in &notes {
                on_note(n);
            }
            // The weighting's own parameters (uw's log-variances) start at their defaults.
            let mut tr = config_trainer(ctx, cfg, prepared, Some(params), collective)?;
            if let Some(state) = optim {
                tr.graph_mut().write_optim_state(&state, step)?;
            }
            Ok(tr)
        }
    }
}

fn check_features(info: &CheckpointInfo, prepared: &Prepared, path: &Path) -> Result<()> {
    if info.features != prepared.splits.train.feature_names {
        return Err(Error::file(
            path.display(),
            format!(
                "trained on features {:?}, the config gives {:?}",
                info.features, prepared.splits.train.feature_names
            ),
        ));
    }
    Ok(())
}

/// A trainer for the config, restored from a checkpoint written by [`snapshot_checkpoint`]:
/// training continues exactly where it stopped.
fn resume_trainer(
    ctx: &Arc<Context>,
    cfg: &Config,
    prepared: &Prepared,
    path: &Path,
    collective: Option<Box<dyn Collective>>,
) -> Result<Trainer> {
    let ck = Checkpoint::load(path)?;
    if let Some(name) = ck.half_precision_tensors().first() {
        return Err(Error::file(
            path.display(),
            format!(
                "{name} is stored in half precision, which holds no exact training state: --resume needs a \
                 checkpoint saved in f32 (train --save-dtype f32, the default); --init starts a new run from this one"
            ),
        ));
    }
    let info = checkpoint_info(&ck, path)?;
    let spec = model_spec(cfg, &prepared.splits.train);
    if info.spec != spec || info.features != prepared.splits.train.feature_names {
        return Err(Error::file(
            path.display(),
            "it was written for another model or other features than this config's",
        ));
    }
    let mut tr = config_trainer(ctx, cfg, prepared, None, collective)?;
    let names = tr.param_names();
    let (n, s): (Vec<String>, Vec<Vec<usize>>) = names.iter().cloned().unzip();
    let params = ck.take(path, &n, &s)?;
    let best_names: Vec<String> = n.iter().map(|x| schema::best(x)).collect();
    let best_params =
        if ck.tensors.contains_key(&best_names[0]) { Some(ck.take(path, &best_names, &s)?) } else { None };
    let mut optim_state = Vec::new();
    for st in schema::optim_state_names(&cfg.train.optimizer) {
        let sn: Vec<String> = n.iter().map(|x| schema::optim_state(st, x)).collect();
        optim_state.push(ck.take(path, &sn, &s)?);
    }
    let snap = Snapshot {
        params,
        optim_state,
        steps: ck
            .meta(path, meta::STEP)?
            .parse()
            .map_err(|_| Error::file(path.display(), "metadata \"step\" is not a number"))?,
        state: meta_json(&ck, path, meta::LOOP)?,
        best_params,
        weighter: meta_json(&ck, path, meta::WEIGHTER)?,
        weights: meta_json(&ck, path, meta::WEIGHTS)?,
        coefficients: meta_json(&ck, path, meta::COEFFICIENTS)?,
        weighting_gpu: ck.tensors.get(schema::WEIGHTING_STATE).map(|(_, v)| v.clone()),
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
