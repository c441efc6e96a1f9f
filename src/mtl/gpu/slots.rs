//! The per-task gradient slots at the shared representation and the dispatches that work on
//! them: Gram matrix, sum, weighted combination, GradDrop, and for the params target the
//! copies around one trunk backward per task.

use crate::error::Result;
use crate::gpu::{Context, Dispatch, Tensor};
use crate::ir::Activation;
use crate::kernels;

/// The per-task gradient slots and the dispatches that work on them.
pub(crate) struct Slots {
    /// Per-task gradients at z, `[T, stride_z]`.
    pub(crate) gz: Tensor,
    pub(crate) len_z: usize,
    pub(crate) stride_z: usize,
    /// Per-task gradients of the shared parameters, `[T, stride_p]` (params target).
    pub(crate) gp: Option<Tensor>,
    pub(crate) len_p: usize,
    pub(crate) stride_p: usize,
    pub(crate) combine_sum: Dispatch,
    pub(crate) combine_coef: Dispatch,
    pub(crate) graddrop: Dispatch,
    /// Params target: per task, copy its z-gradient in, and copy the trunk gradient out.
    pub(crate) copy_in: Vec<Dispatch>,
    pub(crate) copy_out: Vec<Dispatch>,
    pub(crate) gram_repr: Dispatch,
    pub(crate) gram_target: Dispatch,
    pub(crate) gram: Tensor,
    pub(crate) coef: Tensor,
}

/// Builds the slots' dispatches: the Gram matrix of the per-task gradients at the shared
/// representation `gz` (`[T, stride_z]`, each row `len_z` long), their sum and weighted
/// combination into `gz_grad`, GradDrop; and, for the params target (`trunk_len`: the flat
/// length of the shared parameters), the per-task copies in and out of one trunk backward
/// each. Returns the slots and a buffer of ones the sum reads (to keep alive).
#[allow(clippy::too_many_arguments)]
pub(crate) fn program(
    ctx: &Context,
    gz: Tensor,
    gz_views: &[Tensor],
    (len_z, stride_z): (usize, usize),
    gz_grad: &Tensor,
    trunk_len: Option<usize>,
    grads: &Tensor,
    align: usize,
) -> Result<(Slots, Tensor)> {
    let t = gz_views.len();
    let gram = ctx.zeros(&[t * t])?;
    let coef = ctx.upload(&vec![1.0; t], &[t])?;
    let ones_t = ctx.upload(&vec![1.0; t], &[t])?;
    let combine_sum = kernels::combine(ctx, &gz, &ones_t, t, len_z, stride_z, gz_grad)?;
    let gram_repr = kernels::gram(ctx, &gz, t, len_z, stride_z, &gram)?;
    let (gp, len_p, stride_p, copy_in, copy_out, combine_coef, graddrop, gram_target) = match trunk_len {
        None => (
            None,
            0,
            0,
            Vec::new(),
            Vec::new(),
            kernels::combine(ctx, &gz, &coef, t, len_z, stride_z, gz_grad)?,
            kernels::graddrop(ctx, &gz, t, len_z, stride_z, 0, gz_grad)?,
            kernels::gram(ctx, &gz, t, len_z, stride_z, &gram)?,
        ),
        Some(len_p) => {
            let stride_p = len_p.div_ceil(align) * align;
            let gp = ctx.zeros(&[t * stride_p])?;
            let trunk_grads = grads.view(0, &[len_p])?;
            let mut copy_in = Vec::new();
            let mut copy_out = Vec::new();
            for (k, gz_k) in gz_views.iter().enumerate() {
                copy_in.push(kernels::act_forward(ctx, Activation::Identity, gz_k, gz_grad)?);
                let row = gp.view(k * stride_p, &[len_p])?;
                copy_out.push(kernels::act_forward(ctx, Activation::Identity, &trunk_grads, &row)?);
            }
            let cc = kernels::combine(ctx, &gp, &coef, t, len_p, stride_p, &trunk_grads)?;
            let gd = kernels::graddrop(ctx, &gp, t, len_p, stride_p, 0, &trunk_grads)?;
            let gm = kernels::gram(ctx, &gp, t, len_p, stride_p, &gram)?;
            (Some(gp), len_p, stride_p, copy_in, copy_out, cc, gd, gm)
        }
    };
    let slots = Slots {
        gz,
        len_z,
        stride_z,
        gp,
        len_p,
        stride_p,
        combine_sum,
        combine_coef,
        graddrop,
        copy_in,
        copy_out,
        gram_repr,
        gram_target,
        gram,
        coef,
    };
    Ok((slots, ones_t))
}
