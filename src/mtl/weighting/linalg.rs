//! Small dense linear algebra for T×T problems (T is the number of tasks).

/// Solves `a·x = b` (`a` n×n, row-major) by Gaussian elimination with partial pivoting, on
/// the system with each row divided by its largest entry, so that the answer does not depend
/// on the scale of the equations (gradients of norm 1e-8 and 1e8 alike). A pivot below 1e-13
/// of its row's scale is singular: the solve is retried once with `ridge` times the largest
/// entry of `a` added to the diagonal (0: no retry), and None if that fails too.
pub fn solve(a: &[f64], b: &[f64], n: usize, ridge: f64) -> Option<Vec<f64>> {
    let amax = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if !(amax.is_finite() && amax > 0.0) {
        return None;
    }
    for attempt in 0..2 {
        if attempt == 1 && ridge <= 0.0 {
            break;
        }
        let mut m: Vec<f64> = a.to_vec();
        let mut x = b.to_vec();
        if attempt == 1 {
            for i in 0..n {
                m[i * n + i] += ridge * amax;
            }
        }
        // Row equilibration.
        for r in 0..n {
            let s = (0..n).fold(0.0f64, |acc, k| acc.max(m[r * n + k].abs()));
            if s > 0.0 {
                (0..n).for_each(|k| m[r * n + k] /= s);
                x[r] /= s;
            }
        }
        if let Some(x) = eliminate(m, x, n) {
            return Some(x);
        }
    }
    None
}

/// Gaussian elimination with partial pivoting on an equilibrated system.
fn eliminate(mut m: Vec<f64>, mut x: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs())).unwrap_or(col);
        let p = m[piv * n + col].abs();
        if p.is_nan() || p <= 1e-13 {
            return None;
        }
        if piv != col {
            for k in 0..n {
                m.swap(col * n + k, piv * n + k);
            }
            x.swap(col, piv);
        }
        for r in col + 1..n {
            let f = m[r * n + col] / m[col * n + col];
            for k in col..n {
                m[r * n + k] -= f * m[col * n + k];
            }
            x[r] -= f * x[col];
        }
    }
    for col in (0..n).rev() {
        let mut s = x[col];
        for k in col + 1..n {
            s -= m[col * n + k] * x[k];
        }
        x[col] = s / m[col * n + col];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi rotations: (eigenvalues,
/// eigenvectors as columns of a row-major n×n matrix).
pub fn sym_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// Projects onto the probability simplex (sorting method).
pub fn project_simplex(v: &[f64]) -> Vec<f64> {
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut css = 0.0;
    let mut theta = 0.0;
    for (i, &ui) in u.iter().enumerate() {
        css += ui;
        let t = (css - 1.0) / (i + 1) as f64;
        if ui - t > 0.0 {
            theta = t;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_and_eigen_on_a_known_matrix() {
        let a = [4.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let x = solve(&a, &[1.0, 2.0, 3.0], 3, 0.0).unwrap();
        for i in 0..3 {
            let r: f64 = (0..3).map(|k| a[i * 3 + k] * x[k]).sum();
            assert!(approx::abs_diff_eq!(r, [1.0, 2.0, 3.0][i], epsilon = 1e-12));
        }
        let (vals, vecs) = sym_eigen(&a, 3);
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| a[i * 3 + k] * vecs[k * 3 + j]).sum();
                assert!(approx::abs_diff_eq!(av, vals[j] * vecs[i * 3 + j], epsilon = 1e-10));
            }
        }
        let p = project_simplex(&[0.5, 0.9, -0.2]);
        assert!(approx::abs_diff_eq!(p.iter().sum::<f64>(), 1.0, epsilon = 1e-12) && p.iter().all(|&x| x >= 0.0));
    }
}
