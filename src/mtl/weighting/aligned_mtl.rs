//! Aligned-MTL (Senushkin et al., CVPR 2023), as LibMTL: with M = VΛVᵀ (keeping the
//! eigenvalues above tolerance), α = (√λ_min · V Λ^{−1/2} Vᵀ) 1, d = Σ α_t g_t: the update
//! whose components along the gradients' principal directions are aligned (condition number 1).

use super::gram::Gram;
use super::linalg::sym_eigen;

/// The weights α.
pub fn aligned_mtl(m: &Gram) -> Vec<f64> {
    let t = m.t;
    let (vals, vecs) = sym_eigen(&m.m, t);
    let max = vals.iter().copied().fold(0.0, f64::max);
    // LibMTL's cut-off: torch's default (f32) epsilon, the precision of the Gram matrix.
    let tol = max * t as f64 * f64::from(f32::EPSILON);
    let keep: Vec<usize> = (0..t).filter(|&i| vals[i] > tol).collect();
    if keep.is_empty() {
        return vec![1.0 / t as f64; t];
    }
    let lmin = keep.iter().map(|&i| vals[i]).fold(f64::INFINITY, f64::min);
    let mut alpha = vec![0.0; t];
    for i in 0..t {
        let mut s = 0.0;
        for &k in &keep {
            let vsum: f64 = (0..t).map(|j| vecs[j * t + k]).sum();
            s += vecs[i * t + k] * vsum / vals[k].sqrt();
        }
        alpha[i] = lmin.sqrt() * s;
    }
    alpha
}
