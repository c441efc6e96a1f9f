//! The one list of weighting methods: for each, its config name, its defaults, its
//! parameters, where it runs and which gradient targets it takes. The config's validation,
//! the `hydra` command, the trainer and README's method table all read it; nothing else
//! lists methods.

use super::{Method, MgdaNorm, Target};

/// Where a method's weights or coefficients are computed, which decides the shape of a
/// training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Fixed loss weights (one submit per step).
    Fixed,
    /// New loss weights from the host before every step (one submit per step).
    HostPerStep,
    /// New loss weights from the host after every epoch (one submit per step).
    HostPerEpoch,
    /// Loss weights computed on the GPU inside the step from its losses (one submit per step).
    GpuInStep,
    /// The per-task gradients' Gram matrix is read back, the host solves for T coefficients
    /// and sends them back (two submits per step).
    GramThenHost,
    /// The per-task gradients are combined elementwise on the GPU (two submits per step).
    GpuElementwise,
}

impl Runs {
    /// Whether the method needs the per-task gradients of the shared part each step.
    pub fn uses_gradients(self) -> bool {
        matches!(self, Runs::GramThenHost | Runs::GpuElementwise)
    }
}

/// One weighting method.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The config name.
    pub name: &'static str,
    /// The method with its defaults (LibMTL's).
    pub default: Method,
    /// The keys of `[weighting]` it takes (besides `method` and `target`).
    pub params: &'static [&'static str],
    /// Those keys with their defaults, as README's table shows them.
    pub params_doc: &'static str,
    /// Where it runs.
    pub runs: Runs,
    /// README's "computed" cell.
    pub computed: &'static str,
    /// The gradient targets it takes (none for a loss weighting); the first is the default.
    pub targets: &'static [Target],
    /// The invariant its tests check, as README's table states it.
    pub invariant: &'static str,
}

const BOTH: &[Target] = &[Target::Params, Target::Representation];
const PARAMS: &[Target] = &[Target::Params];
const GRAM: &str = "Gram matrix + host";

/// Every method, in the order the documentation and `hydra compare` list them.
pub const REGISTRY: &[Entry] = &[
    loss("ew", Method::Ew, &[], "–", Runs::Fixed, "–", "–"),
    loss("static", Method::Static, &[], "task `weight`", Runs::Fixed, "–", "–"),
    loss(
        "uw",
        Method::Uw,
        &[],
        "–",
        Runs::GpuInStep,
        "GPU, in the step; `weighting.log_var` learned by the model's optimizer",
        "s_t → log L_t (CPU and GPU)",
    ),
    loss(
        "dwa",
        Method::Dwa { temperature: 2.0 },
        &["temperature"],
        "`temperature` (2)",
        Runs::HostPerEpoch,
        "host, per epoch",
        "weights sum to T",
    ),
    loss("rlw", Method::Rlw, &[], "–", Runs::HostPerStep, "host, per step", "weights sum to 1"),
    loss("gls", Method::Gls, &[], "–", Runs::GpuInStep, "GPU, from the step's losses", "= ∂(Π L)^{1/T}/∂L_t"),
    loss(
        "famo",
        Method::Famo { lr: 0.025, weight_decay: 0.001 },
        &["lr", "weight_decay"],
        "`lr` (0.025), `weight_decay` (0.001)",
        Runs::GpuInStep,
        "GPU, state kept on the GPU; the same batch re-evaluated after the update",
        "Σ w = 1; matches its CPU reference step after step",
    ),
    loss(
        "stch",
        Method::Stch { mu: 1.0, warmup_epochs: 4 },
        &["mu", "warmup_epochs"],
        "`mu` (1.0), `warmup_epochs` (4)",
        Runs::GpuInStep,
        "GPU, from the step's losses; the nadir point kept on the GPU",
        "= ∂(μT log Σ exp(ℓ/μ))/∂L_t; matches its CPU reference",
    ),
    grad(
        "gradnorm",
        Method::GradNorm { alpha: 1.5 },
        &["alpha"],
        "`alpha` (1.5)",
        "Gram matrix + host; its logits take the model's optimizer's steps",
        "equal in the first epoch, then LibMTL's scales step after step",
    ),
    grad("pcgrad", Method::PcGrad, &[], "–", GRAM, "projections orthogonal; agreeing gradients summed"),
    Entry {
        name: "graddrop",
        default: Method::GradDrop { leak: 0.0 },
        params: &["leak"],
        params_doc: "`leak` (0)",
        runs: Runs::GpuElementwise,
        computed: "GPU, per column of the representation",
        targets: &[Target::Representation],
        invariant: "matches its CPU reference (LibMTL's formula)",
    },
    grad(
        "mgda",
        Method::Mgda { norm: MgdaNorm::None },
        &["norm"],
        "`norm`: none \\| l2 \\| loss \\| loss+",
        GRAM,
        "KKT of the min-norm point, T = 2…8; T = 2 closed form",
    ),
    grad(
        "cagrad",
        Method::CaGrad { c: 0.5, rescale: 1 },
        &["c", "rescale"],
        "`c` (0.5), `rescale` (1)",
        GRAM,
        "c = 0 gives the mean; large c gives MGDA's direction",
    ),
    grad(
        "imtl",
        Method::Imtl,
        &[],
        "–",
        "Gram matrix + host; `weighting.log_scale` learned by the model's optimizer",
        "IMTL-L: s_t → −log L_t; then IMTL-G",
    ),
    grad("imtl_g", Method::ImtlG, &[], "–", GRAM, "equal projections on every unit gradient"),
    grad(
        "nash_mtl",
        Method::NashMtl { iters: 20, max_norm: 1.0 },
        &["iters", "max_norm"],
        "`iters` (20), `max_norm` (1.0)",
        GRAM,
        "‖α ⊙ Mα − 1‖∞ < 1e-6",
    ),
    grad("aligned_mtl", Method::AlignedMtl, &[], "–", GRAM, "equalises orthogonal gradients"),
    grad("upgrad", Method::UpGrad, &[], "–", GRAM, "Gd ≥ 0: no task is worsened"),
    grad(
        "gradvac",
        Method::GradVac { beta: 0.5 },
        &["beta"],
        "`beta` (0.5)",
        GRAM,
        "first step is PCGrad's; matches a CPU reference on explicit gradients",
    ),
    grad(
        "fairgrad",
        Method::FairGrad { alpha: 1.0 },
        &["alpha"],
        "`alpha` (1.0)",
        GRAM,
        "(Mw)_t = w_t^{−1/α}; α = 1 is Nash-MTL's",
    ),
    Entry {
        name: "db_mtl",
        default: Method::DbMtl { beta: 0.9, beta_sigma: 0.0 },
        params: &["beta", "beta_sigma"],
        params_doc: "`beta` (0.9), `beta_sigma` (0)",
        runs: Runs::GramThenHost,
        computed: "joint Gram matrix of gradients and their moving averages (kept on the GPU) + host",
        targets: PARAMS,
        invariant: "matches LibMTL's formulas on explicit gradients step after step",
    },
    Entry {
        name: "moco",
        default: Method::MoCo { beta: 0.5, beta_sigma: 0.5, gamma: 0.1, gamma_sigma: 0.5, rho: 0.0 },
        params: &["beta", "beta_sigma", "gamma", "gamma_sigma", "rho"],
        params_doc: "`beta` (0.5), `beta_sigma` (0.5), `gamma` (0.1), `gamma_sigma` (0.5), `rho` (0)",
        runs: Runs::GramThenHost,
        computed: "joint Gram matrix of gradients and their moving averages (kept on the GPU) + host",
        targets: PARAMS,
        invariant: "matches LibMTL's formulas on explicit gradients step after step; λ sums to 1",
    },
    Entry {
        name: "excess_mtl",
        default: Method::ExcessMtl { step_size: 0.01 },
        params: &["step_size"],
        params_doc: "`step_size` (0.01)",
        runs: Runs::GramThenHost,
        computed: "GPU (sums of squared gradients, per-task statistic) + host",
        targets: PARAMS,
        invariant: "matches LibMTL's formulas on explicit gradients step after step; Σ w = T",
    },
];

const fn loss(
    name: &'static str,
    default: Method,
    params: &'static [&'static str],
    params_doc: &'static str,
    runs: Runs,
    computed: &'static str,
    invariant: &'static str,
) -> Entry {
    Entry { name, default, params, params_doc, runs, computed, targets: &[], invariant }
}

const fn grad(
    name: &'static str,
    default: Method,
    params: &'static [&'static str],
    params_doc: &'static str,
    computed: &'static str,
    invariant: &'static str,
) -> Entry {
    Entry { name, default, params, params_doc, runs: Runs::GramThenHost, computed, targets: BOTH, invariant }
}

/// The entry of a config name.
pub fn by_name(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// The entry of a method (whatever its parameters).
pub fn of(method: &Method) -> &'static Entry {
    let d = std::mem::discriminant(method);
    REGISTRY
        .iter()
        .find(|e| std::mem::discriminant(&e.default) == d)
        .expect("every Method variant has a registry entry (tested)")
}

/// Every config name, in registry order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}

/// README's method table, generated from the registry (a test keeps README equal to it).
pub fn markdown_table() -> String {
    let mut s = String::from("| method | parameters (default) | computed | tested invariant |\n|---|---|---|---|\n");
    for e in REGISTRY {
        s.push_str(&format!("| `{}` | {} | {} | {} |\n", e.name, e.params_doc, e.computed, e.invariant));
    }
    s
}
