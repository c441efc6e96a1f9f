//! A run's complete state, to continue it exactly: what `--checkpoint-every` writes and
//! `--resume` puts back.

use super::trainer::{LoopState, Trainer};
use crate::error::Result;
use crate::mtl::weighting::Weighter;

/// A trainer's complete state (see [`Trainer::snapshot`]).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Every parameter (weighting parameters included), in graph order.
    pub params: Vec<Vec<f32>>,
    /// Optimizer state tensors, each per parameter.
    pub optim_state: Vec<Vec<Vec<f32>>>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The loop.
    pub state: LoopState,
    /// The best parameters so far (by validation loss).
    pub best_params: Option<Vec<Vec<f32>>>,
    /// The weighting and its host state.
    pub weighter: Weighter,
    /// The loss weights in force (the GPU's weights buffer).
    pub weights: Vec<f32>,
    /// A gradient method's last coefficients (reported only).
    pub coefficients: Option<Vec<f32>>,
    /// The weighting's GPU state (FAMO).
    pub weighting_gpu: Option<Vec<f32>>,
}

impl Trainer {
    /// Everything needed to continue this run exactly: parameters, optimizer state, the loop
    /// position and RNG, the best parameters so far, the weighting's state. Fails with
    /// [`crate::Error::Diverged`] rather than capture a diverged state.
    pub fn snapshot(&self) -> Result<Snapshot> {
        crate::gpu::wait::block("training", self.snapshot_async())
    }

    /// [`Trainer::snapshot`] as a future: the form a browser page uses.
    pub async fn snapshot_async(&self) -> Result<Snapshot> {
        let (params, diverged) = self.graph.read_params_checked_async().await?;
        self.fail_if_diverged(diverged)?;
        Ok(Snapshot {
            params,
            optim_state: self.graph.read_optim_state_async().await?,
            steps: self.graph.steps(),
            state: self.state.clone(),
            best_params: self.best_params.clone(),
            weighter: self.weighter.clone(),
            weights: self.weights.clone(),
            coefficients: self.coefficients.clone(),
            weighting_gpu: self.graph.read_weighting_state_async().await?,
        })
    }

    /// Puts a snapshot in place; the next [`Trainer::fit`] continues where it was taken.
    pub fn restore(&mut self, snap: Snapshot) -> Result<()> {
        self.graph.write_params(&snap.params)?;
        self.graph.write_optim_state(&snap.optim_state, snap.steps)?;
        if let Some(v) = &snap.weighting_gpu {
            self.graph.write_weighting_state(v)?;
        }
        self.set_weights(&snap.weights)?;
        self.coefficients = snap.coefficients;
        self.state = snap.state;
        self.best_params = snap.best_params;
        self.weighter = snap.weighter;
        Ok(())
    }
}
