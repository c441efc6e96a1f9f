use super::{check_len, grid_1d};
use crate::error::Result;
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;

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
/// Four values per invocation where every length is a multiple of 4 and every view 16-byte
/// aligned (same results, bit for bit).
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
    let c = [
        ("NESTEROV", f64::from(u8::from(nesterov))),
        ("HAS_MOMENTUM", f64::from(u8::from(momentum))),
        ("MAX_NORM", f64::from(clip.map_or(0.0, |c| c.max_norm))),
    ];
    let vec4 = by_four(&[param, grad, buf]);
    let entry = if vec4 { "sgd4" } else { "sgd" };
    let k = KernelCall::new(Shader::Optim, entry, &c);
    let k =
        if vec4 { k.bind_at(6, param).bind_at(7, grad).bind_at(8, buf) } else { k.bind(param).bind(grad).bind(buf) };
    finish(ctx, k, n, vec4, f, clip)
}

/// Whether the four-at-a-time form applies: lengths a multiple of 4, views 16-byte aligned.
fn by_four(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.len() % 4 == 0 && t.offset_bytes() % 16 == 0)
}

fn finish(
    ctx: &Context,
    k: KernelCall<'_>,
    n: usize,
    vec4: bool,
    f: [f32; 4],
    clip: Option<Clip<'_>>,
) -> Result<Dispatch> {
    let items = if vec4 { n / 4 } else { n };
    let g = grid_1d(items, ctx.adapter().max_workgroups_per_dimension);
    // The shader always declares the norm binding; without clipping it reads nothing from it.
    let dummy = ctx.dummy()?;
    let mut d = k
        .params([items as u32, 0, 0, 0], f)
        .bind_at(5, clip.map_or(&dummy, |c| c.norm2))
        .groups(g[0], g[1], g[2])
        .build(ctx)?;
    d.elements = items as u32;
    Ok(d)
}

/// One Adam/AdamW dispatch over flat buffers; `f` is `[lr/bc1, 1/√bc2, wd or lr·wd, eps]`.
/// Four values per invocation as [`sgd`].
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
    let c = [
        ("ADAMW", f64::from(u8::from(decoupled))),
        ("BETA1", f64::from(betas.0)),
        ("BETA2", f64::from(betas.1)),
        ("MAX_NORM", f64::from(clip.map_or(0.0, |c| c.max_norm))),
    ];
    let vec4 = by_four(&[param, grad, m, v]);
    let k = KernelCall::new(Shader::Optim, if vec4 { "adam4" } else { "adam" }, &c);
    let k = if vec4 {
        k.bind_at(6, param).bind_at(7, grad).bind_at(8, m).bind_at(9, v)
    } else {
        k.bind(param).bind(grad).bind(m).bind(v)
    };
    finish(ctx, k, n, vec4, f, clip)
}
