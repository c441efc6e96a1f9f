//! MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the convex hull of the task
//! gradients, min_{α∈Δ} ‖Σ α_t g_t‖², by Frank–Wolfe on the Gram matrix (LibMTL: best pair
//! start, 250 iterations, stop at ‖Δα‖₁ < 1e-5), then polished by projected-gradient steps
//! to the exact min-norm point (Frank–Wolfe alone converges sublinearly and can leave weight on
//! inactive tasks); gradient normalisation none, l2, loss, loss+.

use super::gram::Gram;

/// How gradients are normalised before the min-norm problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MgdaNorm {
    /// As they are.
    None,
    /// g_t / ‖g_t‖.
    L2,
    /// g_t / L_t.
    Loss,
    /// g_t / (L_t ‖g_t‖).
    #[serde(rename = "loss+")]
    LossPlus,
}

/// min over γ ∈ `[0, 1]` of ‖γ a + (1−γ) b‖² given a·a, a·b, b·b: (γ, value).
pub fn line_search(aa: f64, ab: f64, bb: f64) -> (f64, f64) {
    if ab >= aa {
        return (1.0, aa);
    }
    if ab >= bb {
        return (0.0, bb);
    }
    let g = (bb - ab) / (aa + bb - 2.0 * ab);
    (g, bb + g * (ab - bb))
}

/// The min-norm weights α on the simplex.
pub fn min_norm(m: &Gram, iters: usize, tol: f64) -> Vec<f64> {
    let t = m.t;
    if t == 1 {
        return vec![1.0];
    }
    // Best pair.
    let mut best = (f64::INFINITY, 0, 1, 0.5);
    for i in 0..t {
        for j in i + 1..t {
            let (g, v) = line_search(m.at(i, i), m.at(i, j), m.at(j, j));
            if v < best.0 {
                best = (v, i, j, g);
            }
        }
    }
    let mut a = vec![0.0; t];
    a[best.1] = best.3;
    a[best.2] = 1.0 - best.3;
    if t == 2 {
        return a;
    }
    for _ in 0..iters {
        let ma = m.mul(&a);
        let r = (0..t).min_by(|&x, &y| ma[x].total_cmp(&ma[y])).unwrap_or(0);
        let aa = m.quad(&a); // ‖Gᵀα‖²
        let ab = ma[r]; // <Gᵀα, g_r>
        let bb = m.at(r, r);
        // min over γ of ‖(1−γ) Gᵀα + γ g_r‖²
        let (g1, _) = line_search(bb, ab, aa);
        let mut next: Vec<f64> = a.iter().map(|v| (1.0 - g1) * v).collect();
        next[r] += g1;
        let change: f64 = next.iter().zip(&a).map(|(x, y)| (x - y).abs()).sum();
        a = next;
        if change < tol {
            break;
        }
    }
    polish(m, a)
}

/// Projected gradient on the simplex (step 1/L, L = trace M ≥ λ_max) from α.
fn polish(m: &Gram, mut a: Vec<f64>) -> Vec<f64> {
    let l: f64 = (0..m.t).map(|i| m.at(i, i)).sum();
    if l <= 0.0 {
        return a;
    }
    for _ in 0..20_000 {
        let g = m.mul(&a);
        let next = super::linalg::project_simplex(&a.iter().zip(&g).map(|(x, gi)| x - gi / l).collect::<Vec<_>>());
        let change: f64 = next.iter().zip(&a).map(|(x, y)| (x - y).abs()).sum();
        a = next;
        if change < 1e-13 {
            break;
        }
    }
    a
}

/// The normalisers s_t (gradients are divided by them).
pub fn normalizers(m: &Gram, losses: &[f64], norm: MgdaNorm) -> Vec<f64> {
    (0..m.t)
        .map(|i| {
            let s = match norm {
                MgdaNorm::None => 1.0,
                MgdaNorm::L2 => m.norm(i),
                MgdaNorm::Loss => losses[i],
                MgdaNorm::LossPlus => losses[i] * m.norm(i),
            };
            if s > 1e-20 && s.is_finite() {
                s
            } else {
                1.0
            }
        })
        .collect()
}

/// Coefficients of d = Σ c_t g_t as LibMTL forms them: α_t / s_t, the min-norm point of the
/// normalised gradients g_t / s_t.
pub fn mgda(m: &Gram, losses: &[f64], norm: MgdaNorm) -> Vec<f64> {
    let s = normalizers(m, losses, norm);
    let inv: Vec<f64> = s.iter().map(|v| 1.0 / v).collect();
    let a = min_norm(&m.scaled(&inv), 250, 1e-5);
    (0..m.t).map(|i| a[i] / s[i]).collect()
}
