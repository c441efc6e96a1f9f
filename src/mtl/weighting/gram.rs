//! The T×T Gram matrix M = G·Gᵀ of per-task gradients, the one thing gradient methods read
//! back from the GPU; and helpers to work with explicit gradients on the CPU.

/// A symmetric T×T matrix of gradient inner products, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gram {
    /// Number of tasks.
    pub t: usize,
    /// Entries, M`[i]``[j]` = <g_i, g_j>.
    pub m: Vec<f64>,
}

impl Gram {
    /// From row-major entries.
    pub fn new(t: usize, m: Vec<f64>) -> Gram {
        assert_eq!(m.len(), t * t, "Gram matrix of {t} tasks needs {} entries", t * t);
        Gram { t, m }
    }
    /// From explicit gradients (rows).
    pub fn of(g: &[Vec<f64>]) -> Gram {
        let t = g.len();
        let mut m = vec![0.0; t * t];
        for i in 0..t {
            for j in 0..t {
                m[i * t + j] = g[i].iter().zip(&g[j]).map(|(a, b)| a * b).sum();
            }
        }
        Gram { t, m }
    }
    /// M`[i]``[j]`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.m[i * self.t + j]
    }
    /// ‖g_t‖.
    pub fn norm(&self, i: usize) -> f64 {
        self.at(i, i).max(0.0).sqrt()
    }
    /// (M·v)`[i]`.
    pub fn mul(&self, v: &[f64]) -> Vec<f64> {
        (0..self.t).map(|i| (0..self.t).map(|j| self.at(i, j) * v[j]).sum()).collect()
    }
    /// vᵀ M v.
    pub fn quad(&self, v: &[f64]) -> f64 {
        self.mul(v).iter().zip(v).map(|(a, b)| a * b).sum()
    }
    /// Cosine between g_i and g_j (0 when either is zero).
    pub fn cosine(&self, i: usize, j: usize) -> f64 {
        let d = self.norm(i) * self.norm(j);
        if d > 0.0 {
            self.at(i, j) / d
        } else {
            0.0
        }
    }
    /// The matrix of (s_i s_j M_ij): the Gram matrix of the gradients scaled by s.
    pub fn scaled(&self, s: &[f64]) -> Gram {
        let t = self.t;
        Gram { t, m: (0..t * t).map(|k| self.m[k] * s[k / t] * s[k % t]).collect() }
    }
}

/// d = Σ_t c_t g_t for explicit gradients.
pub fn combine(g: &[Vec<f64>], c: &[f64]) -> Vec<f64> {
    let p = g.first().map_or(0, Vec::len);
    (0..p).map(|k| g.iter().zip(c).map(|(row, ct)| ct * row[k]).sum()).collect()
}
