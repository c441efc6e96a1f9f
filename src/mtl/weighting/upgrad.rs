//! UPGrad (Quinton & Rey, TorchJD): each g_i is projected onto the dual cone {x : Gx ≥ 0} of
//! the gradients and the projections are averaged. In the Gram matrix, the projection of g_i
//! is Gᵀv_i with v_i = argmin_{v ≥ e_i} vᵀMv (solved exactly as a non-negative least-squares
//! problem), and the
//! update is Gᵀ(mean_i v_i): it conflicts with no task.

use super::gram::Gram;

/// v = argmin_{v ≥ lower} vᵀMv. With v = lower + λ this is the non-negative least-squares
/// problem min_{λ≥0} ‖Gᵀλ + Gᵀlower‖², solved exactly by Lawson–Hanson's active-set method
/// on the Gram matrix (normal equations; a tiny ridge where a passive block is singular).
pub fn project_weights(m: &Gram, lower: &[f64], iters: usize) -> Vec<f64> {
    let t = m.t;
    let scale = (0..t).map(|i| m.at(i, i)).fold(0.0, f64::max).max(1e-300);
    // Normal equations: AᵀA = M, Aᵀb = −M·lower.
    let atb: Vec<f64> = m.mul(lower).iter().map(|v| -v).collect();
    let mut x = vec![0.0; t];
    let mut passive = vec![false; t];
    let grad = |x: &[f64]| -> Vec<f64> {
        let mx = m.mul(x);
        (0..t).map(|i| atb[i] - mx[i]).collect()
    };
    let solve_passive = |passive: &[bool]| -> Vec<f64> {
        let idx: Vec<usize> = (0..t).filter(|&i| passive[i]).collect();
        let k = idx.len();
        let mut a = vec![0.0; k * k];
        for (r, &i) in idx.iter().enumerate() {
            for (c, &j) in idx.iter().enumerate() {
                a[r * k + c] = m.at(i, j);
            }
        }
        let rhs: Vec<f64> = idx.iter().map(|&i| atb[i]).collect();
        let z = super::linalg::solve(&a, &rhs, k, 1e-12 * scale).unwrap_or_else(|| vec![0.0; k]);
        let mut full = vec![0.0; t];
        for (r, &i) in idx.iter().enumerate() {
            full[i] = z[r];
        }
        full
    };
    for _ in 0..iters.max(3 * t) {
        let w = grad(&x);
        let cand = (0..t).filter(|&i| !passive[i] && w[i] > 1e-12 * scale).max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(j) = cand else { break };
        passive[j] = true;
        loop {
            let z = solve_passive(&passive);
            if (0..t).filter(|&i| passive[i]).all(|i| z[i] > 0.0) {
                x = z;
                break;
            }
            let mut alpha = f64::INFINITY;
            for i in 0..t {
                if passive[i] && z[i] <= 0.0 {
                    alpha = alpha.min(x[i] / (x[i] - z[i]));
                }
            }
            for i in 0..t {
                x[i] += alpha * (z[i] - x[i]);
                if passive[i] && x[i] <= 1e-15 {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
        }
    }
    lower.iter().zip(&x).map(|(l, v)| l + v).collect()
}

/// Coefficients of d = Σ c_t g_t.
pub fn upgrad(m: &Gram) -> Vec<f64> {
    let t = m.t;
    let mut c = vec![0.0; t];
    for i in 0..t {
        let mut e = vec![0.0; t];
        e[i] = 1.0;
        let v = project_weights(m, &e, 100);
        for k in 0..t {
            c[k] += v[k] / t as f64;
        }
    }
    c
}
