//! Gates and gated mixtures (`mixture.wgsl`): a row softmax and its gradient, the mixture of
//! E blocks by a gate and its gradients at the gate and at the blocks.

use super::{check_len, grid_1d};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, KernelCall, Tensor};
use crate::shaders::Shader;

/// Binds `t` in order (an entry binds only what it uses).
fn launch(ctx: &Context, entry: &'static str, u: [u32; 4], acc: bool, t: &[&Tensor], n: usize) -> Result<Dispatch> {
    launch_with(ctx, entry, u, &[("ACCUMULATE", f64::from(u8::from(acc)))], t, n)
}

fn launch_with(
    ctx: &Context,
    entry: &'static str,
    u: [u32; 4],
    c: &[(&'static str, f64)],
    t: &[&Tensor],
    n: usize,
) -> Result<Dispatch> {
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    let call = t.iter().fold(KernelCall::new(Shader::Mixture, entry, c).params(u, [0.0; 4]), |k, x| k.bind(x));
    call.groups(g[0], g[1], g[2]).build(ctx)
}

/// `y = softmax(x)` row by row, `x` `[rows, cols]`.
pub fn softmax_rows(ctx: &Context, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let (rows, cols) = x.dims2();
    check_len("softmax_rows", "y", y, rows * cols)?;
    launch(ctx, "softmax_rows", [rows as u32, cols as u32, 0, 0], false, &[x, y], rows)
}

/// `dx (+)= y ⊙ (dy − Σ_row dy ⊙ y)`, `y` the softmax's output `[rows, cols]`.
pub fn softmax_rows_backward(
    ctx: &Context,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let (rows, cols) = y.dims2();
    check_len("softmax_rows_backward", "dy", dy, rows * cols)?;
    check_len("softmax_rows_backward", "dx", dx, rows * cols)?;
    launch(ctx, "softmax_rows_backward", [rows as u32, cols as u32, 0, 0], accumulate, &[dy, y, dx], rows)
}

/// The mixture's E and D from the gate `[rows, E]` and the output `[rows, D]`.
fn mixture_dims(op: &'static str, gate: &Tensor, blocks: &Tensor, y_len: usize) -> Result<(usize, usize, usize)> {
    let (rows, e) = gate.dims2();
    if e == 0 || rows == 0 || y_len % rows != 0 {
        return Err(Error::shape(op, format!("gate {:?} with {y_len} outputs", gate.shape())));
    }
    let d = y_len / rows;
    check_len(op, "blocks", blocks, rows * e * d)?;
    Ok((rows, e, d))
}

/// `y[r, d] = Σ_e gate[r, e] · x[r, e·D + d]`.
pub fn mix(ctx: &Context, gate: &Tensor, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let (rows, e, d) = mixture_dims("mix", gate, x, y.len())?;
    launch(ctx, "mix", [(rows * d) as u32, e as u32, d as u32, 0], false, &[gate, x, y], rows * d)
}

/// `dgate[r, e] (+)= Σ_d dy[r, d] · x[r, e·D + d]`.
pub fn mix_grad_gate(ctx: &Context, dy: &Tensor, x: &Tensor, dgate: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let (rows, e, d) = mixture_dims("mix_grad_gate", dgate, x, dy.len())?;
    launch(ctx, "mix_grad_gate", [(rows * e) as u32, e as u32, d as u32, 0], accumulate, &[dy, x, dgate], rows * e)
}

/// `dx[r, e·D + d] (+)= gate[r, e] · dy[r, d]`.
pub fn mix_grad_x(ctx: &Context, dy: &Tensor, gate: &Tensor, dx: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let (rows, e, d) = mixture_dims("mix_grad_x", gate, dx, dy.len())?;
    let n = rows * e * d;
    launch(ctx, "mix_grad_x", [n as u32, e as u32, d as u32, 0], accumulate, &[dy, gate, dx], n)
}

/// The blocks' count T and width D of a cross-stitch from `alpha` `[T, T]` and `x` `[R, T·D]`.
fn stitch_dims(op: &'static str, alpha: &Tensor, x: &Tensor) -> Result<(usize, usize, usize)> {
    let ((t, t2), (rows, w)) = (alpha.dims2(), x.dims2());
    if t != t2 || t == 0 || w % t != 0 {
        return Err(Error::shape(op, format!("alpha {:?} over blocks {:?}", alpha.shape(), x.shape())));
    }
    Ok((rows, t, w / t))
}

/// `y[r, t·D + d] (+)= Σ_s alpha[t, s] · x[r, s·D + d]`, or with `transpose` `alpha[s, t]`
/// (the gradient at the blocks).
pub fn stitch(
    ctx: &Context,
    x: &Tensor,
    alpha: &Tensor,
    y: &Tensor,
    transpose: bool,
    accumulate: bool,
) -> Result<Dispatch> {
    let (rows, t, d) = stitch_dims("stitch", alpha, x)?;
    let n = rows * t * d;
    check_len("stitch", "y", y, n)?;
    let c = [("ACCUMULATE", f64::from(u8::from(accumulate))), ("TRANSPOSE", f64::from(u8::from(transpose)))];
    launch_with(ctx, "stitch", [n as u32, t as u32, d as u32, 0], &c, &[alpha, x, y], n)
}

/// `dalpha[t, s] (+)= Σ_{r, d} dy[r, t·D + d] · x[r, s·D + d]`.
pub fn stitch_grad_alpha(
    ctx: &Context,
    dy: &Tensor,
    x: &Tensor,
    dalpha: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let (rows, t, d) = stitch_dims("stitch_grad_alpha", dalpha, x)?;
    check_len("stitch_grad_alpha", "dy", dy, rows * t * d)?;
    launch(
        ctx,
        "stitch_grad_alpha",
        [(t * t) as u32, t as u32, d as u32, rows as u32],
        accumulate,
        &[dy, x, dalpha],
        t * t,
    )
}

/// DSelect-k's encoding: `y[r, i·E + j] = Π_q (bit_q(j) ? s : 1 − s)[r, i·m + q]`, E = 2^m.
pub fn encode(ctx: &Context, s: &Tensor, experts: usize, y: &Tensor) -> Result<Dispatch> {
    let m = experts.trailing_zeros() as usize;
    if !experts.is_power_of_two() || m == 0 || s.len() % m != 0 {
        return Err(Error::shape("encode", format!("bits {:?} for {experts} experts", s.shape())));
    }
    let n = s.len() / m * experts;
    check_len("encode", "y", y, n)?;
    launch(ctx, "encode", [n as u32, experts as u32, m as u32, 0], false, &[s, y], n)
}

/// The encoding's gradient at its bits, `ds (+)= …` (see `encode_grad` in the CPU reference).
pub fn encode_grad(
    ctx: &Context,
    dy: &Tensor,
    s: &Tensor,
    experts: usize,
    ds: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let m = experts.trailing_zeros() as usize;
    if !experts.is_power_of_two() || m == 0 || s.len() % m != 0 {
        return Err(Error::shape("encode_grad", format!("bits {:?} for {experts} experts", s.shape())));
    }
    check_len("encode_grad", "dy", dy, s.len() / m * experts)?;
    check_len("encode_grad", "ds", ds, s.len())?;
    launch(ctx, "encode_grad", [s.len() as u32, experts as u32, m as u32, 0], accumulate, &[s, dy, ds], s.len())
}
