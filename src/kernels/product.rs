//! A product task's logits (`product.wgsl`): `logit(σ(a)·σ(b))` and its gradients.

use super::{check_len, grid_1d};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, KernelCall, Tensor};
use crate::shaders::Shader;

fn n_of(op: &'static str, a: &Tensor, others: &[(&str, &Tensor)]) -> Result<u32> {
    for (what, t) in others {
        check_len(op, what, t, a.len())?;
    }
    u32::try_from(a.len()).map_err(|_| Error::shape(op, format!("{} values: more than a u32 counts", a.len())))
}

/// `y = logit(σ(a)·σ(b))`, elementwise.
pub fn product_logit(ctx: &Context, a: &Tensor, b: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let n = n_of("product_logit", a, &[("b", b), ("y", y)])?;
    let g = grid_1d(n as usize, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Product, "product_logit", &[])
        .params([n, 0, 0, 0], [0.0; 4])
        .bind(a)
        .bind(b)
        .bind_at(4, y)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}

/// `dx (+)= dy · σ(−x) / (1 − σ(a)·σ(b))`, x = `a`, or `b` when `at_b`.
pub fn product_logit_grad(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    dy: &Tensor,
    at_b: bool,
    dx: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let n = n_of("product_logit_grad", a, &[("b", b), ("dy", dy), ("dx", dx)])?;
    let g = grid_1d(n as usize, ctx.adapter().max_workgroups_per_dimension);
    let flag = |v: bool| f64::from(u8::from(v));
    KernelCall::new(Shader::Product, "product_logit_grad", &[("ACCUMULATE", flag(accumulate)), ("AT_B", flag(at_b))])
        .params([n, 0, 0, 0], [0.0; 4])
        .bind(a)
        .bind(b)
        .bind(dy)
        .bind(dx)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}
