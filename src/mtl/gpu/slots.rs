//! The per-task gradient slots at the shared representation and the dispatches that work on
//! them: Gram matrix, sum, weighted combination, GradDrop, and for the params target the
//! copies around one trunk backward per task.

use super::SlotState;
use crate::error::{Error, Result};
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
    /// GradDrop, on the representation target only (LibMTL refuses parameter gradients).
    pub(crate) graddrop: Option<Dispatch>,
    /// Params target: per task, copy its z-gradient in, and copy the trunk gradient out.
    pub(crate) copy_in: Vec<Dispatch>,
    pub(crate) copy_out: Vec<Dispatch>,
    pub(crate) gram_repr: Dispatch,
    pub(crate) gram_target: Dispatch,
    pub(crate) gram: Tensor,
    /// The rows the Gram matrix and the weighted combination cover: T, or 2T with moving
    /// averages (this step's gradients, then the averages).
    pub(crate) rows: usize,
    /// Moving averages: their update (its 2T coefficients are in the plan buffer).
    pub(crate) mix: Option<Dispatch>,
    /// Running sums of squares: their update with each task's statistic, and the statistics.
    pub(crate) excess: Option<(Dispatch, Tensor)>,
    /// The state rows kept between steps (after the T gradient rows), for checkpoints.
    pub(crate) state_rows: Option<Tensor>,
}

/// The one buffer phase two uploads: the coefficients over the slots' rows, the moving
/// averages' update (2T) and the heads' weights (T), each at an offset the adapter can bind.
pub(crate) struct PlanBuffer {
    all: Tensor,
    pub(crate) coef: Tensor,
    pub(crate) mix: Tensor,
    pub(crate) heads: Tensor,
    rows: usize,
    t: usize,
    at_mix: usize,
    at_heads: usize,
}

impl PlanBuffer {
    /// Coefficients over `rows` rows for `t` tasks; every value starts at 1.
    pub(crate) fn new(ctx: &Context, rows: usize, t: usize, align: usize) -> Result<PlanBuffer> {
        let at_mix = rows.div_ceil(align) * align;
        let at_heads = at_mix + (2 * t).div_ceil(align) * align;
        let all = ctx.upload(&vec![1.0; at_heads + t], &[at_heads + t])?;
        Ok(PlanBuffer {
            coef: all.view(0, &[rows])?,
            mix: all.view(at_mix, &[2 * t])?,
            heads: all.view(at_heads, &[t])?,
            all,
            rows,
            t,
            at_mix,
            at_heads,
        })
    }

    /// Writes a step's plan in one upload: the coefficients, the averages' update where given,
    /// the heads' weights where given.
    pub(crate) fn write(&self, ctx: &Context, c: &[f32], mix: Option<&[f32]>, heads: Option<&[f32]>) -> Result<()> {
        let wrong = |what: &str, n: usize, want: usize| Error::shape("plan", format!("{n} {what} for {want}"));
        if c.len() != self.rows {
            return Err(wrong("coefficients", c.len(), self.rows));
        }
        let mut v = vec![1.0; self.at_heads + self.t];
        v[..self.rows].copy_from_slice(c);
        for (src, at, want) in [(mix, self.at_mix, 2 * self.t), (heads, self.at_heads, self.t)] {
            if let Some(x) = src {
                if x.len() != want {
                    return Err(wrong("values", x.len(), want));
                }
                v[at..at + want].copy_from_slice(x);
            }
        }
        ctx.write(&self.all, &v)
    }
}

/// The shared representation z as the slots see it.
pub(crate) struct Representation<'a> {
    /// The per-task gradients at z, `[T, stride]`.
    pub(crate) slots: Tensor,
    /// Each task's row.
    pub(crate) views: &'a [Tensor],
    /// z's size and the rows' stride.
    pub(crate) len: usize,
    pub(crate) stride: usize,
    /// z's gradient (what the trunk's backward reads).
    pub(crate) grad: &'a Tensor,
    /// z's values and its width (GradDrop's signs).
    pub(crate) value: &'a Tensor,
    pub(crate) cols: usize,
}

/// Builds the slots' dispatches: the Gram matrix of the per-task gradients at the shared
/// representation `gz` (`[T, stride_z]`, each row `len_z` long), their sum and weighted
/// combination into `gz_grad`, GradDrop; and, for the params target (`trunk_len`: the flat
/// length of the shared parameters), the per-task copies in and out of one trunk backward
/// each, with the state rows `state` asks for after the gradient rows. Returns the slots and a
/// buffer of ones the sum reads (to keep alive).
pub(crate) fn program(
    ctx: &Context,
    (state, plan): (SlotState, &PlanBuffer),
    z: Representation<'_>,
    trunk_len: Option<usize>,
    grads: &Tensor,
    align: usize,
) -> Result<(Slots, Tensor)> {
    let Representation { slots: gz, views: gz_views, len: len_z, stride: stride_z, grad: gz_grad, value, cols } = z;
    let t = gz_views.len();
    if state != SlotState::None && trunk_len.is_none() {
        return Err(Error::invalid(
            "weighting target",
            "a method that keeps per-task state (moving averages, sums of squares) takes the params target",
        ));
    }
    let rows = if state == SlotState::Momentum { 2 * t } else { t };
    let gram = ctx.zeros(&[rows * rows])?;
    if plan.rows != rows {
        return Err(Error::shape("slots", format!("a plan over {} rows for {rows}", plan.rows)));
    }
    let coef = plan.coef.clone();
    let ones_t = ctx.upload(&vec![1.0; t], &[t])?;
    let combine_sum = kernels::combine(ctx, &gz, &ones_t, t, len_z, stride_z, gz_grad)?;
    let gram_repr = kernels::gram_block(ctx, &gz, t, len_z, stride_z, &gram, rows)?;
    let (gp, len_p, stride_p, copy_in, copy_out, combine_coef, graddrop, gram_target) = match trunk_len {
        None => (
            None,
            0,
            0,
            Vec::new(),
            Vec::new(),
            kernels::combine(ctx, &gz, &coef, t, len_z, stride_z, gz_grad)?,
            Some(kernels::graddrop(ctx, &gz, value, t, (len_z, cols), stride_z, (0, 0.0), gz_grad)?),
            kernels::gram(ctx, &gz, t, len_z, stride_z, &gram)?,
        ),
        Some(len_p) => {
            let stride_p = len_p.div_ceil(align) * align;
            let kept = if state == SlotState::None { t } else { 2 * t };
            let gp = ctx.zeros(&[kept * stride_p])?;
            let trunk_grads = grads.view(0, &[len_p])?;
            let mut copy_in = Vec::new();
            let mut copy_out = Vec::new();
            for (k, gz_k) in gz_views.iter().enumerate() {
                copy_in.push(kernels::act_forward(ctx, Activation::Identity, gz_k, gz_grad)?);
                let row = gp.view(k * stride_p, &[len_p])?;
                copy_out.push(kernels::act_forward(ctx, Activation::Identity, &trunk_grads, &row)?);
            }
            let cc = kernels::combine(ctx, &gp, &coef, rows, len_p, stride_p, &trunk_grads)?;
            let gm = kernels::gram(ctx, &gp, rows, len_p, stride_p, &gram)?;
            (Some(gp), len_p, stride_p, copy_in, copy_out, cc, None, gm)
        }
    };
    let (mix, excess, state_rows) = match (&gp, state) {
        (Some(rows_buf), SlotState::Momentum) => {
            let d = kernels::mix_rows(ctx, rows_buf, &plan.mix, t, len_p, stride_p)?;
            (Some(d), None, Some(rows_buf.view(t * stride_p, &[t * stride_p])?))
        }
        (Some(rows_buf), SlotState::SquaredSum) => {
            let w = ctx.zeros(&[t])?;
            let d = kernels::excess_rows(ctx, rows_buf, &w, t, len_p, stride_p)?;
            (None, Some((d, w)), Some(rows_buf.view(t * stride_p, &[t * stride_p])?))
        }
        _ => (None, None, None),
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
        rows,
        mix,
        excess,
        state_rows,
    };
    Ok((slots, ones_t))
}
