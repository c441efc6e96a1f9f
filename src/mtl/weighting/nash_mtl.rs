//! Nash-MTL (Navon et al., ICML 2022): d = Gᵀα with α > 0 solving (Mα)_t = 1/α_t, the Nash
//! bargaining solution; and FairGrad (Ban & Ji, ICML 2024), its α-fair generalisation
//! (Mw)_t = w_t^{−1/α}, solved the same way. It is the unique minimiser of the strictly convex
//! φ(α) = ½ αᵀMα − Σ log α_t (∇φ = Mα − 1/α), found here by damped Newton steps that keep
//! α > 0 (the reference code reaches the same point by CCCP with cvxpy). As LibMTL, Nash-MTL
//! solves it on M/‖M‖_F and clips the update to `max_norm`.

use super::gram::Gram;
use super::linalg::solve;

/// α with (Mα)_t ≈ 1/α_t (before clipping): [`fair_weights`] with α = 1.
pub fn nash_alpha(m: &Gram, iters: usize) -> Vec<f64> {
    fair_weights(m, 1.0, iters)
}

/// w > 0 with (Mw)_t = w_t^{−1/p}: the α-fair allocation of FairGrad (Ban & Ji, ICML 2024)
/// with α = `p`, and Nash-MTL's bargaining solution at p = 1. It is the unique minimiser of
/// the strictly convex φ(w) = ½ wᵀMw − Σ F(w_t), F′(w) = w^{−1/p} (F = ln at p = 1), found by
/// damped Newton steps that keep w > 0, from the solution for orthogonal gradients,
/// w_t = ‖g_t‖^{−2p/(p+1)}.
pub fn fair_weights(m: &Gram, p: f64, iters: usize) -> Vec<f64> {
    let t = m.t;
    // A small ridge keeps φ strictly convex when gradients are linearly dependent.
    let trace: f64 = (0..t).map(|i| m.at(i, i)).sum::<f64>() / t as f64;
    let ridge = 1e-9 * trace.max(1e-30);
    let mr = |v: &[f64]| -> Vec<f64> { m.mul(v).iter().zip(v).map(|(a, b)| a + ridge * b).collect() };
    let pull = |w: f64| w.powf(-1.0 / p);
    let big_f = |w: f64| if p == 1.0 { w.ln() } else { w.powf(1.0 - 1.0 / p) / (1.0 - 1.0 / p) };
    let phi = |v: &[f64]| {
        0.5 * mr(v).iter().zip(v).map(|(x, y)| x * y).sum::<f64>() - v.iter().map(|&x| big_f(x)).sum::<f64>()
    };
    let floor = trace.max(1e-300).sqrt() * 1e-12;
    let mut a: Vec<f64> = (0..t).map(|i| m.norm(i).max(floor).powf(-2.0 * p / (p + 1.0))).collect();
    for _ in 0..iters.max(1) * 5 {
        let ma = mr(&a);
        let grad: Vec<f64> = (0..t).map(|i| ma[i] - pull(a[i])).collect();
        if grad.iter().zip(&a).all(|(g, &ai)| (g / pull(ai)).abs() < 1e-10) {
            break;
        }
        let mut h = m.m.clone();
        for i in 0..t {
            h[i * t + i] += ridge + pull(a[i]) / (p * a[i]);
        }
        let Some(step) = solve(&h, &grad, t, 1e-12) else { break };
        let f0 = phi(&a);
        let mut s = 1.0;
        loop {
            let next: Vec<f64> = a.iter().zip(&step).map(|(x, d)| x - s * d).collect();
            if next.iter().all(|&x| x > 0.0) && phi(&next) <= f0 {
                a = next;
                break;
            }
            s *= 0.5;
            if s < 1e-12 {
                return a;
            }
        }
    }
    a
}

/// Coefficients of d = Σ c_t g_t as LibMTL's `Nash_MTL` computes them: α solved on the Gram
/// matrix divided by its Frobenius norm s (so α = √s times [`nash_alpha`]'s), d = Σ α_t g_t
/// clipped so that ‖d‖ ≤ max_norm (0: no clipping). See [`nash_mtl_step`] for the heads.
pub fn nash_mtl(m: &Gram, iters: usize, max_norm: f64) -> Vec<f64> {
    nash_mtl_step(m, iters, max_norm).0
}

/// Nash-MTL's shared coefficients and its heads' loss weights: LibMTL backpropagates Σ α_t L_t
/// (heads weighted by α), then clips the shared parameters' gradient only.
pub fn nash_mtl_step(m: &Gram, iters: usize, max_norm: f64) -> (Vec<f64>, Vec<f64>) {
    let s = m.m.iter().map(|v| v * v).sum::<f64>().sqrt();
    let a = if s > 0.0 && s.is_finite() {
        nash_alpha(&Gram::new(m.t, m.m.iter().map(|v| v / s).collect()), iters)
    } else {
        nash_alpha(m, iters)
    };
    let norm = m.quad(&a).max(0.0).sqrt();
    let f = if max_norm > 0.0 && norm > max_norm { max_norm / norm } else { 1.0 };
    (a.iter().map(|v| v * f).collect(), a)
}
