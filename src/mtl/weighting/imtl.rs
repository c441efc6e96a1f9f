//! IMTL-G (Liu et al., ICLR 2021): d = Σ α_t g_t with Σ α_t = 1 whose projections on every
//! unit gradient u_t are equal. Closed form in the Gram matrix:
//! α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹ with D = `[g_1 − g_t]`, U = `[u_1 − u_t]`, α_1 = 1 − Σ α_{2:T}.

use super::gram::Gram;
use super::linalg::solve;

/// The weights α.
pub fn imtl(m: &Gram) -> Vec<f64> {
    let t = m.t;
    if t == 1 {
        return vec![1.0];
    }
    let n: Vec<f64> = (0..t).map(|i| m.norm(i).max(1e-20)).collect();
    // <g_a, u_b> = M_ab / n_b
    let gu = |a: usize, b: usize| m.at(a, b) / n[b];
    let k = t - 1;
    // (D Uᵀ)_{ij} = <g_1 − g_{i+1}, u_1 − u_{j+1}>, row vector r_j = <g_1, u_1 − u_{j+1}>
    let mut a = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            let (gi, uj) = (i + 1, j + 1);
            a[i * k + j] = gu(0, 0) - gu(0, uj) - gu(gi, 0) + gu(gi, uj);
        }
    }
    let r: Vec<f64> = (0..k).map(|j| gu(0, 0) - gu(0, j + 1)).collect();
    // α_{2:T} = r (D Uᵀ)⁻¹  ⇔  (D Uᵀ)ᵀ αᵀ = rᵀ
    let at: Vec<f64> = (0..k * k).map(|x| a[(x % k) * k + x / k]).collect();
    // A singular system (collinear unit gradients) is solved with a ridge of 1e-8 of its scale;
    // one that is all zeros means every unit gradient is the same, and then every α summing to
    // one meets IMTL's condition: the uniform one is taken (the method's rule, not a fallback).
    let rest = solve(&at, &r, k, 1e-8).unwrap_or_else(|| vec![1.0 / t as f64; k]);
    let mut alpha = vec![1.0 - rest.iter().sum::<f64>()];
    alpha.extend(rest);
    alpha
}
