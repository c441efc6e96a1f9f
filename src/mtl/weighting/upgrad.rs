//! UPGrad (Quinton & Rey, TorchJD): each g_i is projected onto the dual cone {x : Gx ≥ 0} of
//! the gradients and the projections are averaged. In the Gram matrix, the projection of g_i
//! is Gᵀv_i with v_i = argmin_{v ≥ e_i} vᵀMv (solved exactly as a non-negative least-squares
//! problem), and the
//! update is Gᵀ(mean_i v_i): it conflicts with no task.

use super::gram::Gram;

/// v = argmin_{v ≥ lower} vᵀMv, in bounded time at any gradient scale. The problem is solved
/// on the unit gradients: with D = diag(1/‖g_i‖), M' = DMD is the cosine matrix (unit
/// diagonal, whatever the norms) and v = Dv' with v' ≥ D⁻¹·lower, so gradients of norm 1e-7
/// and 1 are as well conditioned as two of norm 1. A zero gradient constrains nothing and
/// contributes nothing: its entry stays at its lower bound.
pub fn project_weights(m: &Gram, lower: &[f64], iters: usize) -> Vec<f64> {
    let live: Vec<usize> = (0..m.t).filter(|&i| m.at(i, i) > 0.0 && m.at(i, i).is_finite()).collect();
    let k = live.len();
    if k == 0 {
        return lower.to_vec();
    }
    let n: Vec<f64> = live.iter().map(|&i| m.norm(i)).collect();
    let cos = Gram::new(k, (0..k * k).map(|x| m.at(live[x / k], live[x % k]) / (n[x / k] * n[x % k])).collect());
    let lo: Vec<f64> = live.iter().zip(&n).map(|(&i, ni)| lower[i] * ni).collect();
    let vp = nnls_above(&cos, &lo, iters);
    let mut v = lower.to_vec();
    for (r, &i) in live.iter().enumerate() {
        v[i] = vp[r] / n[r];
    }
    v
}

/// v = argmin_{v ≥ lower} vᵀMv for a matrix with unit diagonal: with v = lower + λ this is
/// the non-negative least-squares problem min_{λ≥0} ‖Gᵀλ + Gᵀlower‖², solved by Lawson–Hanson's
/// active-set method on the Gram matrix (normal equations; a tiny ridge where a passive block
/// is singular, as for collinear gradients). At most `iters` (at least 3T) outer steps, each
/// with at most T + 1 inner ones.
fn nnls_above(m: &Gram, lower: &[f64], iters: usize) -> Vec<f64> {
    let t = m.t;
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
        let z = super::linalg::solve(&a, &rhs, k, 1e-12).unwrap_or_else(|| vec![0.0; k]);
        let mut full = vec![0.0; t];
        for (r, &i) in idx.iter().enumerate() {
            full[i] = z[r];
        }
        full
    };
    // The gradient's scale: |atb| is at most T·max|lower| on a unit-diagonal matrix.
    let tol = 1e-12 * lower.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    for _ in 0..iters.max(3 * t) {
        let w = grad(&x);
        let cand = (0..t).filter(|&i| !passive[i] && w[i] > tol).max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(j) = cand else { break };
        passive[j] = true;
        // Each inner step frees at least one passive index, so T + 1 of them always suffice.
        for _ in 0..=t {
            let z = solve_passive(&passive);
            if (0..t).filter(|&i| passive[i]).all(|i| z[i] > 0.0) {
                x = z;
                break;
            }
            let mut alpha = 1.0f64;
            for i in 0..t {
                if passive[i] && z[i] <= 0.0 && x[i] - z[i] > 0.0 {
                    alpha = alpha.min(x[i] / (x[i] - z[i]));
                }
            }
            for i in 0..t {
                x[i] += alpha * (z[i] - x[i]);
                if passive[i] && x[i] <= 1e-15 * (1.0 + x[i].abs()) {
                    passive[i] = false;
                    x[i] = 0.0;
                }
            }
            if !passive.iter().any(|&p| p) {
                break;
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
