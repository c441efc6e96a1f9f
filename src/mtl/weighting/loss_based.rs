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

/// GradNorm (Chen et al., ICML 2018) state: task weights (start 1), the first losses, and an
/// Adam state for the weights.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GradNormState {
    /// Current weights (Σ = T).
    pub w: Vec<f64>,
    l0: Option<Vec<f64>>,
    m: Vec<f64>,
    v: Vec<f64>,
    step: i32,
}

impl GradNormState {
    /// Weights 1.
    pub fn new(t: usize) -> Self {
        GradNormState { w: vec![1.0; t], l0: None, m: vec![0.0; t], v: vec![0.0; t], step: 0 }
    }

    /// One update from per-task gradient norms n_t (of unweighted gradients) and losses:
    /// G_t = w_t n_t, target Ḡ·r_t^α (held constant), ∂L_grad/∂w_t = sign(G_t − target_t)·n_t,
    /// an Adam step of rate `lr`, then Σ w = T.
    pub fn update(&mut self, norms: &[f64], losses: &[f64], alpha: f64, lr: f64) {
        let t = self.w.len();
        let l0 = self.l0.get_or_insert_with(|| losses.iter().map(|l| l.max(1e-20)).collect()).clone();
        let g: Vec<f64> = (0..t).map(|i| self.w[i] * norms[i]).collect();
        let gbar = g.iter().sum::<f64>() / t as f64;
        let lt: Vec<f64> = (0..t).map(|i| losses[i] / l0[i]).collect();
        let lbar = lt.iter().sum::<f64>() / t as f64;
        self.step += 1;
        for i in 0..t {
            let target = gbar * (lt[i] / lbar.max(1e-20)).powf(alpha);
            let grad = (g[i] - target).signum() * norms[i];
            self.m[i] = 0.9 * self.m[i] + 0.1 * grad;
            self.v[i] = 0.999 * self.v[i] + 0.001 * grad * grad;
            let mh = self.m[i] / (1.0 - 0.9f64.powi(self.step));
            let vh = self.v[i] / (1.0 - 0.999f64.powi(self.step));
            self.w[i] = (self.w[i] - lr * mh / (vh.sqrt() + 1e-8)).max(1e-3);
        }
        let s: f64 = self.w.iter().sum();
        for x in &mut self.w {
            *x *= t as f64 / s;
        }
    }
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
