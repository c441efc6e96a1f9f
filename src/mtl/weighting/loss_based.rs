//! Weightings computed from losses alone. UW, GLS and FAMO run on the GPU inside the step
//! (weighting.wgsl); the functions here are their CPU references. DWA and RLW run here.

use crate::rng::Rng;

/// DWA (Liu, Johns, Davison, CVPR 2019): λ_t = T·softmax(r/τ)_t with r_t = L̄_t(k−1)/L̄_t(k−2)
/// from epoch-average losses; 1 for the first two epochs (fewer than two epochs of history).
pub fn dwa(history: &[Vec<f64>], temperature: f64) -> Vec<f64> {
    let k = history.len();
    let t = history.first().map_or(0, Vec::len);
    if k < 2 {
        return vec![1.0; t];
    }
    let (a, b) = (&history[k - 1], &history[k - 2]);
    let r: Vec<f64> = (0..t).map(|i| a[i] / b[i].max(1e-20) / temperature).collect();
    let mx = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = r.iter().map(|v| (v - mx).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| t as f64 * v / s).collect()
}

/// RLW (Lin et al., TMLR 2022): λ = softmax(z), z ~ N(0, I_T), drawn each step.
pub fn rlw(t: usize, rng: &mut Rng) -> Vec<f64> {
    let z: Vec<f64> = (0..t).map(|_| rng.normal()).collect();
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// UW (Kendall, Gal, Cipolla, CVPR 2018; LibMTL): loss ½(e^{−s}L + s); returns (weight on L,
/// ∂/∂s) at log-variance s.
pub fn uw(s: f64, loss: f64) -> (f64, f64) {
    (0.5 * (-s).exp(), 0.5 * (1.0 - (-s).exp() * loss))
}

/// IMTL-L (Liu et al., ICLR 2021), the CPU reference of the `imtl_weights` and `imtl_grad`
/// kernels: the loss L scaled as e^s·L − s has weight e^s and ∂/∂s = e^s·L − 1.
pub fn imtl_l(s: f64, loss: f64) -> (f64, f64) {
    (s.exp(), s.exp() * loss - 1.0)
}

/// GLS: L = (Π L_t)^{1/T}; weights ∂L/∂L_t = L / (T·L_t).
pub fn gls(losses: &[f64]) -> Vec<f64> {
    let t = losses.len() as f64;
    let g = (losses.iter().map(|l| l.max(1e-20).ln()).sum::<f64>() / t).exp();
    losses.iter().map(|l| g / (t * l.max(1e-20))).collect()
}

/// GradDrop (Chen et al., NeurIPS 2020) as LibMTL implements it, the CPU reference of the
/// `graddrop` kernel: `g` the per-task gradients at the representation (`[B, d]` each), `x`
/// the representation's values. Per column, the signed batch sums s_t = Σ_b g_t·sign(x), the
/// purity P = ½(1 + Σ_t s_t / (Σ_t |s_t| + 1e-7)); with u the column's uniform draw, task t's
/// column is kept when P > u and s_t > 0 or P < u and s_t < 0, and the result is
/// Σ_t g_t·(leak + (1 − leak)·kept_t).
pub fn graddrop(g: &[Vec<f64>], x: &[f64], d: usize, u: &[f64], leak: f64) -> Vec<f64> {
    let n = x.len();
    let sign = |v: f64| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let mut out = vec![0.0; n];
    for (c, &uc) in u.iter().enumerate().take(d) {
        let s: Vec<f64> = g.iter().map(|r| (c..n).step_by(d).map(|k| r[k] * sign(x[k])).sum()).collect();
        let purity = 0.5 * (1.0 + s.iter().sum::<f64>() / (s.iter().map(|v| v.abs()).sum::<f64>() + 1e-7));
        for (r, st) in g.iter().zip(&s) {
            let kept = (purity > uc && *st > 0.0) || (purity < uc && *st < 0.0);
            let m = leak + (1.0 - leak) * if kept { 1.0 } else { 0.0 };
            for k in (c..n).step_by(d) {
                out[k] += r[k] * m;
            }
        }
    }
    out
}

/// STCH (Lin et al., ICML 2024) as LibMTL runs it, the CPU reference of the `stch` kernel:
/// the loss weights for this step's `losses`, `state` holding the warm-up epoch's loss sums
/// (T), their count and the current epoch. Epochs up to `warmup` weigh as Σ log L_t (1/L_t),
/// the last of them summing the losses; later ones as μ·T·log Σ_t exp(ℓ_t/μ) with
/// ℓ_t = log(L_t/z_t + 1e-20), z the warm-up epoch's mean losses (the nadir point).
pub fn stch_weights(losses: &[f64], state: &mut [f64], warmup: usize, mu: f64) -> Vec<f64> {
    let t = losses.len();
    let epoch = state[t + 1];
    let warm = warmup as f64;
    if epoch <= warm {
        if epoch == warm {
            (0..t).for_each(|k| state[k] += losses[k]);
            state[t] += 1.0;
        }
        return losses.iter().map(|l| 1.0 / (l + 1e-20)).collect();
    }
    let count = state[t].max(1.0);
    let z: Vec<f64> = (0..t).map(|k| state[k] / count).collect();
    let ell: Vec<f64> = (0..t).map(|k| (losses[k] / z[k] + 1e-20).ln()).collect();
    let mx = ell.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = ell.iter().map(|l| ((l - mx) / mu).exp()).collect();
    let s: f64 = e.iter().sum();
    (0..t).map(|k| t as f64 * e[k] / s / (losses[k] + 1e-20 * z[k])).collect()
}
