//! The update program of a step: gradient clipping's norm, the optimizer over the flat
//! parameter buffer (one dispatch per trainable range), and the divergence guard.

use crate::error::Result;
use crate::gpu::{Context, Dispatch, Tensor};
use crate::kernels;
use crate::optim::Optimizer;

/// The update of one step: clipping's norm, the optimizer over the flat buffers, the
/// divergence guard; and the state they keep.
pub(crate) struct GpuOptim {
    pub(crate) opt: Optimizer,
    /// One update per contiguous run of trainable parameters (one when nothing is frozen).
    pub(crate) dispatches: Vec<Dispatch>,
    pub(crate) state: Vec<Tensor>,
    pub(crate) max_norm: Option<f32>,
    pub(crate) norm2: Tensor,
    pub(crate) step: u64,
    /// Squared gradient norm for clipping (computed before the update).
    pub(crate) clip: Option<Dispatch>,
    /// The divergence guard, after the update, and its 5-value state.
    pub(crate) guard: Dispatch,
    pub(crate) guard_state: Tensor,
}

/// The update for `opt` over the whole flat buffers of `total` values, clipping the gradient
/// norm to `max_norm` when set; the guard watches `losses` and the parameters.
pub(crate) fn program(
    ctx: &Context,
    opt: Optimizer,
    max_norm: Option<f32>,
    params: &Tensor,
    grads: &Tensor,
    total: usize,
    losses: &Tensor,
) -> Result<GpuOptim> {
    opt.check()?;
    let mut state = Vec::new();
    for _ in 0..opt.state_buffers().max(1) {
        state.push(ctx.zeros(&[total])?);
    }
    let norm2 = ctx.zeros(&[1])?;
    let dispatches = optimizer_dispatches(ctx, opt, params, grads, &state, &[(0, total)], max_norm, &norm2)?;
    let clip = match max_norm {
        Some(_) => Some(kernels::sq_norm(ctx, grads, &norm2, false)?),
        None => None,
    };
    let guard_state = ctx.zeros(&[5])?;
    let guard = kernels::check_finite(ctx, losses, params, &guard_state)?;
    Ok(GpuOptim { opt, dispatches, state, max_norm, norm2, step: 0, clip, guard, guard_state })
}

/// The optimizer's dispatches over `ranges` (start, length) of the flat buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn optimizer_dispatches(
    ctx: &Context,
    opt: Optimizer,
    params: &Tensor,
    grads: &Tensor,
    state: &[Tensor],
    ranges: &[(usize, usize)],
    max_norm: Option<f32>,
    norm2: &Tensor,
) -> Result<Vec<Dispatch>> {
    let clip = max_norm.map(|m| kernels::Clip { norm2, max_norm: m });
    let mut out = Vec::new();
    for &(start, len) in ranges {
        if len == 0 {
            continue;
        }
        // To a multiple of 4, for the four-at-a-time form: every range starts at an alignment
        // boundary (a multiple of 4), and the values past a parameter's end up to the next
        // boundary, or the buffer's end, are padding that stays zero (zero gradient, zero
        // state, zero value: every optimizer leaves it so).
        let len = (len.div_ceil(4) * 4).min(params.len() - start);
        let v = |t: &Tensor| t.view(start, &[len]);
        let d = match opt {
            Optimizer::Sgd { momentum, nesterov, .. } => kernels::sgd(
                ctx,
                &v(params)?,
                &v(grads)?,
                &v(&state[0])?,
                nesterov,
                momentum != 0.0,
                opt.uniform(1),
                clip,
            )?,
            Optimizer::Adam { beta1, beta2, .. } | Optimizer::AdamW { beta1, beta2, .. } => {
                let decoupled = matches!(opt, Optimizer::AdamW { .. });
                kernels::adam(
                    ctx,
                    &v(params)?,
                    &v(grads)?,
                    &v(&state[0])?,
                    &v(&state[1])?,
                    (beta1, beta2),
                    decoupled,
                    opt.uniform(1),
                    clip,
                )?
            }
        };
        out.push(d);
    }
    Ok(out)
}

impl GpuOptim {
    /// Advances the step count and writes the update's per-step values (bias corrections,
    /// learning rate) into each of its dispatches.
    pub(crate) fn next_step(&mut self, ctx: &Context) {
        self.step += 1;
        let f = self.opt.uniform(self.step);
        for d in &self.dispatches {
            d.set_params(ctx, [d.elements, 0, 0, 0], f);
        }
    }

    /// One update per range (start, length) of the flat buffers, e.g. the trainable ones.
    pub(crate) fn set_ranges(
        &mut self,
        ctx: &Context,
        params: &Tensor,
        grads: &Tensor,
        ranges: &[(usize, usize)],
    ) -> Result<()> {
        self.dispatches =
            optimizer_dispatches(ctx, self.opt, params, grads, &self.state, ranges, self.max_norm, &self.norm2)?;
        Ok(())
    }
}
