//! The CPU references of the kernels the architectures, categorical inputs, product tasks
//! and FAMO added: grouped products (a bank of experts), embedding lookups and their inverse
//! index, ESMM's product logit, and FAMO's update.

use super::{matmul, Real};
use crate::ir::{Activation, GroupedLayout, MatmulShape};

/// G products side by side: `C_g (+)= act(op(A_g)·op(B_g) + bias_g)` for g < `groups`, each
/// operand kept as [`GroupedLayout`] says, `bias` of length G·N (group g's at g·N). Each
/// group is [`matmul`] on its own operands: the same sums in the same order.
#[allow(clippy::too_many_arguments)]
pub fn grouped_matmul<T: Real>(
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    c: &mut [T],
    s: MatmulShape,
    groups: usize,
    layout: GroupedLayout,
    act: Activation,
    accumulate: bool,
) {
    let MatmulShape { m, n, k } = s;
    let (ar, ac) = if layout.trans_a { (k, m) } else { (m, k) };
    let (br, bc) = if layout.trans_b { (n, k) } else { (k, n) };
    let gather = |src: &[T], stacked: bool, g: usize, rows: usize, cols: usize| -> Vec<T> {
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for col in 0..cols {
                out.push(src[GroupedLayout::index(stacked, groups, g, rows, cols, r, col)]);
            }
        }
        out
    };
    for g in 0..groups {
        let ag = gather(a, layout.a_stacked, g, ar, ac);
        let bg = gather(b, layout.b_stacked, g, br, bc);
        let mut cg = gather(c, layout.c_stacked, g, m, n);
        let bias_g = bias.map(|v| &v[g * n..(g + 1) * n]);
        matmul(&ag, &bg, bias_g, &mut cg, s, layout.trans_a, layout.trans_b, act, accumulate);
        for r in 0..m {
            for col in 0..n {
                c[GroupedLayout::index(layout.c_stacked, groups, g, m, n, r, col)] = cg[r * n + col];
            }
        }
    }
}

/// `y[r, :] = table[ids[r], :]`, rows of `dim` values (`ids` whole numbers).
pub fn embed_gather<T: Real>(table: &[T], ids: &[T], dim: usize, y: &mut [T]) {
    for (r, &id) in ids.iter().enumerate() {
        let v = id.to_f64() as usize;
        y[r * dim..(r + 1) * dim].copy_from_slice(&table[v * dim..(v + 1) * dim]);
    }
}

/// `dtable[v, :] (+)= Σ_j dy[order[j], :]` over j in `offsets[v]..offsets[v + 1]`, in that
/// order: the gradient of [`embed_gather`] (every table row written, zero where unused).
pub fn embed_scatter<T: Real>(dy: &[T], offsets: &[T], order: &[T], dim: usize, dtable: &mut [T], accumulate: bool) {
    for v in 0..offsets.len() - 1 {
        let (a, b) = (offsets[v].to_f64() as usize, offsets[v + 1].to_f64() as usize);
        for d in 0..dim {
            let mut s = T::of(0.0);
            for &r in &order[a..b] {
                s += dy[r.to_f64() as usize * dim + d];
            }
            let o = &mut dtable[v * dim + d];
            *o = if accumulate { *o + s } else { s };
        }
    }
}

/// The inverse of `ids` (each in `0..rows`) for [`embed_scatter`]: `offsets` `[rows + 1]`
/// and `order`, the positions of `ids` grouped by value, each group in increasing order.
pub fn embed_inverse(ids: &[u32], rows: usize) -> (Vec<f32>, Vec<f32>) {
    let mut counts = vec![0usize; rows + 1];
    for &i in ids {
        counts[i as usize + 1] += 1;
    }
    for v in 0..rows {
        counts[v + 1] += counts[v];
    }
    let mut next = counts.clone();
    let mut order = vec![0f32; ids.len()];
    for (r, &i) in ids.iter().enumerate() {
        order[next[i as usize]] = r as f32;
        next[i as usize] += 1;
    }
    (counts.iter().map(|&c| c as f32).collect(), order)
}

/// log σ(x) = −softplus(−x).
fn log_sigmoid<T: Real>(x: T) -> T {
    let zero = T::of(0.0);
    let m = if -x > zero { -x } else { zero };
    let ax = if x < zero { -x } else { x };
    -(m + (T::of(1.0) + (-ax).exp()).ln())
}

/// log(1 − σ(a)σ(b)) = log(σ(−a) + σ(a)σ(−b)), as a log-sum-exp of the two terms' logs.
fn log_one_minus_product<T: Real>(a: T, b: T) -> T {
    let (x, y) = (log_sigmoid(-a), log_sigmoid(a) + log_sigmoid(-b));
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    hi + (T::of(1.0) + (lo - hi).exp()).ln()
}

/// `y = logit(σ(a)·σ(b))`, the logit of the product of two probabilities given by their
/// logits (ESMM's p(click and conversion)), in logs throughout: log p = log σ(a) + log σ(b)
/// and log(1 − p) = log(σ(−a) + σ(a)·σ(−b)), so y = log p − log(1 − p).
pub fn product_logit<T: Real>(a: &[T], b: &[T], y: &mut [T]) {
    for ((yi, &x), &z) in y.iter_mut().zip(a).zip(b) {
        *yi = log_sigmoid(x) + log_sigmoid(z) - log_one_minus_product(x, z);
    }
}

/// The gradient of [`product_logit`] at `a` (or, with `at_b`, at `b`):
/// `dx (+)= dy · σ(−x) / (1 − σ(a)·σ(b))`, x the operand.
pub fn product_logit_grad<T: Real>(a: &[T], b: &[T], dy: &[T], at_b: bool, dx: &mut [T], accumulate: bool) {
    for (i, d) in dx.iter_mut().enumerate() {
        let (x, z) = (a[i], b[i]);
        let own = if at_b { z } else { x };
        let g = dy[i] * (log_sigmoid(-own) - log_one_minus_product(x, z)).exp();
        *d = if accumulate { *d + g } else { g };
    }
}

/// FAMO (Liu et al., NeurIPS 2023) as LibMTL runs it, the CPU reference of the `famo`
/// kernel's first half: with z = softmax(ξ), the loss weights w_t = z_t / (c·(L_t − min_t + ε)),
/// c = Σ_s z_s / (L_s − min_s + ε); the losses are kept for the update. `state` holds ξ, Adam's
/// m and v, the losses before the update (T each) and Adam's step count.
pub fn famo_weights<T: Real>(min_losses: &[T], losses: &[T], w: &mut [T], state: &mut [T]) {
    let t = losses.len();
    let eps = T::of(1e-8);
    let z = softmax(&state[..t]);
    let c = (0..t).fold(T::of(0.0), |a, k| a + z[k] / (losses[k] - min_losses[k] + eps));
    for k in 0..t {
        w[k] = z[k] / (c * (losses[k] - min_losses[k] + eps));
        state[3 * t + k] = losses[k];
    }
}

/// FAMO's second half, LibMTL's `update_w`, after the model's update with `losses` the same
/// batch's losses re-evaluated: ξ takes one Adam step (β = 0.9, 0.999; weight decay `wd` added
/// to the gradient) along J_softmax(ξ)ᵀδ, δ_t = log(before_t − min_t + ε) − log(L_t − min_t + ε).
pub fn famo_update<T: Real>(min_losses: &[T], losses: &[T], state: &mut [T], lr: T, wd: T) {
    let t = losses.len();
    let (eps, one) = (T::of(1e-8), T::of(1.0));
    let z = softmax(&state[..t]);
    let delta: Vec<T> = (0..t)
        .map(|k| (state[3 * t + k] - min_losses[k] + eps).ln() - (losses[k] - min_losses[k] + eps).ln())
        .collect();
    let zd = (0..t).fold(T::of(0.0), |a, k| a + z[k] * delta[k]);
    let (b1, b2) = (T::of(0.9), T::of(0.999));
    let n = state[4 * t].to_f64() as i32 + 1;
    for k in 0..t {
        let g = z[k] * (delta[k] - zd) + wd * state[k];
        let m = b1 * state[t + k] + (one - b1) * g;
        let v = b2 * state[2 * t + k] + (one - b2) * g * g;
        state[t + k] = m;
        state[2 * t + k] = v;
        let mh = m / (one - T::of(0.9f64.powi(n)));
        let vh = v / (one - T::of(0.999f64.powi(n)));
        state[k] = state[k] - lr * mh / (vh.sqrt() + eps);
    }
    state[4 * t] = T::of(f64::from(n));
}

fn softmax<T: Real>(xi: &[T]) -> Vec<T> {
    let mx = xi.iter().copied().fold(xi[0], |a, b| if b > a { b } else { a });
    let e: Vec<T> = xi.iter().map(|&x| (x - mx).exp()).collect();
    let s = e.iter().fold(T::of(0.0), |a, &b| a + b);
    e.iter().map(|&x| x / s).collect()
}

/// The reference of the `mix_rows` kernel: in `rows` (the T gradients G_t, `stride` apart,
/// then the T moving averages Y_t), `Y_t = m[t]·Y_t + m[T+t]·G_t` over the first `p` values.
pub fn mix_rows<T: Real>(rows: &mut [T], m: &[T], t: usize, p: usize, stride: usize) {
    for task in 0..t {
        for k in 0..p {
            let y = (t + task) * stride + k;
            rows[y] = m[task] * rows[y] + m[t + task] * rows[task * stride + k];
        }
    }
}

/// The reference of the `excess_rows` kernel: in `rows` (the T gradients G_t, then their
/// running sums of squares A_t), `A_t += G_t²`; returns `w_t = Σ_k G_tk² / √(A_tk + 1e-7)`.
pub fn excess_rows<T: Real>(rows: &mut [T], t: usize, p: usize, stride: usize) -> Vec<T> {
    (0..t)
        .map(|task| {
            (0..p).fold(T::of(0.0), |s, k| {
                let g = rows[task * stride + k];
                let a = (t + task) * stride + k;
                rows[a] += g * g;
                s + g * g / (rows[a] + T::of(1e-7)).sqrt()
            })
        })
        .collect()
}

/// The reference of the `lookahead` kernel: `saved − lr·g/w` (TAG's step on one task's gradient
/// `g`, taken with its loss weight `w`), or `saved` where the weight is 0.
pub fn lookahead<T: Real>(saved: &[T], g: &[T], w: T, lr: T) -> Vec<T> {
    let zero = T::of(0.0);
    saved.iter().zip(g).map(|(&s, &gk)| if w == zero { s } else { s - lr * (gk / w) }).collect()
}
