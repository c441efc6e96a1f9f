//! The TOML config, read with unknown keys refused and validated into typed settings; every
//! error names the file and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::ir::{Activation, LossKind};
use crate::mtl::weighting::{registry, Method, MgdaNorm, Target};
use crate::mtl::{TaskDef, TaskKind};
use crate::optim::Optimizer;
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
    /// Correlation of the two MMoE synthetic tasks (dataset = "mmoe").
    pub correlation: Option<f64>,
    /// Rows of a generated dataset (mmoe, multidigits pairs per image).
    pub rows: Option<usize>,
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
    /// Classes (multiclass).
    pub classes: Option<usize>,
    /// Static weight.
    pub weight: Option<f32>,
    /// Huber's delta.
    pub delta: Option<f32>,
}

/// `[model]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Architecture: hps (hard parameter sharing).
    #[serde(default = "default_arch")]
    pub arch: String,
    /// Trunk hidden sizes.
    #[serde(default = "default_trunk")]
    pub trunk: Vec<usize>,
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
fn default_trunk() -> Vec<usize> {
    vec![256, 256]
}
fn default_activation() -> String {
    "relu".into()
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection { arch: default_arch(), trunk: default_trunk(), head: vec![], activation: default_activation() }
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
    /// gradnorm: alpha (1.5).
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
    /// Trunk sizes.
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
    /// Standardise features.
    pub standardize: bool,
}

fn cfg_err(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config { file: file.to_string(), key: key.into(), message: message.into() }
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
            let key = e.span().map(|s| {
                let upto = &text[..s.start.min(text.len())];
                let line = upto.matches('\n').count() + 1;
                let col = upto.len() - upto.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {col}")
            });
            cfg_err(file, key.unwrap_or_else(|| "?".into()), e.message().to_string())
        })?;
        Self::validate(file, raw, base)
    }

    fn validate(file: &str, raw: ConfigFile, base: PathBuf) -> Result<Config> {
        let e = |key: &str, msg: String| cfg_err(file, key, msg);
        // Data source.
        let d = &raw.data;
        let sources = usize::from(d.path.is_some()) + usize::from(d.dataset.is_some()) + usize::from(d.train.is_some());
        if sources != 1 {
            return Err(e("data", "give exactly one of path, dataset, or train (+ val, test)".into()));
        }
        if let Some(split) = d.split {
            let sum: f64 = split.iter().sum();
            if split.iter().any(|f| !(0.0..=1.0).contains(f)) || (sum - 1.0).abs() > 1e-6 {
                return Err(e(
                    "data.split",
                    format!("{split:?}: three fractions in [0, 1] that sum to 1 (they sum to {sum})"),
                ));
            }
            if split[0] == 0.0 {
                return Err(e("data.split", "the training fraction must be above 0".into()));
            }
        }
        if let Some(p) = d.correlation {
            if !(-1.0..=1.0).contains(&p) {
                return Err(e("data.correlation", format!("{p} (must be in [-1, 1])")));
            }
        }
        // Tasks.
        let mut tasks = Vec::new();
        for (i, t) in raw.task.iter().enumerate() {
            let key = |k: &str| format!("task[{i}].{k}");
            if t.name.is_empty() {
                return Err(e(&key("name"), "must not be empty".into()));
            }
            if raw.task[..i].iter().any(|o| o.name == t.name) {
                return Err(e(&key("name"), format!("duplicate task name {:?}", t.name)));
            }
            let kind = match t.kind.as_str() {
                "regression" => TaskKind::Regression,
                "binary" => TaskKind::Binary,
                "multiclass" => TaskKind::Multiclass,
                other => return Err(e(&key("kind"), format!("{other:?} (expected regression, binary or multiclass)"))),
            };
            if t.classes.is_some() && kind != TaskKind::Multiclass {
                return Err(e(&key("classes"), "only multiclass tasks have classes".into()));
            }
            let loss = match (kind, t.loss.as_deref()) {
                (TaskKind::Regression, None | Some("mse")) => LossKind::Mse,
                (TaskKind::Regression, Some("l1")) => LossKind::L1,
                (TaskKind::Regression, Some("huber")) => LossKind::Huber { delta: t.delta.unwrap_or(1.0) },
                (TaskKind::Binary, None | Some("bce")) => LossKind::Bce,
                (TaskKind::Multiclass, None | Some("cross_entropy")) => {
                    let classes =
                        t.classes.ok_or_else(|| e(&key("classes"), "multiclass tasks need classes".into()))?;
                    if classes < 2 {
                        return Err(e(&key("classes"), format!("{classes} (at least 2)")));
                    }
                    LossKind::CrossEntropy { classes }
                }
                (k, Some(l)) => {
                    let allowed = match k {
                        TaskKind::Regression => "mse, l1 or huber",
                        TaskKind::Binary => "bce",
                        TaskKind::Multiclass => "cross_entropy",
                    };
                    return Err(e(&key("loss"), format!("{l:?} does not fit a {} task (expected {allowed})", t.kind)));
                }
            };
            if let (Some(dl), LossKind::Huber { .. }) = (t.delta, loss) {
                if !(dl.is_finite() && dl > 0.0) {
                    return Err(e(&key("delta"), format!("{dl} (must be > 0)")));
                }
            } else if t.delta.is_some() {
                return Err(e(&key("delta"), "only the huber loss has a delta".into()));
            }
            let weight = t.weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(e(&key("weight"), format!("{weight} (must be finite and >= 0)")));
            }
            tasks.push(TaskDef {
                name: t.name.clone(),
                target: t.target.clone().unwrap_or_else(|| t.name.clone()),
                kind,
                loss,
                weight,
            });
        }
        if tasks.is_empty() {
            return Err(e("task", "at least one [[task]] is needed".into()));
        }
        // Model.
        let m = &raw.model;
        if m.arch != "hps" {
            return Err(e("model.arch", format!("{:?} (expected hps)", m.arch)));
        }
        if let Some(i) = m.trunk.iter().position(|&s| s == 0 || s > 65_536) {
            return Err(e(&format!("model.trunk[{i}]"), format!("{} (a layer needs 1 to 65536 units)", m.trunk[i])));
        }
        if let Some(i) = m.head.iter().position(|&s| s == 0 || s > 65_536) {
            return Err(e(&format!("model.head[{i}]"), format!("{} (a layer needs 1 to 65536 units)", m.head[i])));
        }
        let activation = Activation::parse(&m.activation).map_err(|err| e("model.activation", err.to_string()))?;
        // Training.
        let t = &raw.train;
        let lr = t.lr.unwrap_or(1e-3);
        let wd = t.weight_decay;
        let optimizer = match t.optimizer.as_deref().unwrap_or("adam") {
            "sgd" => Optimizer::Sgd {
                lr,
                momentum: t.momentum.unwrap_or(0.0),
                nesterov: t.nesterov.unwrap_or(false),
                weight_decay: wd.unwrap_or(0.0),
            },
            name @ ("adam" | "adamw") => {
                if t.momentum.is_some() || t.nesterov.is_some() {
                    return Err(e("train.momentum", format!("{name} has no momentum or nesterov (use betas)")));
                }
                let [beta1, beta2] = t.betas.unwrap_or([0.9, 0.999]);
                let eps = t.eps.unwrap_or(1e-8);
                if name == "adam" {
                    Optimizer::Adam { lr, beta1, beta2, eps, weight_decay: wd.unwrap_or(0.0) }
                } else {
                    Optimizer::AdamW { lr, beta1, beta2, eps, weight_decay: wd.unwrap_or(0.01) }
                }
            }
            other => return Err(e("train.optimizer", format!("{other:?} (expected sgd, adam or adamw)"))),
        };
        optimizer.check().map_err(|err| e("train", err.to_string()))?;
        let batch_size = t.batch_size.unwrap_or(256);
        if batch_size == 0 {
            return Err(e("train.batch_size", "must be at least 1".into()));
        }
        if t.epochs.is_some() && t.steps.is_some() {
            return Err(e("train.steps", "give epochs or steps, not both".into()));
        }
        if t.epochs == Some(0) || t.steps == Some(0) {
            return Err(e("train", "epochs and steps must be at least 1".into()));
        }
        let train = TrainSettings {
            optimizer,
            batch_size,
            epochs: t.epochs.unwrap_or(100),
            steps: t.steps,
            shuffle: t.shuffle.unwrap_or(true),
            seed: t.seed.unwrap_or(0),
            patience: t.patience.unwrap_or(20),
            max_grad_norm: t.max_grad_norm,
            freeze: t.freeze.clone(),
        };
        if let Some(m) = t.max_grad_norm {
            if !(m > 0.0 && m.is_finite()) {
                return Err(e("train.max_grad_norm", format!("{m} (must be > 0)")));
            }
        }
        let (weighting, target) = Self::weighting(&raw.weighting).map_err(|(k, m)| e(&k, m))?;
        Ok(Config {
            file: file.to_string(),
            base,
            tasks,
            trunk: raw.model.trunk.clone(),
            head: raw.model.head.clone(),
            activation,
            train,
            weighting,
            target,
            standardize: raw.data.standardize.unwrap_or(true),
            raw,
        })
    }

    fn weighting(w: &WeightingSection) -> std::result::Result<(Method, Target), (String, String)> {
        let err = |k: &str, m: String| (format!("weighting.{k}"), m);
        let mut method = Method::by_name(&w.method).map_err(|e| err("method", e.to_string()))?;
        let entry = method.entry();
        // Each parameter belongs to the methods whose registry entry lists it.
        let given: [(&str, bool); 9] = [
            ("temperature", w.temperature.is_some()),
            ("alpha", w.alpha.is_some()),
            ("c", w.c.is_some()),
            ("rescale", w.rescale.is_some()),
            ("norm", w.norm.is_some()),
            ("iters", w.iters.is_some()),
            ("max_norm", w.max_norm.is_some()),
            ("lr", w.lr.is_some()),
            ("weight_decay", w.weight_decay.is_some()),
        ];
        for (key, is_given) in given {
            if is_given && !entry.params.contains(&key) {
                let owners: Vec<&str> =
                    registry::REGISTRY.iter().filter(|e| e.params.contains(&key)).map(|e| e.name).collect();
                return Err(err(key, format!("is a parameter of {}, not of {}", owners.join(", "), entry.name)));
            }
        }
        if w.target.is_some() && entry.targets.is_empty() {
            return Err(err("target", format!("is a parameter of a gradient method, not of {}", entry.name)));
        }
        // Defaults are the registry's; only what the config gives replaces them.
        let positive =
            |k: &str, v: f64| if v > 0.0 && v.is_finite() { Ok(v) } else { Err(err(k, format!("{v} (must be > 0)"))) };
        let non_negative = |k: &str, v: f64, note: &str| {
            if v >= 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(err(k, format!("{v} (must be >= 0{note})")))
            }
        };
        match &mut method {
            Method::Dwa { temperature } => {
                if let Some(t) = w.temperature {
                    *temperature = positive("temperature", t)?;
                }
            }
            Method::GradNorm { alpha } => {
                if let Some(a) = w.alpha {
                    *alpha = non_negative("alpha", a, "")?;
                }
            }
            Method::CaGrad { c, rescale } => {
                if let Some(cv) = w.c {
                    *c = non_negative("c", cv, "")?;
                }
                if let Some(r) = w.rescale {
                    if r > 1 {
                        return Err(err("rescale", format!("{r} (0 or 1)")));
                    }
                    *rescale = r;
                }
            }
            Method::Mgda { norm } => {
                if let Some(n) = w.norm.as_deref() {
                    *norm = match n {
                        "none" => MgdaNorm::None,
                        "l2" => MgdaNorm::L2,
                        "loss" => MgdaNorm::Loss,
                        "loss+" => MgdaNorm::LossPlus,
                        other => return Err(err("norm", format!("{other:?} (expected none, l2, loss or loss+)"))),
                    }
                }
            }
            Method::NashMtl { iters, max_norm } => {
                if let Some(i) = w.iters {
                    *iters = i.max(1);
                }
                if let Some(m) = w.max_norm {
                    *max_norm = non_negative("max_norm", m, "; 0 turns clipping off")?;
                }
            }
            Method::Famo { lr, weight_decay } => {
                if let Some(l) = w.lr {
                    *lr = positive("lr", f64::from(l))? as f32;
                }
                if let Some(wd) = w.weight_decay {
                    if !(wd >= 0.0 && wd.is_finite()) {
                        return Err(err("weight_decay", format!("{wd} (must be >= 0)")));
                    }
                    *weight_decay = wd;
                }
            }
            _ => {}
        }
        let target = match w.target.as_deref().unwrap_or("params") {
            "params" => Target::Params,
            "representation" => Target::Representation,
            other => return Err(err("target", format!("{other:?} (expected params or representation)"))),
        };
        Ok((method, target))
    }

    /// The weighter this config describes.
    pub fn weighter(&self) -> crate::mtl::weighting::Weighter {
        let w: Vec<f64> = self.tasks.iter().map(|t| f64::from(t.weight)).collect();
        crate::mtl::weighting::Weighter::new(self.weighting, self.target, &w, self.train.seed)
    }
}
