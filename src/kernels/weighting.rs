use super::{check_len, grid_1d};
use crate::error::{Error, Result};
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;

fn rows_check(op: &'static str, g: &Tensor, t: usize, p: usize, stride: usize) -> Result<()> {
    if t == 0 || p > stride || g.len() < (t - 1) * stride + p {
        return Err(Error::shape(op, format!("{t} rows of {p} (stride {stride}) in {} values", g.len())));
    }
    Ok(())
}

/// `m = G·Gᵀ` for the T rows of G (length p, stride `stride`): the Gram matrix `[T, T]`.
pub fn gram(ctx: &Context, g: &Tensor, t: usize, p: usize, stride: usize, m: &Tensor) -> Result<Dispatch> {
    gram_block(ctx, g, t, p, stride, m, t)
}

/// [`gram`] into the top-left T×T block of `m`, a `[ld, ld]` matrix (ld ≥ T).
pub fn gram_block(
    ctx: &Context,
    g: &Tensor,
    t: usize,
    p: usize,
    stride: usize,
    m: &Tensor,
    ld: usize,
) -> Result<Dispatch> {
    rows_check("gram", g, t, p, stride)?;
    if ld < t {
        return Err(Error::shape("gram", format!("a {t}×{t} block in a {ld}×{ld} matrix")));
    }
    check_len("gram", "m", m, ld * ld)?;
    KernelCall::new(Shader::Weighting, "gram", &[])
        .params([t as u32, p as u32, stride as u32, ld as u32], [0.0; 4])
        .bind_at(1, g)
        .bind_at(3, m)
        .groups((t * (t + 1) / 2) as u32, 1, 1)
        .build(ctx)
}

/// `out = Σ_t c[t]·G[t]` over rows of length p (stride `stride`).
pub fn combine(
    ctx: &Context,
    g: &Tensor,
    c: &Tensor,
    t: usize,
    p: usize,
    stride: usize,
    out: &Tensor,
) -> Result<Dispatch> {
    rows_check("combine", g, t, p, stride)?;
    check_len("combine", "c", c, t)?;
    check_len("combine", "out", out, p)?;
    let gr = grid_1d(p, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Weighting, "combine", &[])
        .params([t as u32, p as u32, stride as u32, 0], [0.0; 4])
        .bind_at(1, g)
        .bind_at(2, c)
        .bind_at(3, out)
        .groups(gr[0], gr[1], gr[2])
        .build(ctx)
}

/// TAG's lookahead: `theta = saved − lr·g/w[task]` (0 where the weight is 0), the shared
/// parameters after one SGD step on task `task`'s own gradient `g`, taken with its loss weight.
pub fn lookahead(
    ctx: &Context,
    saved: &Tensor,
    g: &Tensor,
    w: &Tensor,
    task: usize,
    lr: f32,
    theta: &Tensor,
) -> Result<Dispatch> {
    let n = saved.len();
    check_len("lookahead", "g", g, n)?;
    check_len("lookahead", "theta", theta, n)?;
    if task >= w.len() {
        return Err(Error::shape("lookahead", format!("task {task} of {}", w.len())));
    }
    let gr = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Weighting, "lookahead", &[])
        .params([n as u32, task as u32, 0, 0], [lr, 0.0, 0.0, 0.0])
        .bind_at(1, saved)
        .bind_at(2, g)
        .bind_at(3, theta)
        .bind_at(4, w)
        .groups(gr[0], gr[1], gr[2])
        .build(ctx)
}

/// DB-MTL's and MoCo's moving averages: in `rows` (`[2T, stride]`: this step's gradients G_t,
/// then the averages Y_t), `Y_t = m[t]·Y_t + m[T+t]·G_t` over the first p values of each row.
pub fn mix_rows(ctx: &Context, rows: &Tensor, m: &Tensor, t: usize, p: usize, stride: usize) -> Result<Dispatch> {
    rows_check("mix_rows", rows, 2 * t, p, stride)?;
    check_len("mix_rows", "m", m, 2 * t)?;
    let gr = grid_1d(p, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Weighting, "mix_rows", &[])
        .params([t as u32, p as u32, stride as u32, 0], [0.0; 4])
        .bind_at(1, m)
        .bind_at(3, rows)
        .groups(gr[0], gr[1], gr[2])
        .build(ctx)
}

/// ExcessMTL's statistic: in `rows` (`[2T, stride]`: the gradients G_t, then their running
/// sums of squares A_t), `A_t += G_t²`, then `w[t] = Σ_k G_tk² / √(A_tk + 1e-7)`.
pub fn excess_rows(ctx: &Context, rows: &Tensor, w: &Tensor, t: usize, p: usize, stride: usize) -> Result<Dispatch> {
    rows_check("excess_rows", rows, 2 * t, p, stride)?;
    check_len("excess_rows", "w", w, t)?;
    KernelCall::new(Shader::Weighting, "excess_rows", &[])
        .params([t as u32, p as u32, stride as u32, 0], [0.0; 4])
        .bind_at(3, rows)
        .bind_at(4, w)
        .groups(t as u32, 1, 1)
        .build(ctx)
}

/// GradDrop (LibMTL's) of the per-task gradients at the representation, the rows of G
/// (`[B, d]` each, stride `stride`), given the representation's values `x` (`[B, d]`), into
/// `out`; the draws come from `seed`, with `leak`: set per step with [`graddrop_params`].
#[allow(clippy::too_many_arguments)]
pub fn graddrop(
    ctx: &Context,
    g: &Tensor,
    x: &Tensor,
    t: usize,
    (p, d): (usize, usize),
    stride: usize,
    (seed, leak): (u32, f32),
    out: &Tensor,
) -> Result<Dispatch> {
    rows_check("graddrop", g, t, p, stride)?;
    check_len("graddrop", "x", x, p)?;
    check_len("graddrop", "out", out, p)?;
    if d == 0 || p % d != 0 {
        return Err(Error::shape("graddrop", format!("{p} values are not rows of {d}")));
    }
    let gr = grid_1d(d, ctx.adapter().max_workgroups_per_dimension);
    let (u, f) = graddrop_params(t, (p, d), stride, (seed, leak));
    KernelCall::new(Shader::Weighting, "graddrop", &[])
        .params(u, f)
        .bind_at(1, g)
        .bind_at(2, x)
        .bind_at(3, out)
        .groups(gr[0], gr[1], gr[2])
        .build(ctx)
}

/// The `graddrop` kernel's parameters for a step's seed and leak.
pub fn graddrop_params(
    t: usize,
    (p, d): (usize, usize),
    stride: usize,
    (seed, leak): (u32, f32),
) -> ([u32; 4], [f32; 4]) {
    ([t as u32, p as u32, stride as u32, seed], [leak, f32::from_bits(d as u32), 0.0, 0.0])
}

/// The CPU twin of graddrop.wgsl's per-column uniform draw.
pub fn graddrop_uniform(k: u32, seed: u32) -> f64 {
    let mut h = k.wrapping_mul(747_796_405).wrapping_add(seed.wrapping_mul(2_891_336_453)).wrapping_add(1);
    h = ((h >> ((h >> 28) + 4)) ^ h).wrapping_mul(277_803_737);
    h = (h >> 22) ^ h;
    f64::from(h >> 8) / 16_777_216.0
}

/// `x *= w[task]` (a task's logit gradient by its weight).
pub fn scale_task(ctx: &Context, x: &Tensor, w: &Tensor, task: usize) -> Result<Dispatch> {
    if task >= w.len() {
        return Err(Error::shape("scale_task", format!("task {task} of {}", w.len())));
    }
    let n = x.len();
    let gr = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Weighting, "scale_task", &[])
        .params([n as u32, task as u32, 0, 0], [0.0; 4])
        .bind_at(1, w)
        .bind_at(3, x)
        .groups(gr[0], gr[1], gr[2])
        .build(ctx)
}

/// UW: `w = ½e^{−s}`.
pub fn uw_weights(ctx: &Context, s: &Tensor, w: &Tensor) -> Result<Dispatch> {
    let t = s.len();
    check_len("uw_weights", "w", w, t)?;
    KernelCall::new(Shader::Weighting, "uw_weights", &[])
        .params([t as u32, 0, 0, 0], [0.0; 4])
        .bind_at(1, s)
        .bind_at(3, w)
        .build(ctx)
}

/// UW: `gs = ½(1 − e^{−s}·L)`.
pub fn uw_grad(ctx: &Context, s: &Tensor, losses: &Tensor, gs: &Tensor) -> Result<Dispatch> {
    let t = s.len();
    check_len("uw_grad", "losses", losses, t)?;
    check_len("uw_grad", "gs", gs, t)?;
    let (u, f) = uw_grad_params(t, 1.0);
    KernelCall::new(Shader::Weighting, "uw_grad", &[])
        .params(u, f)
        .bind_at(1, s)
        .bind_at(2, losses)
        .bind_at(3, gs)
        .build(ctx)
}

/// The parameters of [`uw_grad`] with `share` of the constant term: `gs = ½(share − e^{−s}·L)`
/// (1 alone; in data-parallel training rank 0 takes 1 and the others 0, so the ranks' sum is
/// the gradient of the global loss).
pub fn uw_grad_params(tasks: usize, share: f32) -> ([u32; 4], [f32; 4]) {
    ([tasks as u32, 0, 0, 0], [share, 0.0, 0.0, 0.0])
}

/// IMTL-L: the loss weights `w = e^s` (the losses scaled as e^s·L − s).
pub fn imtl_weights(ctx: &Context, s: &Tensor, w: &Tensor) -> Result<Dispatch> {
    let t = s.len();
    check_len("imtl_weights", "w", w, t)?;
    KernelCall::new(Shader::Weighting, "imtl_weights", &[])
        .params([t as u32, 0, 0, 0], [0.0; 4])
        .bind_at(1, s)
        .bind_at(3, w)
        .build(ctx)
}

/// IMTL-L: `gs = e^s·L − 1`, the gradient of e^s·L − s.
pub fn imtl_grad(ctx: &Context, s: &Tensor, losses: &Tensor, gs: &Tensor) -> Result<Dispatch> {
    let t = s.len();
    check_len("imtl_grad", "losses", losses, t)?;
    check_len("imtl_grad", "gs", gs, t)?;
    KernelCall::new(Shader::Weighting, "imtl_grad", &[])
        .params([t as u32, 0, 0, 0], [0.0; 4])
        .bind_at(1, s)
        .bind_at(2, losses)
        .bind_at(3, gs)
        .build(ctx)
}

/// STCH: the loss weights from this step's losses and `state` (the warm-up epoch's loss sums,
/// their count, the current epoch), after `warmup` epochs of log losses, with smoothing `mu`.
pub fn stch(ctx: &Context, losses: &Tensor, w: &Tensor, state: &Tensor, warmup: usize, mu: f32) -> Result<Dispatch> {
    let t = losses.len();
    check_len("stch", "w", w, t)?;
    check_len("stch", "state", state, t + 2)?;
    KernelCall::new(Shader::Weighting, "stch", &[])
        .params([t as u32, warmup as u32, 0, 0], [mu, 0.0, 0.0, 0.0])
        .bind_at(2, losses)
        .bind_at(3, w)
        .bind_at(4, state)
        .build(ctx)
}

/// GLS: `w_t = (Π L)^{1/T} / (T·L_t)`.
pub fn gls_weights(ctx: &Context, losses: &Tensor, w: &Tensor) -> Result<Dispatch> {
    let t = losses.len();
    check_len("gls_weights", "w", w, t)?;
    KernelCall::new(Shader::Weighting, "gls_weights", &[])
        .params([t as u32, 0, 0, 0], [0.0; 4])
        .bind_at(2, losses)
        .bind_at(3, w)
        .build(ctx)
}

/// FAMO's weights (`update` false: `w` from ξ and the losses, which are kept in `state`) or its
/// update of ξ (`update` true: after the model's update and a forward pass on the same batch).
/// `state`: `[xi, m, v, before]` of T each, then Adam's step count.
#[allow(clippy::too_many_arguments)]
pub fn famo(
    ctx: &Context,
    min_losses: &Tensor,
    losses: &Tensor,
    w: &Tensor,
    state: &Tensor,
    update: bool,
    lr: f32,
    weight_decay: f32,
) -> Result<Dispatch> {
    let t = losses.len();
    check_len("famo", "min losses", min_losses, t)?;
    check_len("famo", "w", w, t)?;
    check_len("famo", "state", state, 4 * t + 1)?;
    KernelCall::new(Shader::Weighting, "famo", &[])
        .params([t as u32, u32::from(update), 0, 0], [lr, weight_decay, 0.9, 0.999])
        .bind_at(1, min_losses)
        .bind_at(2, losses)
        .bind_at(3, w)
        .bind_at(4, state)
        .build(ctx)
}
