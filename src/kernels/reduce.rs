use super::check_len;
use crate::error::Result;
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;

fn acc(accumulate: bool) -> [(&'static str, f64); 1] {
    [("ACCUMULATE", f64::from(u8::from(accumulate)))]
}

/// `out[c] (+)= Σ_r x[r, c]` for x of shape `[R, C]` (bias gradients). Four columns per
/// invocation where C % 4 == 0 and both views are 16-byte aligned (the same sums in the same
/// order).
pub fn col_sum(ctx: &Context, x: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let (r, c) = x.dims2();
    check_len("col_sum", "out", out, c)?;
    let by_four = c % 4 == 0 && x.offset_bytes() % 16 == 0 && out.offset_bytes() % 16 == 0;
    let k = KernelCall::new(Shader::Reduce, if by_four { "col_sum4" } else { "col_sum" }, &acc(accumulate))
        .params([r as u32, c as u32, 0, 0], [0.0; 4]);
    if by_four {
        // Workgroups of WG_COLS = 8 invocations.
        k.bind_at(4, x).bind_at(5, out).groups((c / 4).div_ceil(8) as u32, 1, 1).build(ctx)
    } else {
        k.bind_at(1, x).bind_at(3, out).groups(c.div_ceil(super::WG_1D as usize) as u32, 1, 1).build(ctx)
    }
}

fn whole(
    entry: &'static str,
    x: &Tensor,
    y: Option<&Tensor>,
    out: &Tensor,
    accumulate: bool,
    ctx: &Context,
) -> Result<Dispatch> {
    check_len(entry, "out", out, 1)?;
    let mut k = KernelCall::new(Shader::Reduce, entry, &acc(accumulate))
        .params([x.len() as u32, 0, 0, 0], [0.0; 4])
        .bind_at(1, x);
    if let Some(y) = y {
        check_len(entry, "y", y, x.len())?;
        k = k.bind_at(2, y);
    }
    k.bind_at(3, out).build(ctx)
}

/// `out[0] (+)= Σ x`.
pub fn sum(ctx: &Context, x: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    whole("sum", x, None, out, accumulate, ctx)
}

/// `out[0] (+)= Σ x²`.
pub fn sq_norm(ctx: &Context, x: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    whole("sq_norm", x, None, out, accumulate, ctx)
}

/// `out[0] (+)= Σ x·y`.
pub fn dot(ctx: &Context, x: &Tensor, y: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    whole("dot", x, Some(y), out, accumulate, ctx)
}

/// The divergence guard over task `losses` and flat `params`: see guard.wgsl. `state` has 5
/// values: steps seen, flag, step, task (T for a parameter), value.
pub fn check_finite(ctx: &Context, losses: &Tensor, params: &Tensor, state: &Tensor) -> Result<Dispatch> {
    check_len("check_finite", "state", state, 5)?;
    let vec4 = params.len() % 4 == 0 && params.offset_bytes() % 16 == 0;
    let k = KernelCall::new(Shader::Guard, "check_finite", &[("VEC4", f64::from(u8::from(vec4)))])
        .params([losses.len() as u32, params.len() as u32, 0, 0], [0.0; 4])
        .bind(losses)
        .bind(params)
        .bind(state);
    // The four-at-a-time view is declared either way; a dummy stands in when it is not used.
    let dummy = ctx.dummy()?;
    k.bind_at(4, if vec4 { params } else { &dummy }).build(ctx)
}
