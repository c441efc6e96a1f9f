//! The multi-task part of a training step on the GPU, built on the compiler's per-task split:
//! the loss weightings computed in the step (UW, GLS, FAMO), the per-task gradient slots at
//! the shared representation, their Gram matrix, sum, combination and GradDrop
//! (`slots`). The runtime runs these segments ([`crate::runtime::GpuGraph`]).

pub(crate) mod affinity;
pub(crate) mod slots;

use crate::compile::Compiled;
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, Tensor};
use crate::ir::{NodeId, Op};
use crate::kernels;
use crate::mtl::weighting::Target;
use slots::Slots;

/// How the GPU computes loss weights inside the step, for methods that need no host work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GpuLossWeighting {
    /// Weights come from the weights buffer as set by the host (ew, static, dwa, rlw, and
    /// every gradient method).
    Host,
    /// Uncertainty weighting with log-variances in parameter `log_var` (by index).
    Uw {
        /// Index of the `weighting.log_var` parameter.
        log_var: usize,
    },
    /// IMTL-L's learned loss scales (e^s·L − s), in parameter `log_scale` (by index).
    ImtlL {
        /// Index of the `weighting.log_scale` parameter.
        log_scale: usize,
    },
    /// Geometric loss strategy.
    Gls,
    /// Smooth Tchebycheff scalarisation with its smoothing and warm-up epochs.
    Stch {
        /// μ.
        mu: f32,
        /// Warm-up epochs.
        warmup: usize,
    },
    /// FAMO with its learning rate and weight decay.
    Famo {
        /// Learning rate of the task logits.
        lr: f32,
        /// Their weight decay.
        weight_decay: f32,
    },
}

impl GpuLossWeighting {
    /// Whether the weighting needs this step's losses, so the loss kernels scale their
    /// gradients by one and the weighting scales them after.
    pub fn after_loss(self) -> bool {
        matches!(self, GpuLossWeighting::Gls | GpuLossWeighting::Famo { .. } | GpuLossWeighting::Stch { .. })
    }
}

/// Per-task state a gradient method keeps on the GPU beside the per-task gradients of the
/// shared parameters (T more rows of the slots; params target only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlotState {
    /// None.
    #[default]
    None,
    /// A moving average of each task's gradient (DB-MTL, MoCo): the Gram matrix covers the
    /// gradients and the averages, 2T rows.
    Momentum,
    /// The running sum of each task's squared gradient, elementwise (ExcessMTL).
    SquaredSum,
}

/// Per-task gradients at the shared representation `z`: each task's head writes its own
/// slot, so they can be weighted, combined or inspected (Gram matrix) before the trunk.
#[derive(Clone, Copy, Debug)]
pub struct TaskGradSpec {
    /// The shared representation (the trunk's output).
    pub z: NodeId,
    /// The first `shared_params` parameters are the trunk's.
    pub shared_params: usize,
    /// Where gradient methods take the per-task gradients.
    pub target: Target,
    /// Loss weighting computed on the GPU.
    pub loss_weighting: GpuLossWeighting,
    /// Clip the norm of all gradients to this before each update (torch's clip_grad_norm_).
    pub max_grad_norm: Option<f32>,
    /// Per-task state kept beside the slots.
    pub state: SlotState,
    /// Build TAG's lookahead-affinity probe, with SGD steps of this rate (None: no probe).
    pub affinity_lr: Option<f32>,
}

/// The multi-task segments of a step.
pub(crate) struct TaskStep {
    pub(crate) spec: TaskGradSpec,
    pub(crate) tasks: usize,
    /// Loss weightings computed from this step's losses, after the forward pass.
    pub(crate) post: Vec<Dispatch>,
    /// After the update and a second forward pass on the same batch (FAMO's update of its
    /// logits from the loss change, as LibMTL's `update_w`).
    pub(crate) after_update: Vec<Dispatch>,
    /// The backward pass after z (the heads), writing the slots.
    pub(crate) head_bw: Vec<Dispatch>,
    /// The backward pass below z (the trunk), reading z's combined gradient.
    pub(crate) trunk_bw: Vec<Dispatch>,
    /// None when nothing shared learns (an empty trunk): no per-task slots then.
    pub(crate) slots: Option<Slots>,
    /// State a weighting keeps on the GPU between steps (FAMO's logits, Adam moments, losses;
    /// DB-MTL's and MoCo's moving averages; ExcessMTL's sums of squares).
    pub(crate) weighting_state: Option<Tensor>,
    /// Each head parameter's gradient times its task's weight in `head_weights` (the methods
    /// that weight the heads, and the log transform), one dispatch per parameter.
    pub(crate) head_scale: Vec<Dispatch>,
    /// What phase two uploads: coefficients, the averages' update, the heads' weights.
    pub(crate) plan: slots::PlanBuffer,
    /// TAG's lookahead-affinity probe, where asked for.
    pub(crate) affinity: Option<affinity::AffinityProbe>,
    _keep: Vec<Tensor>,
}

/// Builds the multi-task segments on a graph compiled with `Options::split_at = spec.z`
/// (and `weights_after_loss` as the weighting wants): UW's weights go first in the forward
/// pass, the backward pass is cut at z into the heads' and the trunk's parts.
pub(crate) fn task_step(ctx: &Context, c: &mut Compiled, spec: TaskGradSpec) -> Result<TaskStep> {
    let tasks = c.graph.tasks();
    let mem = &c.mem;
    match spec.loss_weighting {
        GpuLossWeighting::Uw { log_var } => {
            c.forward.insert(0, kernels::uw_weights(ctx, &mem.param_views[log_var], &mem.weights)?)
        }
        GpuLossWeighting::ImtlL { log_scale } => {
            c.forward.insert(0, kernels::imtl_weights(ctx, &mem.param_views[log_scale], &mem.weights)?)
        }
        _ => {}
    }
    let t1 = tasks.max(1);
    let LossWeightingProgram { post, after_update, state: mut weighting_state, mut keep } =
        loss_weighting_program(ctx, c, spec.loss_weighting, t1)?;
    let rows = if spec.state == SlotState::Momentum { 2 * t1 } else { t1 };
    let plan = slots::PlanBuffer::new(ctx, rows, t1, mem.align)?;
    let head_scale = head_scaling(ctx, c, spec.shared_params, &plan.heads)?;
    let mut backward = std::mem::take(&mut c.backward);
    let Some(split) = c.split.take() else {
        // No shared parameters: only the loss weighting's own dispatches.
        let step = TaskStep {
            spec,
            tasks,
            post,
            after_update,
            head_bw: backward,
            trunk_bw: Vec::new(),
            slots: None,
            weighting_state,
            head_scale,
            plan,
            affinity: None,
            _keep: keep,
        };
        return Ok(step);
    };
    let head_end = c.head_end.unwrap_or(backward.len());
    let trunk_bw: Vec<Dispatch> = backward.drain(head_end..).collect();
    let z_grad = mem.grad(spec.z)?.clone();
    let trunk_len = match spec.target {
        Target::Representation => None,
        Target::Params => {
            let shared = spec.shared_params.min(c.graph.params.len());
            if shared == 0 {
                return Err(Error::invalid("weighting target", "params needs shared parameters"));
            }
            // The shared parameters come first in the buffer, though not in parameter order
            // where packed: their region ends where the last of them ends.
            (0..shared).map(|p| mem.store.offsets[p] + mem.store.len_of(p)).max()
        }
    };
    let shared_len = (0..spec.shared_params.min(c.graph.params.len()))
        .map(|p| mem.store.offsets[p] + mem.store.len_of(p))
        .max()
        .unwrap_or(0);
    let probe = match spec.affinity_lr {
        Some(lr) if shared_len > 0 => {
            let inputs = affinity::ProbeInputs {
                gz_views: &split.views,
                z_grad: &z_grad,
                params: &mem.store.params,
                grads: &mem.store.grads,
                len_p: shared_len,
                losses: &mem.losses,
                weights: &mem.weights,
                align: mem.align,
            };
            Some(affinity::probe(ctx, inputs, lr)?)
        }
        _ => None,
    };
    let z = slots::Representation {
        slots: split.flat,
        views: &split.views,
        len: split.len,
        stride: split.stride,
        grad: &z_grad,
        value: mem.value(spec.z)?,
        cols: c.graph.shape(spec.z).last().copied().unwrap_or(1),
    };
    let (slots, ones) = slots::program(ctx, (spec.state, &plan), z, trunk_len, &mem.store.grads, mem.align)?;
    keep.push(ones);
    if let Some(rows) = &slots.state_rows {
        weighting_state = Some(rows.clone());
    }
    Ok(TaskStep {
        spec,
        tasks,
        post,
        after_update,
        head_bw: backward,
        trunk_bw,
        slots: Some(slots),
        weighting_state,
        head_scale,
        plan,
        affinity: probe,
        _keep: keep,
    })
}

/// A GPU loss weighting's dispatches: after the forward pass, after the update, its state.
struct LossWeightingProgram {
    post: Vec<Dispatch>,
    after_update: Vec<Dispatch>,
    state: Option<Tensor>,
    keep: Vec<Tensor>,
}

/// The dispatches of the loss weighting computed on the GPU from the step's losses (and, for
/// the weightings applied after the loss, each task's logit gradient scaled by its weight).
fn loss_weighting_program(
    ctx: &Context,
    c: &Compiled,
    lw: GpuLossWeighting,
    t1: usize,
) -> Result<LossWeightingProgram> {
    let mem = &c.mem;
    let mut post = Vec::new();
    let mut after_update = Vec::new();
    let mut keep = Vec::new();
    let mut weighting_state = None;
    match lw {
        GpuLossWeighting::Host => {}
        GpuLossWeighting::Uw { log_var } => {
            post.push(kernels::uw_grad(ctx, &mem.param_views[log_var], &mem.losses, &mem.grad_views[log_var])?)
        }
        GpuLossWeighting::ImtlL { log_scale } => {
            post.push(kernels::imtl_grad(ctx, &mem.param_views[log_scale], &mem.losses, &mem.grad_views[log_scale])?)
        }
        GpuLossWeighting::Gls => post.push(kernels::gls_weights(ctx, &mem.losses, &mem.weights)?),
        GpuLossWeighting::Stch { mu, warmup } => {
            let state = ctx.zeros(&[t1 + 2])?;
            post.push(kernels::stch(ctx, &mem.losses, &mem.weights, &state, warmup, mu)?);
            weighting_state = Some(state);
        }
        GpuLossWeighting::Famo { lr, weight_decay } => {
            let min_losses = ctx.zeros(&[t1])?;
            let state = ctx.zeros(&[4 * t1 + 1])?;
            let (l, w) = (&mem.losses, &mem.weights);
            post.push(kernels::famo(ctx, &min_losses, l, w, &state, false, lr, weight_decay)?);
            after_update.push(kernels::famo(ctx, &min_losses, l, w, &state, true, lr, weight_decay)?);
            keep.push(min_losses);
            weighting_state = Some(state);
        }
    }
    if lw.after_loss() {
        for node in &c.graph.nodes {
            if let Op::Loss { logits, task, .. } = node.op {
                if let Some(g) = &mem.node_grads[logits.0] {
                    post.push(kernels::scale_task(ctx, g, &mem.weights, task)?);
                }
            }
        }
    }
    Ok(LossWeightingProgram { post, after_update, state: weighting_state, keep })
}

/// The dispatches that scale each head parameter's gradient (a parameter only one task's loss
/// reads, past the shared ones) by its task's weight in `weights`.
fn head_scaling(ctx: &Context, c: &Compiled, shared: usize, weights: &Tensor) -> Result<Vec<Dispatch>> {
    let mut d = Vec::new();
    for (p, owner) in c.graph.param_owners().into_iter().enumerate().skip(shared) {
        if let (Some(task), Some(g)) = (owner, c.mem.grad_views.get(p)) {
            d.push(kernels::scale_task(ctx, g, weights, task)?);
        }
    }
    Ok(d)
}
