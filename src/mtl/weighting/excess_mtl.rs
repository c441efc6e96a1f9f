//! ExcessMTL (He et al., ICML 2024), as LibMTL implements it: loss weights moved by each task's
//! excess-risk estimate, from the gradients scaled AdaGrad-style by their running sums of
//! squares (kept on the GPU beside the per-task gradients; params target only).

/// ExcessMTL's state (LibMTL's `ExcessMTL`): the loss weights and each task's first statistic.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExcessState {
    /// Current loss weights (Σ = T).
    pub weights: Vec<f64>,
    /// Each task's first positive statistic, None until it has one.
    pub initial: Vec<Option<f64>>,
}

impl ExcessState {
    /// Weights 1, no statistic yet.
    pub fn new(t: usize) -> Self {
        ExcessState { weights: vec![1.0; t], initial: vec![None; t] }
    }
}

/// ExcessMTL (He et al., ICML 2024, as LibMTL): from each task's excess-risk estimate
/// w_t = Σ_k g_tk²/√(A_tk + 1e-7) (A the running sum of squared gradients, computed on the
/// GPU), the weights move as λ_t ← λ_t·exp(step_size·w_t/w_t⁽⁰⁾), then Σλ = T. The first step
/// only records w⁽⁰⁾ (LibMTL). A task whose statistic is 0 in its first steps (no labels in the
/// batch) records its w⁽⁰⁾ at its first positive one and keeps its weight until then, where
/// LibMTL would divide by zero. The weights apply to the shared gradient and to the heads.
pub fn excess_mtl(state: &mut ExcessState, w: &[f64], step_size: f64) -> Vec<f64> {
    let t = w.len();
    if state.weights.len() != t {
        *state = ExcessState::new(t);
    }
    let first = state.initial.iter().all(Option::is_none);
    for ((weight, initial), &wi) in state.weights.iter_mut().zip(&mut state.initial).zip(w) {
        match *initial {
            Some(w0) if !first => *weight *= (step_size * wi / w0).exp(),
            Some(_) => {}
            None if wi > 0.0 => *initial = Some(wi),
            None => {}
        }
    }
    let s: f64 = state.weights.iter().sum();
    if s > 0.0 && s.is_finite() {
        for x in &mut state.weights {
            *x *= t as f64 / s;
        }
    }
    state.weights.clone()
}
