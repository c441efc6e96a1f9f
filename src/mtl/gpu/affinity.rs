//! TAG's lookahead affinity (Fifty et al., NeurIPS 2021) on the GPU: on one batch, each task's
//! own gradient of the shared parameters, the shared parameters after an SGD step on it alone,
//! and every task's loss there, all from scratch buffers in one submit; the parameters are put
//! back before the submit ends. The host reads the losses before and after each task's step
//! (and the Gram matrix of the task gradients, for the first-order estimate) in one readback.

use crate::error::Result;
use crate::gpu::{Context, Dispatch, Tensor};
use crate::ir::Activation;
use crate::kernels;

/// The probe's own dispatches and buffers; the runtime puts them around the step's forward
/// pass and trunk backward (see `GpuGraph::affinity_probe`).
pub(crate) struct AffinityProbe {
    /// Per task: its gradient at the representation into the representation's gradient.
    pub(crate) copy_in: Vec<Dispatch>,
    /// Per task: the trunk's gradient (after its backward) into the task's row.
    pub(crate) copy_out: Vec<Dispatch>,
    /// The shared parameters into the scratch buffer, and back.
    pub(crate) save: Dispatch,
    pub(crate) restore: Dispatch,
    /// Per task: the shared parameters after its own SGD step.
    pub(crate) look: Vec<Dispatch>,
    /// The losses into row 0 (before), and per task into row 1 + t (after its step).
    pub(crate) keep_losses: Vec<Dispatch>,
    /// The Gram matrix of the rows.
    pub(crate) gram_dispatch: Dispatch,
    /// `[T + 1, stride]` losses, row 0 before, row 1 + t after task t's step.
    pub(crate) losses: Tensor,
    pub(crate) loss_stride: usize,
    /// The rows' Gram matrix `[T, T]` (of the weighted gradients).
    pub(crate) gram: Tensor,
    _keep: Vec<Tensor>,
}

/// What the probe needs of the compiled step.
pub(crate) struct ProbeInputs<'a> {
    /// Per-task gradients at the representation, one view each, and the representation's gradient.
    pub(crate) gz_views: &'a [Tensor],
    pub(crate) z_grad: &'a Tensor,
    /// The flat parameter and gradient buffers; the shared parameters are their first `len_p`.
    pub(crate) params: &'a Tensor,
    pub(crate) grads: &'a Tensor,
    pub(crate) len_p: usize,
    /// The step's losses and loss weights.
    pub(crate) losses: &'a Tensor,
    pub(crate) weights: &'a Tensor,
    /// Views must start at multiples of this (in f32 values).
    pub(crate) align: usize,
}

/// Builds the probe for a lookahead step of rate `lr` (SGD, as the paper's).
pub(crate) fn probe(ctx: &Context, x: ProbeInputs<'_>, lr: f32) -> Result<AffinityProbe> {
    let t = x.gz_views.len();
    let stride_p = x.len_p.div_ceil(x.align) * x.align;
    let loss_stride = t.div_ceil(x.align) * x.align;
    let rows = ctx.zeros(&[t * stride_p])?;
    let scratch = ctx.zeros(&[x.len_p])?;
    let losses = ctx.zeros(&[(t + 1) * loss_stride])?;
    let gram = ctx.zeros(&[t * t])?;
    let shared = x.params.view(0, &[x.len_p])?;
    let shared_grads = x.grads.view(0, &[x.len_p])?;
    let copy = |a: &Tensor, b: &Tensor| kernels::act_forward(ctx, Activation::Identity, a, b);
    let mut p = AffinityProbe {
        copy_in: Vec::new(),
        copy_out: Vec::new(),
        save: copy(&shared, &scratch)?,
        restore: copy(&scratch, &shared)?,
        look: Vec::new(),
        keep_losses: vec![copy(x.losses, &losses.view(0, &[t])?)?],
        gram_dispatch: kernels::gram(ctx, &rows, t, x.len_p, stride_p, &gram)?,
        losses: losses.clone(),
        loss_stride,
        gram,
        _keep: Vec::new(),
    };
    for (k, gz) in x.gz_views.iter().enumerate() {
        let row = rows.view(k * stride_p, &[x.len_p])?;
        p.copy_in.push(copy(gz, x.z_grad)?);
        p.copy_out.push(copy(&shared_grads, &row)?);
        p.look.push(kernels::lookahead(ctx, &scratch, &row, x.weights, k, lr, &shared)?);
        p.keep_losses.push(copy(x.losses, &losses.view((k + 1) * loss_stride, &[t])?)?);
    }
    p._keep = vec![rows, scratch];
    Ok(p)
}
