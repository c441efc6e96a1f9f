//! The names inside a Hydra checkpoint, in one place: tensors, training-state tensors and
//! metadata keys. Model tensors keep PyTorch's names and layouts (`trunk.{i}.weight`
//! `[out, in]`, `heads.{task}.{j}.bias`, …); everything else a run needs to continue sits
//! under the prefixes below, which `--init` never takes for model parameters.

/// Metadata `format` value of the checkpoints this version writes.
pub const FORMAT: &str = "hydra-mtl 1";

/// Metadata keys.
pub mod meta {
    /// The checkpoint format ([`super::FORMAT`]).
    pub const FORMAT: &str = "format";
    /// The config's raw sections (JSON).
    pub const CONFIG: &str = "config";
    /// The model spec (JSON).
    pub const MODEL: &str = "model";
    /// The task definitions (JSON).
    pub const TASKS: &str = "tasks";
    /// Feature and target scaling (JSON).
    pub const SCALING: &str = "scaling";
    /// Feature names in model input order (JSON).
    pub const FEATURES: &str = "features";
    /// How raw columns become the model's inputs: vocabularies, imputation (JSON).
    pub const ENCODING: &str = "encoding";
    /// Optimizer steps taken.
    pub const STEP: &str = "step";
    /// The optimizer (JSON).
    pub const OPTIMIZER: &str = "optimizer";
    /// The training loop's state (JSON).
    pub const LOOP: &str = "loop";
    /// The weighting method and its host state (JSON).
    pub const WEIGHTER: &str = "weighter";
    /// The loss weights in force (JSON).
    pub const WEIGHTS: &str = "weights";
    /// A gradient method's last coefficients (JSON).
    pub const COEFFICIENTS: &str = "coefficients";
}

/// Uncertainty weighting's learned log-variances, one per task (a model parameter of a `uw`
/// run, trained by its optimizer).
pub const UW_LOG_VAR: &str = "weighting.log_var";
/// IMTL-L's learned log loss scales, one per task (a model parameter of an `imtl` run).
pub const IMTL_LOG_SCALE: &str = "weighting.log_scale";
/// A weighting's state kept on the GPU between steps (FAMO's).
pub const WEIGHTING_STATE: &str = "weighting.state";
/// Prefixes of tensors that belong to a run's state rather than to the model.
pub const STATE_PREFIXES: [&str; 3] = ["optim.", "weighting.", "best."];

/// Optimizer state tensor `state` (e.g. `exp_avg`) of parameter `param`.
pub fn optim_state(state: &str, param: &str) -> String {
    format!("optim.{state}.{param}")
}

/// The best parameters so far (by validation loss) of parameter `param`.
pub fn best(param: &str) -> String {
    format!("best.{param}")
}

/// The names of an optimizer's state tensors, per state buffer (PyTorch's).
pub fn optim_state_names(opt: &crate::optim::Optimizer) -> &'static [&'static str] {
    match opt {
        crate::optim::Optimizer::Sgd { momentum, .. } if *momentum != 0.0 => &["momentum_buffer"],
        crate::optim::Optimizer::Sgd { .. } => &[],
        _ => &["exp_avg", "exp_avg_sq"],
    }
}
