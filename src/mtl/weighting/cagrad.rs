//! CAGrad (Liu et al., NeurIPS 2021): max_d min_t <g_t, d> s.t. ‖d − ḡ‖ ≤ c‖ḡ‖, through its
//! dual over the simplex, w* = argmin_{w∈Δ} g_wᵀḡ + √φ‖g_w‖ with φ = c²‖ḡ‖², all in the Gram
//! matrix (scaled by the mean gradient norm as LibMTL does). LibMTL takes 21 softmax-SGD steps;
//! here the convex dual is solved to convergence by projected gradient on the simplex, so the
//! invariants hold (c = 0 gives ḡ; large c gives MGDA's direction). Then
//! d = ḡ + (√φ/‖g_w‖) g_w, divided by 1 + c² when rescale = 1.

use super::gram::Gram;
use super::linalg::project_simplex;

/// Coefficients of d = Σ c_t g_t.
pub fn cagrad(m: &Gram, c: f64, rescale: u8) -> Vec<f64> {
    let t = m.t;
    let tf = t as f64;
    let scale = (0..t).map(|i| (m.at(i, i) + 1e-4).sqrt()).sum::<f64>() / tf;
    let gg = Gram::new(t, m.m.iter().map(|v| v / (scale * scale)).collect());
    let b: Vec<f64> = (0..t).map(|i| (0..t).map(|j| gg.at(i, j)).sum::<f64>() / tf).collect(); // G ḡ
    let g0 = b.iter().sum::<f64>() / tf; // ‖ḡ‖²
    let sqrt_phi = (g0 + 1e-4).sqrt() * c;
    let obj = |w: &[f64]| w.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() + sqrt_phi * (gg.quad(w) + 1e-4).sqrt();
    let mut w = vec![1.0 / tf; t];
    let mut step = 1.0;
    for _ in 0..5000 {
        let gw = gg.mul(&w);
        let q = (gg.quad(&w) + 1e-4).sqrt();
        let grad: Vec<f64> = (0..t).map(|i| b[i] + sqrt_phi * gw[i] / q).collect();
        let f0 = obj(&w);
        let mut moved = false;
        for _ in 0..60 {
            let next = project_simplex(&w.iter().zip(&grad).map(|(x, g)| x - step * g).collect::<Vec<_>>());
            let decrease: f64 = grad.iter().zip(next.iter().zip(&w)).map(|(g, (n, x))| g * (x - n)).sum();
            let dist: f64 = next.iter().zip(&w).map(|(n, x)| (n - x).powi(2)).sum();
            if obj(&next) <= f0 - 0.5 * decrease.max(0.0) + 1e-18 || dist < 1e-30 {
                moved = dist > 1e-26;
                w = next;
                step *= 1.5;
                break;
            }
            step *= 0.5;
        }
        if !moved {
            break;
        }
    }
    let gw_norm = (gg.quad(&w) + 1e-4).sqrt();
    let lambda = sqrt_phi / (gw_norm + 1e-4);
    let div = if rescale == 1 { 1.0 + c * c } else { 1.0 };
    w.iter().map(|wi| (1.0 / tf + wi * lambda) / div).collect()
}
