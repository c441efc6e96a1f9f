use super::{check_len, grid_1d};
use crate::error::Result;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;
use crate::tensor::Tensor;

/// One SGD dispatch over flat buffers; `f` is the uniform block [lr, momentum, wd, 0].
pub fn sgd(
    ctx: &Context,
    param: &Tensor,
    grad: &Tensor,
    buf: &Tensor,
    nesterov: bool,
    momentum: bool,
    f: [f32; 4],
) -> Result<Dispatch> {
    let n = param.len();
    check_len("sgd", "grad", grad, n)?;
    check_len("sgd", "momentum buffer", buf, n)?;
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    let c = [("NESTEROV", f64::from(u8::from(nesterov))), ("HAS_MOMENTUM", f64::from(u8::from(momentum)))];
    KernelCall::new(Shader::Optim, "sgd", &c)
        .params([n as u32, 0, 0, 0], f)
        .bind(param)
        .bind(grad)
        .bind(buf)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}

/// One Adam/AdamW dispatch over flat buffers; `f` is [lr/bc1, 1/√bc2, wd or lr·wd, eps].
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
) -> Result<Dispatch> {
    let n = param.len();
    for (what, t) in [("grad", grad), ("m", m), ("v", v)] {
        check_len("adam", what, t, n)?;
    }
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    let c = [("ADAMW", f64::from(u8::from(decoupled))), ("BETA1", f64::from(betas.0)), ("BETA2", f64::from(betas.1))];
    KernelCall::new(Shader::Optim, "adam", &c)
        .params([n as u32, 0, 0, 0], f)
        .bind(param)
        .bind(grad)
        .bind(m)
        .bind(v)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}
