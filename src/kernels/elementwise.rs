use super::{check_len, grid_1d, Activation};
use crate::error::Result;
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;

fn call(entry: &'static str, constants: &[(&'static str, f64)], n: usize, f: [f32; 4]) -> KernelCall<'static> {
    KernelCall::new(Shader::Elementwise, entry, constants).params([n as u32, 0, 0, 0], f)
}

fn launch(ctx: &Context, k: KernelCall<'_>, n: usize) -> Result<Dispatch> {
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    k.groups(g[0], g[1], g[2]).build(ctx)
}

/// `x = alpha` everywhere.
pub fn fill(ctx: &Context, x: &Tensor, alpha: f32) -> Result<Dispatch> {
    let n = x.len();
    launch(ctx, call("fill", &[], n, [alpha, 0.0, 0.0, 0.0]).bind(x), n)
}

/// `x = alpha · x`.
pub fn scale(ctx: &Context, x: &Tensor, alpha: f32) -> Result<Dispatch> {
    let n = x.len();
    launch(ctx, call("scale", &[], n, [alpha, 0.0, 0.0, 0.0]).bind(x), n)
}

/// `y = y + alpha · x`.
pub fn axpy(ctx: &Context, alpha: f32, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let n = x.len();
    check_len("axpy", "y", y, n)?;
    launch(ctx, call("axpy", &[], n, [alpha, 0.0, 0.0, 0.0]).bind(x).bind(y), n)
}

/// `z = x + y`.
pub fn add(ctx: &Context, x: &Tensor, y: &Tensor, z: &Tensor) -> Result<Dispatch> {
    let n = x.len();
    check_len("add", "y", y, n)?;
    check_len("add", "z", z, n)?;
    launch(ctx, call("add", &[], n, [0.0; 4]).bind(x).bind(y).bind(z), n)
}

/// `z = x ⊙ y`, or `z += x ⊙ y` when `accumulate` (the gradient of a product).
pub fn mul(ctx: &Context, x: &Tensor, y: &Tensor, z: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let n = x.len();
    check_len("mul", "y", y, n)?;
    check_len("mul", "z", z, n)?;
    let c = [("ACCUMULATE", f64::from(u8::from(accumulate)))];
    launch(ctx, call("mul", &c, n, [0.0; 4]).bind(x).bind(y).bind(z), n)
}

/// `y = act(x)`.
pub fn act_forward(ctx: &Context, act: Activation, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    act.check()?;
    let n = x.len();
    check_len("act_forward", "y", y, n)?;
    let c = [("ACT", f64::from(act.code()))];
    launch(ctx, call("act_forward", &c, n, [0.0, act.slope(), 0.0, 0.0]).bind(x).bind(y), n)
}

/// `dx (+)= dy · act'(saved)`, where `saved` is the activation's output when `from_output`
/// (not allowed for gelu) and its input otherwise.
pub fn act_backward(
    ctx: &Context,
    act: Activation,
    dy: &Tensor,
    saved: &Tensor,
    from_output: bool,
    dx: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    act.check()?;
    if from_output && !act.grad_from_output() {
        return Err(crate::Error::invalid("act_backward", format!("{act:?}'s gradient needs its input")));
    }
    let n = dy.len();
    check_len("act_backward", "saved", saved, n)?;
    check_len("act_backward", "dx", dx, n)?;
    let c = [
        ("ACT", f64::from(act.code())),
        ("FROM_OUTPUT", f64::from(u8::from(from_output))),
        ("ACCUMULATE", f64::from(u8::from(accumulate))),
    ];
    launch(ctx, call("act_backward", &c, n, [0.0, act.slope(), 0.0, 0.0]).bind(dy).bind(saved).bind(dx), n)
}

/// `y = xᵀ` for x of shape [R, C]; y has C×R values.
pub fn transpose(ctx: &Context, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let (r, c) = x.dims2();
    let n = r * c;
    check_len("transpose", "y", y, n)?;
    let k = KernelCall::new(Shader::Elementwise, "transpose", &[]).params([n as u32, r as u32, c as u32, 0], [0.0; 4]);
    launch(ctx, k.bind(x).bind(y), n)
}

/// Copies columns `ox..ox + cols` of every row of `x` (a row-major matrix `[rows, _]`) to
/// columns `oy..oy + cols` of `y` (`[rows, _]`), adding `bias[j]` to column j when given: how a
/// product of several heads at once is split into each head's output, and each head's
/// gradient merged back.
pub fn copy_columns(
    ctx: &Context,
    x: &Tensor,
    ox: usize,
    y: &Tensor,
    oy: usize,
    cols: usize,
    bias: Option<&Tensor>,
) -> Result<Dispatch> {
    let ((rows, wx), (ry, wy)) = (x.dims2(), y.dims2());
    if rows != ry || cols == 0 || ox + cols > wx || oy + cols > wy {
        return Err(crate::Error::shape(
            "copy_columns",
            format!("columns {ox}..{} of {:?} to {oy}..{} of {:?}", ox + cols, x.shape(), oy + cols, y.shape()),
        ));
    }
    if let Some(b) = bias {
        check_len("copy_columns", "bias", b, cols)?;
    }
    let n = rows * cols;
    let bits = |v: usize| f32::from_bits(v as u32);
    let c = [("HAS_BIAS", f64::from(u8::from(bias.is_some())))];
    let k = KernelCall::new(Shader::Elementwise, "copy_columns", &c)
        .params([n as u32, cols as u32, wx as u32, wy as u32], [bits(ox), bits(oy), 0.0, 0.0])
        .bind(x)
        .bind(y);
    let dummy = ctx.dummy()?;
    launch(ctx, k.bind(bias.unwrap_or(&dummy)), n)
}
