//! The TOML config, read with unknown keys refused and validated into typed settings; every
//! error names the file and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod toml_errors;
mod validate;
pub use validate::MODEL_KEY_OWNERS;

use crate::error::{Error, Result};
use crate::ir::Activation;
use crate::mtl::weighting::{Method, Target};
use crate::mtl::TaskDef;
use crate::train::TrainSettings;

/// `[data]`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// One CSV file, split by `split`.
    pub path: Option<String>,
    /// A built-in dataset instead of a file: energy, parkinsons, digits, multidigits, mmoe.
    pub dataset: Option<String>,
    /// Explicit split files.
    pub train: Option<String>,
    /// Validation file.
    pub val: Option<String>,
    /// Test file.
    pub test: Option<String>,
    /// Train/val/test fractions.
    pub split: Option<[f64; 3]>,
    /// Rows sharing this column's value stay in one split.
    pub group: Option<String>,
    /// Feature columns (default: all that are no target, not ignored, not the group).
    pub features: Option<Vec<String>>,
    /// Columns to leave out.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// z-score the features with the training rows' statistics.
    pub standardize: Option<bool>,
    /// z-score regression targets with the training rows' statistics (default true); with
    /// false, losses, metrics and predictions are on the raw targets.
    pub standardize_targets: Option<bool>,
    /// Correlation of the two MMoE synthetic tasks (dataset = "mmoe").
    pub correlation: Option<f64>,
    /// Rows of a generated dataset (mmoe, multidigits pairs per image).
    pub rows: Option<usize>,
    /// Columns read as categories even where every cell is a number (ids, codes); a column
    /// with a cell that is not a number is categorical anyway.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// Width of each categorical column's embedding: one number for all, or a table of
    /// column = width (the others by the default rule, [`crate::data::default_embedding_dim`]).
    pub embedding_dim: Option<EmbeddingDim>,
    /// Empty numeric feature cells: "error" (default) or "mean" (the training mean, with a
    /// "was missing" feature).
    pub impute: Option<String>,
}

/// `[data] embedding_dim`: one width, or one per column.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(untagged)]
pub enum EmbeddingDim {
    /// Every categorical column.
    All(usize),
    /// By column.
    Per(std::collections::BTreeMap<String, usize>),
}

/// `[[task]]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// Unique name.
    pub name: String,
    /// CSV column (default: the name).
    pub target: Option<String>,
    /// regression | binary | multiclass.
    pub kind: String,
    /// Loss (default by kind).
    pub loss: Option<String>,
    /// Classes (multiclass; default: the number of labels).
    pub classes: Option<usize>,
    /// Text labels (binary: the 0 and the 1; multiclass: class k's at k).
    pub labels: Option<Vec<String>>,
    /// A binary task whose probability is the product of two earlier binary tasks' (ESMM).
    pub product_of: Option<Vec<String>>,
    /// false: the labels only measure the task; it learns through the products using it.
    pub own_loss: Option<bool>,
    /// Static weight.
    pub weight: Option<f32>,
    /// Huber's delta.
    pub delta: Option<f32>,
}

/// `[model]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Architecture: hps (hard parameter sharing), mmoe or omoe.
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Trunk hidden sizes (hps; default [256, 256]).
    pub trunk: Option<Vec<usize>>,
    /// Number of experts (mmoe, omoe; default 8).
    pub experts: Option<usize>,
    /// Hidden sizes of each expert (mmoe, omoe, cgc, ple; default [64, 32]).
    pub expert: Option<Vec<usize>>,
    /// Shared experts per level (cgc, ple; default 2).
    pub shared_experts: Option<usize>,
    /// Each task's own experts per level (cgc, ple; default 1).
    pub task_experts: Option<usize>,
    /// Levels (ple; default 2).
    pub levels: Option<usize>,
    /// Experts each gate selects (dselect_k; default 2).
    pub k: Option<usize>,
    /// Head hidden sizes.
    #[serde(default)]
    pub head: Vec<usize>,
    /// Activation name.
    #[serde(default = "default_activation")]
    pub activation: String,
}

fn default_arch() -> String {
    "hps".into()
}
fn default_activation() -> String {
    "relu".into()
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            arch: default_arch(),
            trunk: None,
            experts: None,
            expert: None,
            shared_experts: None,
            task_experts: None,
            levels: None,
            k: None,
            head: vec![],
            activation: default_activation(),
        }
    }
}

/// `[train]`.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// sgd | adam | adamw.
    pub optimizer: Option<String>,
    /// Learning rate.
    pub lr: Option<f32>,
    /// SGD momentum.
    pub momentum: Option<f32>,
    /// SGD Nesterov.
    pub nesterov: Option<bool>,
    /// Adam betas.
    pub betas: Option<[f32; 2]>,
    /// Adam eps.
    pub eps: Option<f32>,
    /// Weight decay.
    pub weight_decay: Option<f32>,
    /// Rows per step.
    pub batch_size: Option<usize>,
    /// Epochs.
    pub epochs: Option<usize>,
    /// Exact steps.
    pub steps: Option<usize>,
    /// Shuffle.
    pub shuffle: Option<bool>,
    /// Seed.
    pub seed: Option<u64>,
    /// Early-stopping patience (0: off).
    pub patience: Option<usize>,
    /// Clip the norm of all gradients before each update.
    pub max_grad_norm: Option<f32>,
    /// Parameters kept fixed: "trunk", task names, or parameter-name prefixes.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Measure TAG's lookahead affinity every this many steps (0 or absent: never); the
    /// JSONL log then carries it.
    pub affinity_every: Option<usize>,
    /// Train one model per group of tasks (each task in exactly one group) and report the
    /// grouping's Δm% against all-in-one and single-task training.
    pub groups: Option<Vec<Vec<String>>>,
}

/// `[weighting]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeightingSection {
    /// A name from [`crate::mtl::weighting::registry`].
    #[serde(default = "default_method")]
    pub method: String,
    /// Gradient methods: "params" (LibMTL's default) or "representation".
    pub target: Option<String>,
    /// dwa: temperature (2).
    pub temperature: Option<f64>,
    /// gradnorm: alpha (1.5); fairgrad: alpha (1.0).
    pub alpha: Option<f64>,
    /// cagrad: c (0.5).
    pub c: Option<f64>,
    /// cagrad: rescale (1).
    pub rescale: Option<u8>,
    /// mgda: gradient normalisation none | l2 | loss | loss+.
    pub norm: Option<String>,
    /// nash_mtl: solver iterations (20).
    pub iters: Option<usize>,
    /// nash_mtl: update norm clip (1.0).
    pub max_norm: Option<f64>,
    /// famo: learning rate of the task logits (0.025).
    pub lr: Option<f32>,
    /// famo: their weight decay (0.001).
    pub weight_decay: Option<f32>,
    /// gradvac: the targets' moving-average rate β (0.5); db_mtl (0.9) and moco (0.5): the
    /// gradients' moving-average rate.
    pub beta: Option<f64>,
    /// db_mtl (0) and moco (0.5): the decay σ of β, β/step^σ.
    pub beta_sigma: Option<f64>,
    /// moco: the rate γ of λ (0.1).
    pub gamma: Option<f64>,
    /// moco: the decay σ of γ (0.5).
    pub gamma_sigma: Option<f64>,
    /// moco: ℓ2 regularisation ρ of λ's update (0).
    pub rho: Option<f64>,
    /// excess_mtl: LibMTL's robust_step_size (0.01).
    pub step_size: Option<f64>,
    /// graddrop: the share of a dropped gradient kept (0).
    pub leak: Option<f64>,
    /// stch: smoothing μ (1.0).
    pub mu: Option<f32>,
    /// stch: epochs of log losses before it (4).
    pub warmup_epochs: Option<usize>,
    /// Methods on the Gram matrix: "none" (default) or "log", the gradients of log L_t.
    pub loss_transform: Option<String>,
}

fn default_method() -> String {
    "ew".into()
}

impl Default for WeightingSection {
    fn default() -> Self {
        WeightingSection {
            method: default_method(),
            target: None,
            temperature: None,
            alpha: None,
            loss_transform: None,
            beta: None,
            beta_sigma: None,
            gamma: None,
            gamma_sigma: None,
            rho: None,
            step_size: None,
            leak: None,
            mu: None,
            warmup_epochs: None,
            c: None,
            rescale: None,
            norm: None,
            iters: None,
            max_norm: None,
            lr: None,
            weight_decay: None,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[data]`.
    #[serde(default)]
    pub data: DataSection,
    /// `[[task]]` tables.
    #[serde(default)]
    pub task: Vec<TaskSection>,
    /// `[model]`.
    #[serde(default)]
    pub model: ModelSection,
    /// `[train]`.
    #[serde(default)]
    pub train: TrainSection,
    /// `[weighting]`.
    #[serde(default)]
    pub weighting: WeightingSection,
}

/// A validated config.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Config {
    /// The file (for messages), or `<built-in NAME>`.
    pub file: String,
    /// The folder relative paths are resolved against.
    pub base: PathBuf,
    /// The raw sections (data is interpreted by [`crate::experiment`]).
    pub raw: ConfigFile,
    /// Tasks.
    pub tasks: Vec<TaskDef>,
    /// The architecture.
    pub arch: crate::nn::Arch,
    /// Experts (mmoe, omoe).
    pub experts: usize,
    /// Each expert's hidden sizes (mmoe, omoe, cgc, ple).
    pub expert: Vec<usize>,
    /// Shared experts per level (cgc, ple).
    pub shared_experts: usize,
    /// Each task's experts per level (cgc, ple).
    pub task_experts: usize,
    /// Levels (ple; 1 for cgc).
    pub levels: usize,
    /// Experts each gate selects (dselect_k).
    pub k: usize,
    /// Trunk sizes (hps).
    pub trunk: Vec<usize>,
    /// Head sizes.
    pub head: Vec<usize>,
    /// Activation.
    pub activation: Activation,
    /// Training settings.
    pub train: TrainSettings,
    /// Weighting method.
    pub weighting: Method,
    /// Where gradient methods take gradients.
    pub target: Target,
    /// Gradient methods combine the gradients of log L_t (`loss_transform = "log"`).
    pub log_losses: bool,
    /// Standardise features.
    pub standardize: bool,
    /// Standardise regression targets.
    pub standardize_targets: bool,
    /// `[train] groups` as task indices (empty: no grouping).
    pub groups: Vec<Vec<usize>>,
}

pub(crate) fn cfg_err(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config { file: file.to_string(), key: key.into(), message: message.into() }
}

/// A weighting method and its target from a `[weighting]` section alone, checked as in a
/// config file (the Python package's `hydra.weighting.coefficients`).
pub fn weighting_from_section(w: &WeightingSection) -> Result<(crate::mtl::weighting::Method, Target)> {
    validate::weighting_section(w).map_err(|(key, message)| cfg_err("[weighting]", key, message))
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&path.display().to_string(), &text, base)
    }

    /// Parses and validates config text; `file` names it in messages.
    pub fn parse(file: &str, text: &str, base: PathBuf) -> Result<Config> {
        let raw: ConfigFile = toml::from_str(text).map_err(|e| {
            let (key, message) = toml_errors::describe(text, &e);
            cfg_err(file, key, message)
        })?;
        validate::validate(file, raw, base, true)
    }

    /// Parses and validates config text whose data come as arrays (the Python package): its
    /// `[data]` section may give no source.
    pub fn parse_for_arrays(file: &str, text: &str, base: PathBuf) -> Result<Config> {
        let raw: ConfigFile = toml::from_str(text).map_err(|e| {
            let (key, message) = toml_errors::describe(text, &e);
            cfg_err(file, key, message)
        })?;
        validate::validate(file, raw, base, false)
    }

    /// The weighter this config describes.
    pub fn weighter(&self) -> crate::mtl::weighting::Weighter {
        let w: Vec<f64> = self.tasks.iter().map(|t| f64::from(t.weight)).collect();
        crate::mtl::weighting::Weighter::new(self.weighting, self.target, &w, self.train.seed)
            .with_log_losses(self.log_losses)
    }
}
