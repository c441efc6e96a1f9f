//! What a trainer sets up around its model for the weighting method: the parameters and GPU
//! loss weighting the method needs, and the checks that the method fits the model.

use crate::error::{Error, Result};
use crate::ir::Init;
use crate::mtl::gpu::GpuLossWeighting;
use crate::mtl::weighting::{Method, Target, Weighter};
use crate::nn::{ModelSpec, MultiTaskModel};

/// Adds the parameters the method learns with the model (UW's log-variances, IMTL-L's log
/// scales) and says how the GPU computes its loss weights.
pub(super) fn loss_weighting(model: &mut MultiTaskModel, method: &Method, t: usize) -> GpuLossWeighting {
    let model_params = model.graph.params.len();
    match *method {
        Method::Uw => {
            model.graph.param(crate::checkpoint::schema::UW_LOG_VAR, &[t], Init::Constant(0.0));
            GpuLossWeighting::Uw { log_var: model_params }
        }
        Method::Imtl => {
            model.graph.param(crate::checkpoint::schema::IMTL_LOG_SCALE, &[t], Init::Constant(0.0));
            GpuLossWeighting::ImtlL { log_scale: model_params }
        }
        Method::Gls => GpuLossWeighting::Gls,
        Method::Stch { mu, warmup_epochs } => GpuLossWeighting::Stch { mu, warmup: warmup_epochs },
        Method::Famo { lr, weight_decay } => GpuLossWeighting::Famo { lr, weight_decay },
        _ => GpuLossWeighting::Host,
    }
}

/// The method fits the model: a target it takes, shared layers to combine gradients of, and
/// per-task gradients that can be separated where it asks for them.
pub(super) fn check_weighting(spec: &ModelSpec, model: &MultiTaskModel, weighter: &Weighter) -> Result<()> {
    if spec.arch == crate::nn::Arch::Ple
        && spec.levels > 1
        && weighter.method.uses_gradients()
        && weighter.target == Target::Params
    {
        return Err(Error::invalid(
            "weighting.target",
            format!(
                "{} on ple with {} levels takes target = \"representation\" (the last level's shared \
                 experts' outputs): below the last level the tasks' branches feed the shared gate, so \
                 per-task gradients of the lower shared parameters cannot be separated",
                weighter.method.name(),
                spec.levels
            ),
        ));
    }
    let targets = weighter.method.entry().targets;
    if weighter.method.uses_gradients() && !targets.contains(&weighter.target) {
        return Err(Error::invalid(
            "weighting.target",
            format!("{} takes {:?} only (as LibMTL), not {:?}", weighter.method.name(), targets, weighter.target),
        ));
    }
    if model.trunk_params == 0 && weighter.method.uses_gradients() {
        return Err(Error::invalid(
            "weighting.method",
            format!("{} combines gradients of shared layers, but model.trunk is empty", weighter.method.name()),
        ));
    }
    Ok(())
}
