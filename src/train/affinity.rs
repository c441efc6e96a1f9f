//! The trainer's affinity probes (TAG's lookahead, [`crate::mtl::affinity`]): every
//! `affinity_every` steps, on the step's batch before the step, added to the run's running means.

use super::trainer::Trainer;
use crate::error::Result;
use crate::mtl::affinity::Affinity;

impl Trainer {
    /// TAG's lookahead affinity on the fed batch, added to the run's (nothing else changes).
    pub(super) async fn probe_affinity(&mut self) -> Result<()> {
        self.graph.affinity_probe()?;
        let r = self.graph.read_affinity_async().await?;
        let t = self.tasks.len();
        let w: Vec<f64> = r.weights.iter().map(|&v| f64::from(v)).collect();
        // The rows carry the loss weights: ⟨g_i, g_j⟩ = M_ij / (w_i w_j).
        let gram: Vec<f64> = (0..t * t)
            .map(|k| {
                let ww = w[k / t] * w[k % t];
                if ww != 0.0 {
                    f64::from(r.gram[k]) / ww
                } else {
                    0.0
                }
            })
            .collect();
        let before: Vec<f64> = r.before.iter().map(|&v| f64::from(v)).collect();
        let after: Vec<Vec<f64>> = r.after.iter().map(|row| row.iter().map(|&v| f64::from(v)).collect()).collect();
        let lr = f64::from(self.settings.optimizer.lr());
        self.state.affinity.get_or_insert_with(|| Affinity::new(t)).add(&before, &after, &gram, lr);
        Ok(())
    }

    /// The lookahead affinity measured so far (with `affinity_every`).
    pub fn affinity(&self) -> Option<&Affinity> {
        self.state.affinity.as_ref()
    }
}
