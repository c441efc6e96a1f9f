//! Validation of a parsed config into typed settings: each section on its own, every error
//! naming the file and the key.

use std::path::PathBuf;

use super::{cfg_err, Config, ConfigFile, DataSection, ModelSection, TaskSection, TrainSection, WeightingSection};
use crate::error::{Error, Result};
use crate::ir::{Activation, LossKind};
use crate::mtl::weighting::{registry, Method, MgdaNorm, Target};
use crate::mtl::{TaskDef, TaskKind};
use crate::nn::Arch;
use crate::optim::Optimizer;
use crate::train::TrainSettings;

/// Makes the error of a key.
type Check<'a> = dyn Fn(&str, String) -> Error + 'a;

/// Validates every section.
pub(super) fn validate(file: &str, raw: ConfigFile, base: PathBuf, needs_source: bool) -> Result<Config> {
    let e = |key: &str, msg: String| cfg_err(file, key, msg);
    data(&raw.data, needs_source, &e)?;
    let tasks = raw.task.iter().enumerate().map(|(i, t)| task(i, t, &raw.task, &e)).collect::<Result<Vec<_>>>()?;
    if let Some((c, t)) =
        raw.data.categorical.iter().find_map(|c| tasks.iter().find(|t| &t.target == c).map(|t| (c, t)))
    {
        return Err(e("data.categorical", format!("{c:?} is task {:?}'s target, so it cannot be a feature", t.name)));
    }
    if tasks.is_empty() {
        return Err(e("task", "at least one [[task]] is needed".into()));
    }
    let ModelChoice { arch, trunk, experts, expert, shared_experts, task_experts, levels, k, activation } =
        model(&raw.model, &e)?;
    let train = train(&raw.train, &e)?;
    let (weighting, target) = weighting(&raw.weighting).map_err(|(k, m)| e(&k, m))?;
    let log_losses = match raw.weighting.loss_transform.as_deref() {
        None | Some("none") => false,
        Some("log")
            if weighting.runs() == crate::mtl::weighting::Runs::GramThenHost
                && weighting.slot_state() == crate::mtl::gpu::SlotState::None =>
        {
            true
        }
        Some("log") => {
            return Err(e(
                "weighting.loss_transform",
                format!(
                    "\"log\" is for the methods on the T×T Gram matrix (db_mtl takes the log losses' gradients \
                     by itself), not {}",
                    weighting.name()
                ),
            ))
        }
        Some(other) => return Err(e("weighting.loss_transform", format!("{other:?} (expected none or log)"))),
    };
    let groups = groups(raw.train.groups.as_deref(), &tasks, &e)?;
    Ok(Config {
        file: file.to_string(),
        base,
        tasks,
        arch,
        experts,
        expert,
        shared_experts,
        task_experts,
        levels,
        k,
        trunk,
        head: raw.model.head.clone(),
        activation,
        train,
        weighting,
        target,
        log_losses,
        standardize: raw.data.standardize.unwrap_or(true),
        standardize_targets: raw.data.standardize_targets.unwrap_or(true),
        groups,
        raw,
    })
}

/// `[train] groups`: every task in exactly one group, a product task (ESMM) with its factors.
fn groups(g: Option<&[Vec<String>]>, tasks: &[TaskDef], e: &Check) -> Result<Vec<Vec<usize>>> {
    let Some(g) = g else { return Ok(Vec::new()) };
    let mut seen = vec![None; tasks.len()];
    let mut out = Vec::new();
    for (k, group) in g.iter().enumerate() {
        if group.is_empty() {
            return Err(e("train.groups", format!("group {k} is empty")));
        }
        let mut ids = Vec::new();
        for name in group {
            let i = tasks.iter().position(|t| &t.name == name).ok_or_else(|| {
                e("train.groups", format!("{name:?} in group {k} is not a task (tasks: {})", names(tasks)))
            })?;
            if let Some(other) = seen[i].replace(k) {
                return Err(e("train.groups", format!("{name:?} is in groups {other} and {k}: each task in one")));
            }
            ids.push(i);
        }
        out.push(ids);
    }
    if let Some(i) = seen.iter().position(Option::is_none) {
        return Err(e("train.groups", format!("{:?} is in no group: each task in one", tasks[i].name)));
    }
    for (i, t) in tasks.iter().enumerate() {
        for f in &t.product_of {
            let fi = tasks.iter().position(|x| &x.name == f);
            if fi.is_some_and(|fi| seen[fi] != seen[i]) {
                return Err(e("train.groups", format!("{:?} is the product of {f:?}: they share a group", t.name)));
            }
        }
    }
    Ok(out)
}

fn names(tasks: &[TaskDef]) -> String {
    tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// `[data]`: one source, sensible fractions.
fn data(d: &DataSection, needs_source: bool, e: &Check) -> Result<()> {
    let sources = usize::from(d.path.is_some()) + usize::from(d.dataset.is_some()) + usize::from(d.train.is_some());
    if sources > 1 || (needs_source && sources != 1) {
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
    if let Some(i) = d.impute.as_deref() {
        if !matches!(i, "error" | "mean") {
            return Err(e("data.impute", format!("{i:?} (expected \"error\" or \"mean\")")));
        }
    }
    match &d.embedding_dim {
        Some(super::EmbeddingDim::All(0)) => {
            return Err(e("data.embedding_dim", "0: an embedding needs at least one value per row".into()))
        }
        Some(super::EmbeddingDim::Per(m)) => {
            if let Some((c, _)) = m.iter().find(|(_, &v)| v == 0) {
                return Err(e(
                    &format!("data.embedding_dim.{c}"),
                    "0: an embedding needs at least one value per row".into(),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Task `i` of the config (`earlier`: the ones before it).
fn task(i: usize, t: &TaskSection, all: &[TaskSection], e: &Check) -> Result<TaskDef> {
    let earlier = &all[..i];
    let key = |k: &str| format!("task[{i}].{k}");
    if t.name.is_empty() {
        return Err(e(&key("name"), "must not be empty".into()));
    }
    if earlier.iter().any(|o| o.name == t.name) {
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
            let from_labels = t.labels.as_ref().map(Vec::len);
            let classes = t
                .classes
                .or(from_labels)
                .ok_or_else(|| e(&key("classes"), "multiclass tasks need classes (or labels)".into()))?;
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
    let labels = t.labels.clone().unwrap_or_default();
    let want = match kind {
        TaskKind::Regression if t.labels.is_some() => {
            return Err(e(
                &key("labels"),
                "regression targets are numbers; only binary and multiclass tasks have labels".into(),
            ))
        }
        TaskKind::Regression => 0,
        TaskKind::Binary => 2,
        TaskKind::Multiclass => loss.outputs(),
    };
    if t.labels.is_some() && labels.len() != want {
        return Err(e(&key("labels"), format!("{} labels for {want} classes", labels.len())));
    }
    if let Some(dup) = labels.iter().enumerate().find(|(k, l)| labels[..*k].contains(l)) {
        return Err(e(&key("labels"), format!("{:?} is listed twice", dup.1)));
    }
    let product_of = t.product_of.clone().unwrap_or_default();
    if t.product_of.is_some() {
        let earlier_binary = |n: &String| earlier.iter().any(|o| &o.name == n && o.kind == "binary");
        if kind != TaskKind::Binary || product_of.len() != 2 || product_of[0] == product_of[1] {
            return Err(e(&key("product_of"), "a binary task, the product of two different binary tasks".into()));
        }
        if let Some(n) = product_of.iter().find(|n| !earlier_binary(n)) {
            return Err(e(&key("product_of"), format!("{n:?} is not a binary task listed before this one")));
        }
    }
    let factor = all.iter().any(|o| o.product_of.as_ref().is_some_and(|p| p.contains(&t.name)));
    let own_loss = t.own_loss.unwrap_or(true);
    if !own_loss && !factor {
        return Err(e(
            &key("own_loss"),
            "false only for a factor of a product task (product_of), which trains it".into(),
        ));
    }
    let target = t.target.clone().unwrap_or_else(|| t.name.clone());
    Ok(TaskDef { name: t.name.clone(), target, kind, loss, weight, labels, product_of, own_loss })
}

/// What `[model]` says.
struct ModelChoice {
    arch: Arch,
    trunk: Vec<usize>,
    experts: usize,
    expert: Vec<usize>,
    shared_experts: usize,
    task_experts: usize,
    levels: usize,
    k: usize,
    activation: Activation,
}

/// The `[model]` keys that only some architectures take, with those architectures (a config
/// giving one to another architecture is refused by name).
pub const MODEL_KEY_OWNERS: [(&str, &[Arch]); 7] = {
    use Arch::*;
    [
        ("trunk", &[Hps, CrossStitch]),
        ("experts", &[Mmoe, Omoe, DselectK]),
        ("expert", &[Mmoe, Omoe, Cgc, Ple, DselectK]),
        ("k", &[DselectK]),
        ("shared_experts", &[Cgc, Ple]),
        ("task_experts", &[Cgc, Ple]),
        ("levels", &[Ple]),
    ]
};

/// `[model]`: the architecture and layer sizes. Each key belongs to some architectures; a key
/// of another is refused by name.
fn model(m: &ModelSection, e: &Check) -> Result<ModelChoice> {
    let arch = match m.arch.as_str() {
        "hps" => Arch::Hps,
        "mmoe" => Arch::Mmoe,
        "omoe" => Arch::Omoe,
        "cgc" => Arch::Cgc,
        "ple" => Arch::Ple,
        "cross_stitch" => Arch::CrossStitch,
        "dselect_k" => Arch::DselectK,
        other => {
            return Err(e(
                "model.arch",
                format!("{other:?} (expected hps, mmoe, omoe, cgc, ple, cross_stitch or dselect_k)"),
            ))
        }
    };
    let given = [
        m.trunk.is_some(),
        m.experts.is_some(),
        m.expert.is_some(),
        m.k.is_some(),
        m.shared_experts.is_some(),
        m.task_experts.is_some(),
        m.levels.is_some(),
    ];
    use Arch::*;
    for ((key, archs), given) in MODEL_KEY_OWNERS.into_iter().zip(given) {
        if given && !archs.contains(&arch) {
            let names: Vec<&str> = archs.iter().map(|a| a.name()).collect();
            return Err(e(&format!("model.{key}"), format!("is a key of {}, not of {}", names.join(" and "), m.arch)));
        }
    }
    let count = |key: &str, v: usize, min: usize| -> Result<usize> {
        if v < min || v > 1024 {
            return Err(e(&format!("model.{key}"), format!("{v} ({min} to 1024)")));
        }
        Ok(v)
    };
    let columns = matches!(arch, Hps | CrossStitch);
    let trunk = if columns { m.trunk.clone().unwrap_or_else(|| vec![256, 256]) } else { Vec::new() };
    let expert = if columns { Vec::new() } else { m.expert.clone().unwrap_or_else(|| vec![64, 32]) };
    if arch == CrossStitch && trunk.is_empty() {
        return Err(e("model.trunk", "cross_stitch needs at least one layer in each column".into()));
    }
    if !columns && expert.is_empty() {
        return Err(e("model.expert", "each expert needs at least one layer".into()));
    }
    let experts = if matches!(arch, Mmoe | Omoe | DselectK) { count("experts", m.experts.unwrap_or(8), 1)? } else { 0 };
    if arch == DselectK && (experts < 2 || !experts.is_power_of_two()) {
        return Err(e("model.experts", format!("{experts} (dselect_k encodes experts in bits: a power of two ≥ 2)")));
    }
    let k = if arch == DselectK { count("k", m.k.unwrap_or(2), 1)? } else { 0 };
    let (shared_experts, task_experts) = if matches!(arch, Cgc | Ple) {
        (
            count("shared_experts", m.shared_experts.unwrap_or(2), 0)?,
            count("task_experts", m.task_experts.unwrap_or(1), 0)?,
        )
    } else {
        (0, 0)
    };
    if matches!(arch, Cgc | Ple) && shared_experts + task_experts == 0 {
        return Err(e("model.shared_experts", "a level needs at least one expert, shared or a task's".into()));
    }
    let levels = match arch {
        Ple => count("levels", m.levels.unwrap_or(2), 1)?,
        Cgc => 1,
        _ => 0,
    };
    let layers = |key: &str, sizes: &[usize]| -> Result<()> {
        match sizes.iter().position(|&s| s == 0 || s > 65_536) {
            Some(i) => Err(e(&format!("model.{key}[{i}]"), format!("{} (a layer needs 1 to 65536 units)", sizes[i]))),
            None => Ok(()),
        }
    };
    layers("trunk", &trunk)?;
    layers("expert", &expert)?;
    layers("head", &m.head)?;
    let activation = Activation::parse(&m.activation).map_err(|err| e("model.activation", err.to_string()))?;
    Ok(ModelChoice { arch, trunk, experts, expert, shared_experts, task_experts, levels, k, activation })
}

/// `[train]`: the optimizer and the run's length and settings.
fn train(t: &TrainSection, e: &Check) -> Result<TrainSettings> {
    // Training.
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
    let settings = TrainSettings {
        optimizer,
        batch_size,
        epochs: t.epochs.unwrap_or(100),
        steps: t.steps,
        shuffle: t.shuffle.unwrap_or(true),
        seed: t.seed.unwrap_or(0),
        patience: t.patience.unwrap_or(20),
        max_grad_norm: t.max_grad_norm,
        freeze: t.freeze.clone(),
        affinity_every: t.affinity_every.unwrap_or(0),
    };
    if let Some(m) = t.max_grad_norm {
        if !(m > 0.0 && m.is_finite()) {
            return Err(e("train.max_grad_norm", format!("{m} (must be > 0)")));
        }
    }
    Ok(settings)
}

/// What a check of one value gives: the value, or the key and the message.
type Checked<T> = std::result::Result<T, (String, String)>;

/// `field` takes the config's value where it gives one, after `check`.
fn set<T: Copy>(field: &mut T, given: Option<T>, check: impl Fn(T) -> Checked<T>) -> Checked<()> {
    if let Some(v) = given {
        *field = check(v)?;
    }
    Ok(())
}

/// A check of f64 values applied to an f32 one.
fn f32_of(check: impl Fn(f64) -> Checked<f64>) -> impl Fn(f32) -> Checked<f32> {
    move |v| check(f64::from(v)).map(|x| x as f32)
}

/// The method's parameters that `w` gives, checked, over the registry's defaults.
fn method_params(method: &mut Method, w: &WeightingSection) -> Checked<()> {
    let err = |k: &str, m: String| (format!("weighting.{k}"), m);
    let positive = |k: &'static str| {
        move |v: f64| if v > 0.0 && v.is_finite() { Ok(v) } else { Err(err(k, format!("{v} (must be > 0)"))) }
    };
    let non_negative = |k: &'static str, note: &'static str| {
        move |v: f64| if v >= 0.0 && v.is_finite() { Ok(v) } else { Err(err(k, format!("{v} (must be >= 0{note})"))) }
    };
    let unit = |k: &'static str| {
        move |v: f64| if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(err(k, format!("{v} (must be in [0, 1])"))) }
    };
    match method {
        Method::Dwa { temperature } => set(temperature, w.temperature, positive("temperature"))?,
        Method::GradNorm { alpha } => set(alpha, w.alpha, non_negative("alpha", ""))?,
        Method::Stch { mu, warmup_epochs } => {
            set(mu, w.mu, f32_of(positive("mu")))?;
            set(warmup_epochs, w.warmup_epochs, Ok)?;
        }
        Method::GradVac { beta } => set(beta, w.beta, unit("beta"))?,
        Method::DbMtl { beta, beta_sigma } => {
            set(beta, w.beta, unit("beta"))?;
            set(beta_sigma, w.beta_sigma, non_negative("beta_sigma", ""))?;
        }
        Method::MoCo { beta, beta_sigma, gamma, gamma_sigma, rho } => {
            set(beta, w.beta, unit("beta"))?;
            set(beta_sigma, w.beta_sigma, non_negative("beta_sigma", ""))?;
            set(gamma, w.gamma, non_negative("gamma", ""))?;
            set(gamma_sigma, w.gamma_sigma, non_negative("gamma_sigma", ""))?;
            set(rho, w.rho, non_negative("rho", ""))?;
        }
        Method::GradDrop { leak } => set(leak, w.leak, unit("leak"))?,
        Method::ExcessMtl { step_size } => set(step_size, w.step_size, non_negative("step_size", ""))?,
        Method::FairGrad { alpha } => set(alpha, w.alpha, positive("alpha"))?,
        Method::CaGrad { c, rescale } => {
            set(c, w.c, non_negative("c", ""))?;
            set(rescale, w.rescale, |r| if r > 1 { Err(err("rescale", format!("{r} (0 or 1)"))) } else { Ok(r) })?;
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
            set(iters, w.iters, |i| Ok(i.max(1)))?;
            set(max_norm, w.max_norm, non_negative("max_norm", "; 0 turns clipping off"))?;
        }
        Method::Famo { lr, weight_decay } => {
            set(lr, w.lr, f32_of(positive("lr")))?;
            set(weight_decay, w.weight_decay, f32_of(non_negative("weight_decay", "")))?;
        }
        _ => {}
    }
    Ok(())
}

/// `[weighting]` alone: the method, its parameters and its target.
pub(super) fn weighting_section(w: &WeightingSection) -> Checked<(Method, Target)> {
    weighting(w)
}

fn weighting(w: &WeightingSection) -> std::result::Result<(Method, Target), (String, String)> {
    let err = |k: &str, m: String| (format!("weighting.{k}"), m);
    let mut method = Method::by_name(&w.method).map_err(|e| err("method", e.to_string()))?;
    let entry = method.entry();
    // Each parameter belongs to the methods whose registry entry lists it.
    let given: [(&str, bool); 18] = [
        ("leak", w.leak.is_some()),
        ("beta", w.beta.is_some()),
        ("beta_sigma", w.beta_sigma.is_some()),
        ("gamma", w.gamma.is_some()),
        ("gamma_sigma", w.gamma_sigma.is_some()),
        ("rho", w.rho.is_some()),
        ("step_size", w.step_size.is_some()),
        ("mu", w.mu.is_some()),
        ("warmup_epochs", w.warmup_epochs.is_some()),
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
    method_params(&mut method, w)?;
    let default_target = match entry.targets.first() {
        Some(Target::Representation) => "representation",
        _ => "params",
    };
    let target = match w.target.as_deref().unwrap_or(default_target) {
        "params" => Target::Params,
        "representation" => Target::Representation,
        other => return Err(err("target", format!("{other:?} (expected params or representation)"))),
    };
    if !entry.targets.is_empty() && !entry.targets.contains(&target) {
        return Err(err(
            "target",
            format!(
                "{} takes target = {:?} only, as LibMTL",
                entry.name,
                match entry.targets[0] {
                    Target::Params => "params",
                    Target::Representation => "representation",
                }
            ),
        ));
    }
    Ok((method, target))
}
