//! GradVac (Wang et al., ICLR 2021), as LibMTL implements it for the whole model: each task's
//! gradient, in random order against every other task's, is moved towards that pair's target
//! cosine φ̂_ij when it falls below it: g_i += w·g_j with
//! w = ‖g_i‖(φ̂√(1−φ²) − φ√(1−φ̂²)) / (‖g_j‖√(1−φ̂²)), φ the current cosine; the target then
//! moves to (1−β)φ̂ + βφ. Targets start at 0, so the first step is PCGrad's; as in LibMTL (and
//! unlike the paper, which updates every step) a target only moves when it was acted on. On
//! the Gram matrix like PCGrad: each moved gradient is a combination of the g_t.

use super::gram::Gram;
use crate::rng::Rng;

/// Coefficients c with d = Σ_t c_t g_t; `targets` (T×T, row-major) is the state between
/// steps.
pub fn gradvac(m: &Gram, targets: &mut [f64], beta: f64, rng: &mut Rng) -> Vec<f64> {
    let t = m.t;
    let mut c = vec![0.0; t];
    for i in 0..t {
        let mut ci = vec![0.0; t];
        ci[i] = 1.0;
        let mut order: Vec<usize> = (0..t).filter(|&j| j != i).collect();
        crate::rng::shuffle(&mut order, rng);
        for j in order {
            let (ni, nj) = (m.quad(&ci).max(0.0).sqrt(), m.norm(j));
            if ni == 0.0 || nj == 0.0 {
                continue;
            }
            let dot: f64 = (0..t).map(|s| ci[s] * m.at(s, j)).sum();
            let phi = (dot / (ni * nj)).clamp(-1.0, 1.0);
            let target = targets[i * t + j];
            let room = (1.0 - target * target).max(0.0).sqrt();
            if phi < target && room > 0.0 {
                let w = ni * (target * (1.0 - phi * phi).max(0.0).sqrt() - phi * room) / (nj * room);
                ci[j] += w;
                targets[i * t + j] = (1.0 - beta) * target + beta * phi;
            }
        }
        for s in 0..t {
            c[s] += ci[s];
        }
    }
    c
}
