//! PCGrad (Yu et al., NeurIPS 2020): for each task, project its gradient against every other
//! task's gradient it conflicts with (in random order, against the original gradients), then
//! sum. Works on the Gram matrix: each projected gradient is a combination of the g_t.

use super::gram::Gram;
use crate::rng::Rng;

/// Coefficients c with d = Σ_t c_t g_t, and the rows C (C`[i]` = g_i^PC in the basis of g).
pub fn pcgrad(m: &Gram, rng: &mut Rng) -> (Vec<f64>, Vec<Vec<f64>>) {
    let t = m.t;
    let mut rows = Vec::with_capacity(t);
    for i in 0..t {
        let mut ci = vec![0.0; t];
        ci[i] = 1.0;
        let mut order: Vec<usize> = (0..t).filter(|&j| j != i).collect();
        crate::rng::shuffle(&mut order, rng);
        for j in order {
            let dot: f64 = (0..t).map(|s| ci[s] * m.at(s, j)).sum();
            let nj = m.at(j, j);
            if dot < 0.0 && nj > 0.0 {
                ci[j] -= dot / nj;
            }
        }
        rows.push(ci);
    }
    let c = (0..t).map(|s| rows.iter().map(|r| r[s]).sum()).collect();
    (c, rows)
}
