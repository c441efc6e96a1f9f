//! GradNorm (Chen et al., ICML 2018) as LibMTL implements it: loss scales T·softmax(w) with w
//! learned by the model's optimizer on Σ_t |G_t − Ḡ·r_t^α|, G_t the norm of task t's scaled
//! gradient of the shared parameters, Ḡ their mean, r_t the task's relative inverse training
//! rate (L_t/L_t(0) over its mean), the target Ḡ·r_t^α held constant. The first epoch trains
//! with equal weights and gives L(0), each task's mean batch loss over it.

use crate::optim::Optimizer;

/// GradNorm's state across steps.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GradNormState {
    /// The loss scales of the last step (Σ = T).
    #[serde(default)]
    pub w: Vec<f64>,
    /// The learned logits w (start at 1, as LibMTL's `loss_scale`).
    #[serde(default)]
    logits: Vec<f64>,
    /// The optimizer's state for the logits and its step count.
    #[serde(default)]
    m: Vec<f64>,
    #[serde(default)]
    v: Vec<f64>,
    #[serde(default)]
    step: u64,
    /// The first epoch's loss sums and batch count, then L(0).
    #[serde(default)]
    sums: Vec<f64>,
    #[serde(default)]
    batches: u64,
    #[serde(default)]
    l0: Option<Vec<f64>>,
}

impl GradNormState {
    /// Equal weights, in the first epoch.
    pub fn new(t: usize) -> Self {
        GradNormState {
            w: vec![1.0; t],
            logits: vec![1.0; t],
            m: vec![0.0; t],
            v: vec![0.0; t],
            step: 0,
            sums: vec![0.0; t],
            batches: 0,
            l0: None,
        }
    }

    /// This step's loss scales from the per-task gradient norms n_t (of unweighted gradients)
    /// and losses; after the first epoch, the logits then take one step of `opt` (the model's
    /// optimizer, as LibMTL's logits are the model's parameters) along ∂/∂w Σ_t |ls_t·n_t − C_t|.
    pub fn scales(&mut self, norms: &[f64], losses: &[f64], alpha: f64, opt: &Optimizer) -> Vec<f64> {
        let t = norms.len();
        if self.logits.len() != t {
            *self = GradNormState::new(t);
        }
        let Some(l0) = self.l0.clone() else {
            for (s, l) in self.sums.iter_mut().zip(losses) {
                *s += l;
            }
            self.batches += 1;
            self.w = vec![1.0; t];
            return self.w.clone();
        };
        let mx = self.logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = self.logits.iter().map(|x| (x - mx).exp()).collect();
        let z: f64 = e.iter().sum();
        let s: Vec<f64> = e.iter().map(|x| x / z).collect();
        let ls: Vec<f64> = s.iter().map(|x| t as f64 * x).collect();
        let g: Vec<f64> = (0..t).map(|i| ls[i] * norms[i]).collect();
        let gbar = g.iter().sum::<f64>() / t as f64;
        let rel: Vec<f64> = (0..t).map(|i| losses[i] / l0[i]).collect();
        let mean = rel.iter().sum::<f64>() / t as f64;
        // ∂|G_t − C_t|/∂w_k = sign(G_t − C_t)·n_t·T·s_t·(δ_tk − s_k).
        let dg: Vec<f64> = (0..t).map(|i| (g[i] - gbar * (rel[i] / mean).powf(alpha)).signum() * norms[i]).collect();
        let inner: f64 = (0..t).map(|i| dg[i] * t as f64 * s[i]).sum();
        let grad: Vec<f64> = (0..t).map(|k| t as f64 * s[k] * dg[k] - s[k] * inner).collect();
        self.step += 1;
        opt.cpu_step(self.step, &mut self.logits, &grad, &mut self.m, &mut self.v);
        self.w = ls;
        self.w.clone()
    }

    /// The end of an epoch: the first one gives L(0), each task's mean batch loss over it.
    pub fn end_epoch(&mut self) {
        if self.l0.is_none() && self.batches > 0 {
            let n = self.batches as f64;
            self.l0 = Some(self.sums.iter().map(|s| (s / n).max(1e-20)).collect());
        }
    }
}
