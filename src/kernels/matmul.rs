use crate::error::{Error, Result};
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall, MatmulVariant};
use crate::ir::{Activation, MatmulShape};
use crate::shaders::Shader;

/// What a matmul computes: `C (+)= act(op(A)·op(B) + bias)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulSpec {
    /// A is stored `[K, M]` and used transposed.
    pub trans_a: bool,
    /// B is stored `[N, K]` and used transposed (nn.Linear's weight layout).
    pub trans_b: bool,
    /// Activation applied last.
    pub act: Activation,
    /// Adds the product to C's current contents (before bias and activation).
    pub accumulate: bool,
    /// Kernel form; `None` picks the adapter's default.
    pub variant: Option<MatmulVariant>,
    /// 4×4 output tiles per invocation along M and N for the register-blocked form: 1, 2, 4
    /// or 8 along M, 1, 2 or 4 along N; `None` picks by size ([`register_tiles`]). The tiled
    /// form ignores it.
    pub tiles: Option<(usize, usize)>,
    /// Whether to read op(A) and op(B) through texture copies, refreshed before each run,
    /// where the register-blocked form reads them four floats at a time and the operand's rows
    /// are a whole number of 64 floats ([`Context::tex_mirrorable`]); storage reads elsewhere.
    /// Same results, bit for bit. `None`: the context's choice ([`Context::texture_operands`]:
    /// yes on CPU adapters, where it pays; see [`crate::gpu::TexMirror`]) for blocks of more
    /// than one tile (one tile per invocation is the form that exists to compile fast).
    pub textures: Option<bool>,
}

impl Default for MatmulSpec {
    fn default() -> Self {
        MatmulSpec {
            trans_a: false,
            trans_b: false,
            act: Activation::Identity,
            accumulate: false,
            variant: None,
            tiles: None,
            textures: None,
        }
    }
}

/// How many 4×4 output tiles one invocation of the register-blocked form takes along M and N
/// (1, 2, 4 or 8 along M; 1, 2 or 4 along N).
///
/// Larger blocks make fewer loads per multiply-add (lavapipe, whose loads dominate, ran 1024³
/// at 2.5× the speed with 4×4 tiles as with 1×1, and 15% faster again with 8×4), but cost
/// compile time: under llvmpipe an 8×4 pipeline takes about 7 s to compile, 4×4 3–5 s, 2×2
/// about 0.7 s, 1×1 (its own entry point) about 0.15 s, once per combination of transposes,
/// bias, activation and accumulation. So the block grows with the product: 8×4 tiles from 2³⁰
/// multiply-adds (1024³), 4×4 from 2²⁸ (about 645³), 2×2 from 2²⁶ (406³), 1×1 below, where
/// the time a larger block saves per call would take a hundred calls or more to repay its
/// compilation, and a small model's first step stays quick. Within that cap, an axis takes no
/// more tiles than it has room for, and the larger count is halved while the product would
/// have fewer than [`MIN_WORKGROUPS`] workgroups of `wg` invocations, so that every core gets
/// work.
pub fn register_tiles(m: usize, n: usize, k: usize, wg: usize) -> (usize, usize) {
    let work = m.saturating_mul(n).saturating_mul(k);
    let cap = if work >= 1 << 30 {
        Caps(8, 4)
    } else if work >= 1 << 28 {
        Caps(4, 4)
    } else if work >= 1 << 26 {
        Caps(2, 2)
    } else {
        Caps(1, 1)
    };
    tiles_within(m, n, cap, wg)
}

/// The tile caps along M and N.
struct Caps(usize, usize);

/// The block a product replayed many times repays: [`register_tiles`] without the size cap
/// (up to 8×4 tiles wherever the output has room and every core still gets work; 8 along M
/// is `matmul_tall`, in workgroups half as high). Same results, bit for bit; only the
/// compile time differs, which is why a long training run switches to these in the
/// background (see `GpuGraph::start_upgrades`).
pub fn steady_register_tiles(m: usize, n: usize, wg: usize) -> (usize, usize) {
    tiles_within(m, n, Caps(8, 4), wg)
}

fn tiles_within(m: usize, n: usize, cap: Caps, wg: usize) -> (usize, usize) {
    let Caps(cap_m, cap_n) = cap;
    let room = |len: usize, cap: usize| len.div_ceil(4).next_power_of_two().min(cap);
    // Workgroups: a tall block's workgroup has half the invocations (see `workgroup_of`).
    let workgroups = |tm: usize, tn: usize| {
        let per = if tm == 8 { (wg / 2).max(1) } else { wg };
        (m.div_ceil(4 * tm) * n.div_ceil(4 * tn)).div_ceil(per)
    };
    let (mut tm, mut tn) = (room(m, cap_m), room(n, cap_n));
    while workgroups(tm, tn) < MIN_WORKGROUPS && (tm > 1 || tn > 1) {
        if tm >= tn {
            tm /= 2;
        } else {
            tn /= 2;
        }
    }
    (tm, tn)
}

/// See [`register_tiles`]: with the default 8×8 workgroups, 256 invocations. (Counted in
/// workgroups, not invocations, since a workgroup runs on one core under llvmpipe: with an
/// autotuned 16×16 workgroup, a 256×256 output in 16×16 blocks would be one workgroup.)
pub const MIN_WORKGROUPS: usize = 4;

/// An activation's gradient that a backward product applies to its result (see
/// [`matmul_act_grad`]).
#[derive(Clone, Copy, Debug)]
pub struct ActGrad<'a> {
    /// The activation.
    pub act: Activation,
    /// Its saved input, or its output when `from_output` (not for gelu); shaped like C.
    pub saved: &'a Tensor,
    /// Whether `saved` is the activation's output.
    pub from_output: bool,
}

/// `C (+)= act(op(A)·op(B) + bias)`; A, B, C row-major, bias of length N.
pub fn matmul(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
) -> Result<Dispatch> {
    matmul_with(ctx, a, b, bias, c, spec, None)
}

/// `C = (op(A)·op(B) [+ C]) ⊙ act'(saved)`: a backward product that also takes the gradient
/// through the activation whose output's gradient it computes (the gradient of the
/// activation's input, where `act_backward` would have run after it). `spec.act` must be the
/// identity; only when this product is the gradient's last contribution.
pub fn matmul_act_grad(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    spec: &MatmulSpec,
    grad: ActGrad<'_>,
) -> Result<Dispatch> {
    matmul_with(ctx, a, b, None, c, spec, Some(grad))
}

/// Checks the operands' shapes and the activations; returns the product's M, N, K.
fn check_operands(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
    grad: Option<ActGrad<'_>>,
) -> Result<MatmulShape> {
    spec.act.check()?;
    if let Some(g) = grad {
        g.act.check()?;
        if spec.act != Activation::Identity {
            return Err(Error::invalid("matmul", "an activation's gradient and an activation in one product"));
        }
        if g.from_output && !g.act.grad_from_output() {
            return Err(Error::invalid("matmul", format!("{:?}'s gradient needs its input", g.act)));
        }
        super::check_len("matmul", "saved activation", g.saved, c.len())?;
    }
    let s = MatmulShape::infer(a.dims2(), b.dims2(), spec.trans_a, spec.trans_b)?;
    if c.dims2() != (s.m, s.n) {
        return Err(Error::shape("matmul", format!("C is {:?}, expected [{}, {}]", c.shape(), s.m, s.n)));
    }
    if let Some(bias) = bias {
        super::check_len("matmul", "bias", bias, s.n)?;
    }
    Ok(s)
}

/// The kernel form of a product: entry point, workgroup size and 4×4 tiles per invocation.
struct Form {
    entry: &'static str,
    wx: u32,
    wy: u32,
    tm: usize,
    tn: usize,
}

fn form(variant: MatmulVariant, spec: &MatmulSpec, s: MatmulShape) -> Result<Form> {
    variant.check()?;
    let (entry, wx, wy) = match variant {
        MatmulVariant::Registers { wg_x, wg_y } => ("matmul", wg_x, wg_y),
        MatmulVariant::Tiled { wg_x, wg_y } => ("matmul_tiled", wg_x, wg_y),
    };
    // 4×4 tiles per invocation along M and N.
    let (tm, tn) = match variant {
        MatmulVariant::Registers { wg_x, wg_y } => {
            spec.tiles.unwrap_or_else(|| register_tiles(s.m, s.n, s.k, (wg_x * wg_y) as usize))
        }
        MatmulVariant::Tiled { .. } => (1, 1),
    };
    if ![1, 2, 4, 8].contains(&tm) || ![1, 2, 4].contains(&tn) {
        return Err(Error::invalid("matmul tiles", format!("{:?}: 1, 2, 4 or 8 along M, 1, 2 or 4 along N", (tm, tn))));
    }
    // One tile per invocation has an entry point of its own, a fraction of the code to compile.
    let entry = match (entry, tm, tn) {
        ("matmul", 1, 1) => "matmul_one",
        ("matmul", 8, _) => "matmul_tall",
        _ => entry,
    };
    // A tall block's workgroup is half as high: as many output rows per workgroup as 4 tiles.
    let wy = if entry == "matmul_tall" { (wy / 2).max(1) } else { wy };
    Ok(Form { entry, wx, wy, tm, tn })
}

/// [`matmul`] or [`matmul_act_grad`], as `grad` says (one place for callers that hold either).
pub(crate) fn matmul_with(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
    grad: Option<ActGrad<'_>>,
) -> Result<Dispatch> {
    let s = check_operands(a, b, bias, c, spec, grad)?;
    let variant = spec.variant.unwrap_or_else(|| ctx.matmul_variant());
    let Form { entry, wx, wy, tm, tn } = form(variant, spec, s)?;
    let per_x = 4 * tn * wx as usize;
    let per_y = 4 * tm * wy as usize;
    let dummy4 = ctx.dummy()?;
    let dummy;
    // The aux binding: the bias, or the saved activation of a backward product, or a dummy.
    let aux = match (bias, grad) {
        (Some(b), _) => b,
        (None, Some(g)) => g.saved,
        (None, None) => {
            dummy = ctx.dummy()?;
            &dummy
        }
    };
    // Four-float loads where rows are 16-byte aligned (and the bound views start aligned,
    // which every tensor offset is).
    // (The tiled form stages through workgroup memory and takes no vectorised views.)
    let registers = matches!(variant, MatmulVariant::Registers { .. });
    let vec_a = registers && (if spec.trans_a { s.m % 4 == 0 } else { s.k % 4 == 0 }) && a.offset_bytes() % 16 == 0;
    let vec_b = registers && (if spec.trans_b { s.k % 4 == 0 } else { s.n % 4 == 0 }) && b.offset_bytes() % 16 == 0;
    let vec_c = registers && s.n % 4 == 0 && c.offset_bytes() % 16 == 0;
    // By default not for one tile per invocation: that form exists to compile fast, and a
    // texel fetch compiles to more code than a storage read.
    let textures = spec.textures.unwrap_or_else(|| ctx.texture_operands() && (tm, tn) != (1, 1));
    let tex_a = if vec_a && textures { ctx.tex_mirror(a)? } else { None };
    let tex_b = if vec_b && textures { ctx.tex_mirror(b)? } else { None };
    let constants = [
        ("VEC_A", f64::from(u8::from(vec_a))),
        ("VEC_B", f64::from(u8::from(vec_b))),
        ("VEC_C", f64::from(u8::from(vec_c))),
        ("TEX_A", f64::from(u8::from(tex_a.is_some()))),
        ("TEX_B", f64::from(u8::from(tex_b.is_some()))),
        ("TRANS_A", f64::from(u8::from(spec.trans_a))),
        ("TRANS_B", f64::from(u8::from(spec.trans_b))),
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
        ("ACCUMULATE", f64::from(u8::from(spec.accumulate))),
        ("ACT", f64::from(spec.act.code())),
        ("GRAD_ACT", f64::from(grad.map_or(0, |g| g.act.code()))),
        ("GRAD_FROM_OUTPUT", f64::from(u8::from(grad.is_some_and(|g| g.from_output)))),
        ("WG_X", f64::from(wx)),
        ("WG_Y", f64::from(wy)),
        ("TM", tm as f64),
        ("TN", tn as f64),
    ];
    // With VEC_C the register-blocked forms store through c4 alone. WebGPU forbids one
    // dispatch two writable bindings over the same bytes, so C is bound there only, and the
    // scalar binding gets a buffer of its own, as when an optional output is absent.
    let dummy_out = ctx.dummy_out()?;
    let c_scalar = if registers && vec_c { &dummy_out } else { c };
    let call = KernelCall::new(Shader::Matmul, entry, &constants)
        .params([s.m as u32, s.n as u32, s.k as u32, 0], [grad.map_or(spec.act, |g| g.act).slope(), 0.0, 0.0, 0.0])
        .bind(a)
        .bind(b)
        .bind(aux)
        .bind(c_scalar)
        .groups(s.n.div_ceil(per_x) as u32, s.m.div_ceil(per_y) as u32, 1);
    let call = if registers {
        call.bind_at(5, if vec_a { a } else { &dummy4 }).bind_at(6, if vec_b { b } else { &dummy4 })
    } else {
        call
    };
    let call = if registers { call.bind_at(7, if vec_c { c } else { &dummy_out }) } else { call };
    let call = if registers {
        let call = match tex_a {
            Some(m) => call.bind_texture(8, m),
            None => call.bind_texture_dummy(8, ctx.dummy_texture()?),
        };
        match tex_b {
            Some(m) => call.bind_texture(9, m),
            None => call.bind_texture_dummy(9, ctx.dummy_texture()?),
        }
    } else {
        call
    };
    call.build(ctx)
}
