//! The CPU reference: every GPU kernel again in plain Rust, generic over f32 and f64 so it is
//! also the f64 oracle for gradient checks. Same names as the kernels.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use crate::ir::{Activation, LossKind, MatmulShape};
pub use crate::rng::Rng;

mod models;
pub use models::{
    embed_gather, embed_inverse, embed_scatter, excess_rows, famo_update, famo_weights, grouped_matmul, lookahead,
    mix_rows, product_logit, product_logit_grad,
};

/// A float type the reference runs in (f32 or f64).
pub trait Real:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Send
    + Sync
    + 'static
{
    /// From f64 (rounding for f32).
    fn of(v: f64) -> Self;
    /// To f64.
    fn to_f64(self) -> f64;
    /// e^x.
    fn exp(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// ln x.
    fn ln(self) -> Self;
    /// √x.
    fn sqrt(self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            fn of(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
        }
    };
}
real!(f32);
real!(f64);

fn zero<T: Real>() -> T {
    T::of(0.0)
}
fn one<T: Real>() -> T {
    T::of(1.0)
}

/// tanh computed as activation.wgsl does (finite for any input).
pub fn stable_tanh<T: Real>(x: T) -> T {
    let e = (T::of(-2.0) * x.abs()).exp();
    let t = (one::<T>() - e) / (one::<T>() + e);
    if x >= zero() {
        t
    } else {
        -t
    }
}

/// The logistic function computed as activation.wgsl does.
pub fn stable_sigmoid<T: Real>(x: T) -> T {
    let e = (-x.abs()).exp();
    let r = one::<T>() / (one::<T>() + e);
    if x >= zero() {
        r
    } else {
        e * r
    }
}

const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_A: f64 = 0.044715;

/// act(x).
pub fn act_apply<T: Real>(act: Activation, x: T) -> T {
    let slope = T::of(f64::from(act.slope()));
    match act {
        Activation::Identity => x,
        Activation::Relu => {
            if x > zero() {
                x
            } else {
                zero()
            }
        }
        Activation::LeakyRelu(_) => {
            if x > zero() {
                x
            } else {
                slope * x
            }
        }
        Activation::Gelu => {
            let u = T::of(GELU_C) * (x + T::of(GELU_A) * x * x * x);
            T::of(0.5) * x * (one::<T>() + stable_tanh(u))
        }
        Activation::Sigmoid => stable_sigmoid(x),
        Activation::Tanh => stable_tanh(x),
        Activation::SmoothStep(g) => {
            let (g, h) = (T::of(f64::from(g)), T::of(f64::from(g) / 2.0));
            if x <= -h {
                zero()
            } else if x >= h {
                one()
            } else {
                T::of(-2.0) * x * x * x / (g * g * g) + T::of(1.5) * x / g + T::of(0.5)
            }
        }
    }
}

/// act'(x) from the input.
pub fn act_grad_from_input<T: Real>(act: Activation, x: T) -> T {
    let slope = T::of(f64::from(act.slope()));
    match act {
        Activation::Identity => one(),
        Activation::Relu => {
            if x > zero() {
                one()
            } else {
                zero()
            }
        }
        Activation::LeakyRelu(_) => {
            if x > zero() {
                one()
            } else {
                slope
            }
        }
        Activation::Gelu => {
            let (c, a) = (T::of(GELU_C), T::of(GELU_A));
            let t = stable_tanh(c * (x + a * x * x * x));
            T::of(0.5) * (one::<T>() + t)
                + T::of(0.5) * x * (one::<T>() - t * t) * c * (one::<T>() + T::of(3.0) * a * x * x)
        }
        Activation::Sigmoid => {
            let s = stable_sigmoid(x);
            s * (one::<T>() - s)
        }
        Activation::Tanh => {
            let t = stable_tanh(x);
            one::<T>() - t * t
        }
        Activation::SmoothStep(g) => {
            let (g, h) = (T::of(f64::from(g)), T::of(f64::from(g) / 2.0));
            if x <= -h || x >= h {
                zero()
            } else {
                T::of(-6.0) * x * x / (g * g * g) + T::of(1.5) / g
            }
        }
    }
}

/// act'(x) from the output y = act(x) (not for gelu).
pub fn act_grad_from_output<T: Real>(act: Activation, y: T) -> T {
    match act {
        Activation::Sigmoid => y * (one::<T>() - y),
        Activation::Tanh => one::<T>() - y * y,
        // For identity, relu and leaky relu (slope >= 0), y > 0 exactly when x > 0.
        other => act_grad_from_input(other, y),
    }
}

/// `c (+)= act(op(a)·op(b) + bias)`, the reference of the `matmul` kernel.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    c: &mut [T],
    s: MatmulShape,
    trans_a: bool,
    trans_b: bool,
    act: Activation,
    accumulate: bool,
) {
    let MatmulShape { m, n, k } = s;
    for i in 0..m {
        for j in 0..n {
            let mut acc = zero::<T>();
            for p in 0..k {
                let av = if trans_a { a[p * m + i] } else { a[i * k + p] };
                let bv = if trans_b { b[j * k + p] } else { b[p * n + j] };
                acc += av * bv;
            }
            if accumulate {
                acc += c[i * n + j];
            }
            if let Some(bias) = bias {
                acc += bias[j];
            }
            c[i * n + j] = act_apply(act, acc);
        }
    }
}

/// `y = act(x)`.
pub fn act_forward<T: Real>(act: Activation, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = act_apply(act, xi);
    }
}

/// `dx (+)= dy · act'(saved)`.
pub fn act_backward<T: Real>(
    act: Activation,
    dy: &[T],
    saved: &[T],
    from_output: bool,
    dx: &mut [T],
    accumulate: bool,
) {
    for i in 0..dy.len() {
        let d = if from_output { act_grad_from_output(act, saved[i]) } else { act_grad_from_input(act, saved[i]) };
        let r = dy[i] * d;
        dx[i] = if accumulate { dx[i] + r } else { r };
    }
}

/// `x = alpha`.
pub fn fill<T: Real>(x: &mut [T], alpha: T) {
    x.iter_mut().for_each(|v| *v = alpha);
}

/// `x = alpha · x`.
pub fn scale<T: Real>(x: &mut [T], alpha: T) {
    x.iter_mut().for_each(|v| *v = alpha * *v);
}

/// `y = y + alpha · x`.
pub fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `z = x + y`.
pub fn add<T: Real>(x: &[T], y: &[T], z: &mut [T]) {
    for i in 0..z.len() {
        z[i] = x[i] + y[i];
    }
}

/// `z = x ⊙ y`, or `z += x ⊙ y` when `accumulate`.
pub fn mul<T: Real>(x: &[T], y: &[T], z: &mut [T], accumulate: bool) {
    for i in 0..z.len() {
        let p = x[i] * y[i];
        z[i] = if accumulate { z[i] + p } else { p };
    }
}

/// `y = xᵀ` for x of shape [rows, cols].
pub fn transpose<T: Real>(x: &[T], rows: usize, cols: usize, y: &mut [T]) {
    for r in 0..rows {
        for c in 0..cols {
            y[c * rows + r] = x[r * cols + c];
        }
    }
}

/// Columns `ox..ox + cols` of x (rows `wx` long) to columns `oy..` of y (rows `wy` long),
/// plus `bias[j]` when given.
#[allow(clippy::too_many_arguments)]
pub fn copy_columns<T: Real>(
    x: &[T],
    wx: usize,
    ox: usize,
    y: &mut [T],
    wy: usize,
    oy: usize,
    cols: usize,
    bias: Option<&[T]>,
) {
    for r in 0..x.len() / wx {
        for j in 0..cols {
            y[r * wy + oy + j] = x[r * wx + ox + j] + bias.map_or(zero::<T>(), |b| b[j]);
        }
    }
}

/// `softmax_rows`: each row of `x` (`cols` wide) into `y`, shifted by its maximum so that
/// logits of ±100 stay finite.
pub fn softmax_rows<T: Real>(x: &[T], cols: usize, y: &mut [T]) {
    for (xr, yr) in x.chunks(cols).zip(y.chunks_mut(cols)) {
        let m = xr.iter().copied().fold(xr[0], |a, b| if b > a { b } else { a });
        let mut sum = zero::<T>();
        for (yv, &xv) in yr.iter_mut().zip(xr) {
            *yv = (xv - m).exp();
            sum += *yv;
        }
        for yv in yr.iter_mut() {
            *yv = *yv / sum;
        }
    }
}

/// `softmax_rows_backward`: `dx (+)= y ⊙ (dy − Σ_j dy_j y_j)` row by row, `y` the softmax's
/// output.
pub fn softmax_rows_backward<T: Real>(y: &[T], dy: &[T], cols: usize, dx: &mut [T], accumulate: bool) {
    for ((yr, dyr), dxr) in y.chunks(cols).zip(dy.chunks(cols)).zip(dx.chunks_mut(cols)) {
        let dot = yr.iter().zip(dyr).fold(zero::<T>(), |s, (&a, &b)| s + a * b);
        for ((d, &yv), &g) in dxr.iter_mut().zip(yr).zip(dyr) {
            let v = yv * (g - dot);
            *d = if accumulate { *d + v } else { v };
        }
    }
}

/// `stitch`: `y[r, t·D + d] = Σ_s alpha[t, s] · x[r, s·D + d]` for `tasks` blocks of `d`; with
/// `transpose`, `alpha[s, t]` (the gradient at the blocks), and `accumulate` adds into `y`.
pub fn stitch<T: Real>(x: &[T], alpha: &[T], tasks: usize, d: usize, y: &mut [T], transpose: bool, accumulate: bool) {
    let rows = x.len() / (tasks * d).max(1);
    for r in 0..rows {
        for t in 0..tasks {
            for j in 0..d {
                let mut s = zero::<T>();
                for k in 0..tasks {
                    let a = if transpose { alpha[k * tasks + t] } else { alpha[t * tasks + k] };
                    s += a * x[(r * tasks + k) * d + j];
                }
                let o = &mut y[(r * tasks + t) * d + j];
                *o = if accumulate { *o + s } else { s };
            }
        }
    }
}

/// `stitch_grad_alpha`: `dalpha[t, s] (+)= Σ_{r, d} dy[r, t·D + d] · x[r, s·D + d]`.
pub fn stitch_grad_alpha<T: Real>(dy: &[T], x: &[T], tasks: usize, d: usize, dalpha: &mut [T], accumulate: bool) {
    let rows = x.len() / (tasks * d).max(1);
    for t in 0..tasks {
        for k in 0..tasks {
            let mut s = zero::<T>();
            for r in 0..rows {
                for j in 0..d {
                    s += dy[(r * tasks + t) * d + j] * x[(r * tasks + k) * d + j];
                }
            }
            let o = &mut dalpha[t * tasks + k];
            *o = if accumulate { *o + s } else { s };
        }
    }
}

/// `encode`: DSelect-k's weights `y[r, i·E + j] = Π_q (bit_q(j) ? s[r, i·m + q] : 1 − s[r, i·m + q])`
/// for `experts` E = 2^m.
pub fn encode<T: Real>(s: &[T], experts: usize, y: &mut [T]) {
    let m = experts.trailing_zeros() as usize;
    for (bits, out) in s.chunks(m).zip(y.chunks_mut(experts)) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (0..m).fold(one::<T>(), |p, q| p * if (j >> q) & 1 == 1 { bits[q] } else { one::<T>() - bits[q] });
        }
    }
}

/// `encode_grad`: `ds[r, i·m + q] (+)= Σ_j dy[r, i·E + j] · ±Π_{q' ≠ q} (…)`, + where bit q of j
/// is 1.
pub fn encode_grad<T: Real>(dy: &[T], s: &[T], experts: usize, ds: &mut [T], accumulate: bool) {
    let m = experts.trailing_zeros() as usize;
    for ((bits, g), d) in s.chunks(m).zip(dy.chunks(experts)).zip(ds.chunks_mut(m)) {
        for (q, dq) in d.iter_mut().enumerate() {
            let mut acc = zero::<T>();
            for (j, &gj) in g.iter().enumerate() {
                let rest = (0..m)
                    .filter(|&p| p != q)
                    .fold(one::<T>(), |p, b| p * if (j >> b) & 1 == 1 { bits[b] } else { one::<T>() - bits[b] });
                acc += if (j >> q) & 1 == 1 { gj * rest } else { -(gj * rest) };
            }
            *dq = if accumulate { *dq + acc } else { acc };
        }
    }
}

/// `mix`: `y[r, d] = Σ_e gate[r, e] · x[r, e·D + d]` for `experts` blocks of `D` columns.
pub fn mix<T: Real>(gate: &[T], x: &[T], experts: usize, y: &mut [T]) {
    let d = y.len() / (gate.len() / experts).max(1);
    for (r, yr) in y.chunks_mut(d).enumerate() {
        for (j, yv) in yr.iter_mut().enumerate() {
            let mut s = zero::<T>();
            for e in 0..experts {
                s += gate[r * experts + e] * x[(r * experts + e) * d + j];
            }
            *yv = s;
        }
    }
}

/// `mix_grad_gate`: `dgate[r, e] (+)= Σ_d dy[r, d] · x[r, e·D + d]`.
pub fn mix_grad_gate<T: Real>(dy: &[T], x: &[T], experts: usize, dgate: &mut [T], accumulate: bool) {
    let rows = dgate.len() / experts;
    let d = dy.len() / rows.max(1);
    for r in 0..rows {
        for e in 0..experts {
            let mut s = zero::<T>();
            for j in 0..d {
                s += dy[r * d + j] * x[(r * experts + e) * d + j];
            }
            let g = &mut dgate[r * experts + e];
            *g = if accumulate { *g + s } else { s };
        }
    }
}

/// `mix_grad_x`: `dx[r, e·D + d] (+)= gate[r, e] · dy[r, d]`.
pub fn mix_grad_x<T: Real>(dy: &[T], gate: &[T], experts: usize, dx: &mut [T], accumulate: bool) {
    let rows = gate.len() / experts;
    let d = dy.len() / rows.max(1);
    for r in 0..rows {
        for e in 0..experts {
            for j in 0..d {
                let v = gate[r * experts + e] * dy[r * d + j];
                let o = &mut dx[(r * experts + e) * d + j];
                *o = if accumulate { *o + v } else { v };
            }
        }
    }
}

/// The divergence guard's reference (`check_finite`): counts the step in `state[0]`; unless a
/// divergence is already recorded (`state[1] != 0`), records `[1, step, task, value]` for the
/// first task loss that is not finite, else for a parameter that is not finite (task = the
/// number of losses). Which of several bad parameters is recorded is the kernel's choice; the
/// reference takes the first.
pub fn check_finite(losses: &[f32], params: &[f32], state: &mut [f32; 5]) {
    state[0] += 1.0;
    if state[1] != 0.0 {
        return;
    }
    let bad_loss = losses.iter().position(|l| !l.is_finite()).map(|k| (k, losses[k]));
    let bad_param = || params.iter().find(|v| !v.is_finite()).map(|&v| (losses.len(), v));
    if let Some((task, value)) = bad_loss.or_else(bad_param) {
        *state = [state[0], 1.0, state[0], task as f32, value];
    }
}

/// `out[c] (+)= Σ_r x[r, c]` for x of shape `[rows, cols]`.
pub fn col_sum<T: Real>(x: &[T], rows: usize, cols: usize, out: &mut [T], accumulate: bool) {
    for c in 0..cols {
        let mut s = zero::<T>();
        for r in 0..rows {
            s += x[r * cols + c];
        }
        out[c] = if accumulate { out[c] + s } else { s };
    }
}

/// Σ x.
pub fn sum<T: Real>(x: &[T]) -> T {
    x.iter().fold(zero(), |s, &v| s + v)
}

/// Σ x².
pub fn sq_norm<T: Real>(x: &[T]) -> T {
    x.iter().fold(zero(), |s, &v| s + v * v)
}

/// Σ x·y.
pub fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    x.iter().zip(y).fold(zero(), |s, (&a, &b)| s + a * b)
}

/// The reference of the fused `task_loss` kernel: returns the mean loss over rows with
/// `mask != 0` and writes `weight · ∂loss/∂logits` into `grad` (zero on masked rows).
pub fn task_loss<T: Real>(kind: LossKind, logits: &[T], labels: &[T], mask: &[T], weight: T, grad: &mut [T]) -> T {
    task_loss_over(kind, logits, labels, mask, weight, None, grad)
}

/// [`task_loss`] whose mean divides by `count` where it is given and positive (the labelled
/// rows of the global batch this batch is a slice of), as the GPU kernel with counts does.
pub fn task_loss_over<T: Real>(
    kind: LossKind,
    logits: &[T],
    labels: &[T],
    mask: &[T],
    weight: T,
    count: Option<T>,
    grad: &mut [T],
) -> T {
    use crate::ir::LossKind as L;
    let c = kind.outputs();
    let b = labels.len();
    let n = mask.iter().filter(|&&m| m != zero()).count();
    let nf = match count {
        Some(n) if n > zero() => n,
        _ => T::of(n.max(1) as f64),
    };
    let scale = weight / nf;
    let mut total = zero::<T>();
    let softplus = |x: T| (if x > zero() { x } else { zero() }) + (one::<T>() + (-x.abs()).exp()).ln();
    let sign = |d: T| {
        if d > zero() {
            one()
        } else if d < zero() {
            -one::<T>()
        } else {
            zero()
        }
    };
    for r in 0..b {
        let row = &logits[r * c..(r + 1) * c];
        let g = &mut grad[r * c..(r + 1) * c];
        if mask[r] == zero() {
            g.iter_mut().for_each(|v| *v = zero());
            continue;
        }
        let y = labels[r];
        let d = row[0] - y;
        total += match kind {
            L::Mse => {
                g[0] = scale * T::of(2.0) * d;
                d * d
            }
            L::L1 => {
                g[0] = scale * sign(d);
                d.abs()
            }
            L::Huber { delta } => {
                let delta = T::of(f64::from(delta));
                if d.abs() <= delta {
                    g[0] = scale * d;
                    T::of(0.5) * d * d
                } else {
                    g[0] = scale * delta * sign(d);
                    delta * (d.abs() - T::of(0.5) * delta)
                }
            }
            L::Bce => {
                let x = row[0];
                g[0] = scale * (stable_sigmoid(x) - y);
                softplus(x) - x * y
            }
            L::CrossEntropy { .. } => {
                let label = y.to_f64() as usize;
                let mx = row.iter().copied().fold(row[0], |a, v| if v > a { v } else { a });
                let s = row.iter().fold(zero::<T>(), |s, &v| s + (v - mx).exp());
                let lse = mx + s.ln();
                for (k, gk) in g.iter_mut().enumerate() {
                    let prob = (row[k] - lse).exp();
                    *gk = scale * (prob - if k == label { one() } else { zero() });
                }
                lse - row[label]
            }
        };
    }
    total / nf
}
