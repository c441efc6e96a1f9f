use super::{check_len, grid_1d};
use crate::error::Result;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;
use crate::tensor::Tensor;

/// Gradient clipping for the optimizer kernels: the squared gradient norm (one value, from
/// [`super::sq_norm`]) and the largest norm allowed.
#[derive(Clone, Copy)]
pub struct Clip<'a> {
    /// Squared norm of every gradient.
    pub norm2: &'a Tensor,
    /// Largest norm.
    pub max_norm: f32,
}

/// One SGD dispatch over flat buffers; `f` is the uniform block `[lr, momentum, wd, 0]`.
#[allow(clippy::too_many_arguments)]
pub fn sgd(
    ctx: &Context,
    param: &Tensor,
    grad: &Tensor,
    buf: &Tensor,
    nesterov: bool,
    momentum: bool,
    f: [f32; 4],
    clip: Option<Clip<'_>>,
) -> Result<Dispatch> {
    let n = param.len();
    check_len("sgd", "grad", grad, n)?;
    check_len("sgd", "momentum buffer", buf, n)?;
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    let c = [
        ("NESTEROV", f64::from(u8::from(nesterov))),
        ("HAS_MOMENTUM", f64::from(u8::from(momentum))),
        ("MAX_NORM", f64::from(clip.map_or(0.0, |c| c.max_norm))),
    ];
    let mut k =
        KernelCall::new(Shader::Optim, "sgd", &c).params([n as u32, 0, 0, 0], f).bind(param).bind(grad).bind(buf);
    // The shader always declares the norm binding; without clipping it reads nothing from it.
    let dummy = ctx.dummy()?;
    k = k.bind_at(5, clip.map_or(&dummy, |c| c.norm2));
    k.groups(g[0], g[1], g[2]).build(ctx)
}

/// One Adam/AdamW dispatch over flat buffers; `f` is `[lr/bc1, 1/√bc2, wd or lr·wd, eps]`.
#[allow(clippy::too_many_arguments)]
pub fn adam(
    ctx: &Context,
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    betas: (f32, f32),
    decoupled: bool,
    f: [f32; 4],
    clip: Option<Clip<'_>>,
) -> Result<Dispatch> {
    let n = param.len();
    for (what, t) in [("grad", grad), ("m", m), ("v", v)] {
        check_len("adam", what, t, n)?;
    }
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    let c = [
        ("ADAMW", f64::from(u8::from(decoupled))),
        ("BETA1", f64::from(betas.0)),
        ("BETA2", f64::from(betas.1)),
        ("MAX_NORM", f64::from(clip.map_or(0.0, |c| c.max_norm))),
    ];
    let mut k = KernelCall::new(Shader::Optim, "adam", &c)
        .params([n as u32, 0, 0, 0], f)
        .bind(param)
        .bind(grad)
        .bind(m)
        .bind(v);
    // The shader always declares the norm binding; without clipping it reads nothing from it.
    let dummy = ctx.dummy()?;
    k = k.bind_at(5, clip.map_or(&dummy, |c| c.norm2));
    k.groups(g[0], g[1], g[2]).build(ctx)
}
