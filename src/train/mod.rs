//! Training: batches from a seeded shuffle (or file order), one recorded GPU step per batch,
//! evaluation on the validation and test splits after each epoch, early stopping on the
//! validation loss with the best parameters kept, and single-task baselines. One file per
//! job: [`trainer`] (the loop and its state), [`evaluator`] (forward passes over whole
//! splits), [`baselines`], [`freeze`].

mod affinity;
pub mod baselines;
mod distributed;
mod epoch;
pub mod evaluator;
pub mod freeze;
mod setup;
mod snapshot;
pub mod trainer;

pub use crate::data::batch::gather;
pub use crate::data::scaling::{Scaling, Splits};
pub use baselines::{single_task_baselines, single_task_baselines_async};
pub use distributed::DistCost;
pub use evaluator::{Evaluator, Params};
pub use freeze::frozen_params;
pub use snapshot::Snapshot;
pub use trainer::{LoopState, Trainer};

use crate::mtl::metrics::Metrics;
use crate::optim::Optimizer;

/// How to train.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Rows per step.
    pub batch_size: usize,
    /// Passes over the training rows (ignored when `steps` is set).
    pub epochs: usize,
    /// Exactly this many optimizer steps, when set.
    pub steps: Option<usize>,
    /// Shuffle the training rows each epoch (else: file order, last batch partial).
    pub shuffle: bool,
    /// Seed of the shuffles and of the initial parameters.
    pub seed: u64,
    /// Stop after this many evaluations without a better validation loss (0: never).
    pub patience: usize,
    /// Clip the norm of all gradients to this before each update.
    #[serde(default)]
    pub max_grad_norm: Option<f32>,
    /// Parameters kept fixed: "trunk", a task's name (its head), or any parameter-name prefix
    /// such as "heads.cooling" or "trunk.0". No update, no optimizer state.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Measure TAG's lookahead affinity every this many steps (0: never), on the step's batch
    /// before the step, with an SGD lookahead at the optimizer's learning rate.
    #[serde(default)]
    pub affinity_every: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            optimizer: Optimizer::adam(1e-3),
            batch_size: 256,
            epochs: 100,
            steps: None,
            shuffle: true,
            seed: 0,
            patience: 20,
            max_grad_norm: None,
            freeze: Vec::new(),
            affinity_every: 0,
        }
    }
}

/// One evaluation, after an epoch (or the equivalent number of steps).
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvalRecord {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Per task, training loss (a full pass over the training split).
    pub train_loss: Vec<f64>,
    /// Per task, validation loss (empty without a validation split).
    pub val_loss: Vec<f64>,
    /// Per task, validation metrics.
    pub val_metrics: Vec<Metrics>,
    /// Per task, test loss (empty without a test split).
    pub test_loss: Vec<f64>,
    /// Per task, test metrics.
    pub test_metrics: Vec<Metrics>,
    /// The task weights (loss weights, or the last gradient coefficients of a gradient method).
    pub weights: Vec<f32>,
    /// Per task, the norm of its gradient at the shared representation (one training batch).
    pub grad_norms: Vec<f64>,
    /// Pairwise cosines of those gradients, row-major T×T: a negative cosine is a conflict.
    pub grad_cosines: Vec<f64>,
    /// With `affinity_every`: the lookahead affinity Z[i→j] so far at `[i·T + j]` (empty
    /// otherwise).
    pub affinity: Vec<f64>,
}

/// What training produced.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Every evaluation.
    pub history: Vec<EvalRecord>,
    /// The epoch whose parameters were kept.
    pub best_epoch: usize,
    /// Per task, metrics on each split: `[train, val, test]` (empty maps for empty splits).
    pub metrics: Vec<[Metrics; 3]>,
    /// The kept parameters, in graph order.
    pub params: Vec<Vec<f32>>,
    /// Optimizer steps taken.
    pub steps: u64,
}

/// Runs of at least this many steps compile the larger-block forms of the step's matmuls on a
/// background thread ([`crate::runtime::GpuGraph::start_upgrades`]): at ~2 ms saved per step for each 256³
/// product under llvmpipe, against 3–5 s of compilation each. Results are the same either way.
pub const UPGRADE_AFTER_STEPS: usize = 1000;
