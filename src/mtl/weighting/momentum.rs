//! The methods that keep a moving average y_t of each task's gradient of the shared
//! parameters, as LibMTL implements them: DB-MTL (Lin et al., 2023) and MoCo (Fernando et al.,
//! ICLR 2023). The averages live on the GPU beside this step's gradients g_t; the host sees
//! the joint Gram matrix of [g; y] (2T×2T), which is all either method needs, and answers with
//! the averages' update y_t ← a_t·y_t + b_t·g_t and the coefficients of d over the 2T rows
//! (expressed on the averages before their update, so one combination reads both).

use super::gram::Gram;

/// One step of a moving-average method.
#[derive(Clone, Debug, PartialEq)]
pub struct MomentumStep {
    /// y_t ← a_t·y_t + b_t·g_t.
    pub a: Vec<f64>,
    /// See `a`.
    pub b: Vec<f64>,
    /// `d = Σ_t coef[t]·g_t + Σ_t coef[T+t]·y_t`, with y the averages before this step's update.
    pub coef: Vec<f64>,
    /// The heads' loss weights (each head's gradient is its task's loss gradient times this).
    pub heads: Vec<f64>,
    /// Each task's weight on its updated average in d (DB-MTL's α, MoCo's λ).
    pub weights: Vec<f64>,
}

/// The Gram matrix of the updated averages a_t·y_t + b_t·g_t, from the joint Gram matrix of
/// [g; y] (rows 0..T the gradients, T..2T the averages).
pub fn updated_gram(joint: &Gram, a: &[f64], b: &[f64]) -> Gram {
    let t = a.len();
    let mut m = vec![0.0; t * t];
    for i in 0..t {
        for j in 0..t {
            m[i * t + j] = a[i] * a[j] * joint.at(t + i, t + j)
                + a[i] * b[j] * joint.at(t + i, j)
                + b[i] * a[j] * joint.at(i, t + j)
                + b[i] * b[j] * joint.at(i, j);
        }
    }
    Gram::new(t, m)
}

/// d = Σ_t w_t·(a_t·y_t + b_t·g_t) as coefficients of [g; y].
fn over_rows(w: &[f64], a: &[f64], b: &[f64]) -> Vec<f64> {
    let g = w.iter().zip(b).map(|(w, b)| w * b);
    let y = w.iter().zip(a).map(|(w, a)| w * a);
    g.chain(y).collect()
}

/// DB-MTL (LibMTL's `DB_MTL`): the gradients of log(L_t + 1e-8) go into y_t with rate
/// β/step^σ (y_t ← g̃_t + β_s·(y_t − g̃_t)), and d = Σ_t (max_s ‖y_s‖ / (‖y_t‖ + 1e-8))·y_t, every
/// average brought to the largest one's norm. The heads take the log losses' gradients.
/// `step` counts from 1.
pub fn db_mtl(joint: &Gram, losses: &[f64], step: u64, beta: f64, beta_sigma: f64) -> MomentumStep {
    let t = losses.len();
    let r = beta / (step.max(1) as f64).powf(beta_sigma);
    let heads: Vec<f64> = losses.iter().map(|l| 1.0 / (l + 1e-8)).collect();
    let a = vec![r; t];
    let b: Vec<f64> = heads.iter().map(|h| (1.0 - r) * h).collect();
    let y = updated_gram(joint, &a, &b);
    let u: Vec<f64> = (0..t).map(|i| y.norm(i)).collect();
    let max = u.iter().copied().fold(0.0, f64::max);
    let alpha: Vec<f64> = u.iter().map(|u| max / (u + 1e-8)).collect();
    MomentumStep { coef: over_rows(&alpha, &a, &b), a, b, heads, weights: alpha }
}

/// MoCo's parameters (LibMTL's defaults: β 0.5, σ_β 0.5, γ 0.1, σ_γ 0.5, ρ 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MocoParams {
    /// Rate of the averages.
    pub beta: f64,
    /// Its decay: β/step^σ.
    pub beta_sigma: f64,
    /// Rate of λ.
    pub gamma: f64,
    /// Its decay.
    pub gamma_sigma: f64,
    /// ℓ2 regularisation of λ's update.
    pub rho: f64,
}

/// MoCo (LibMTL's `MoCo`): each gradient rescaled to its loss, ĝ_t = g_t·L_t/(‖g_t‖ + 1e-8),
/// tracked by y_t ← y_t − β_s·(y_t − ĝ_t); then λ ← softmax(λ − γ_s·(YYᵀ + ρI)λ) and d = Yᵀλ.
/// `lambda` (T, starting at 1/T) is the state between steps; `step` counts from 1. The heads
/// take their losses' gradients unweighted.
pub fn moco(joint: &Gram, losses: &[f64], step: u64, lambda: &mut [f64], p: MocoParams) -> MomentumStep {
    let t = losses.len();
    let n = step.max(1) as f64;
    let (bs, gs) = (p.beta / n.powf(p.beta_sigma), p.gamma / n.powf(p.gamma_sigma));
    let a = vec![1.0 - bs; t];
    let b: Vec<f64> = (0..t).map(|i| bs * losses[i] / (joint.at(i, i).max(0.0).sqrt() + 1e-8)).collect();
    let y = updated_gram(joint, &a, &b);
    let v: Vec<f64> = y.mul(lambda).iter().zip(lambda.iter()).map(|(yl, l)| yl + p.rho * l).collect();
    let logits: Vec<f64> = lambda.iter().zip(&v).map(|(l, v)| l - gs * v).collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|x| (x - max).exp()).collect();
    let s: f64 = e.iter().sum();
    for (l, e) in lambda.iter_mut().zip(&e) {
        *l = e / s;
    }
    MomentumStep { coef: over_rows(lambda, &a, &b), a, b, heads: vec![1.0; t], weights: lambda.to_vec() }
}
