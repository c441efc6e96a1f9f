//! Task weighting and gradient combination: the methods users compare, with LibMTL's
//! defaults (formulas and invariants in the project's MTL-METHODS notes).
//!
//! Loss-based methods give task weights w_t for Σ_t w_t·L_t. Gradient-based methods take the
//! T×T Gram matrix M = G·Gᵀ of the per-task gradients (of the shared parameters, or of the
//! shared representation) and return coefficients c with the update direction d = Σ_t c_t g_t.
//! The library works on its own: give it a [`Gram`] (or explicit gradients) and losses.

mod aligned_mtl;
mod cagrad;
mod excess_mtl;
mod gradnorm;
mod gradvac;
pub mod gram;
mod imtl;
pub mod linalg;
mod loss_based;
mod mgda;
mod momentum;
mod nash_mtl;
mod pcgrad;
pub mod registry;
mod upgrad;

pub use aligned_mtl::aligned_mtl;
pub use cagrad::cagrad;
pub use excess_mtl::{excess_mtl, ExcessState};
pub use gradnorm::GradNormState;
pub use gradvac::gradvac;
pub use gram::{combine, Gram};
pub use imtl::imtl;
pub use loss_based::{dwa, gls, graddrop, imtl_l, rlw, stch_weights, uw};
pub use mgda::{line_search, mgda, min_norm, MgdaNorm};
pub use momentum::{db_mtl, moco, updated_gram, MocoParams, MomentumStep};
pub use nash_mtl::{fair_weights, nash_alpha, nash_mtl, nash_mtl_step};
pub use pcgrad::pcgrad;
pub use registry::Runs;
pub use upgrad::{project_weights, upgrad};

use crate::error::{Error, Result};
use crate::mtl::gpu::SlotState;
use crate::optim::Optimizer;
use crate::rng::Rng;

/// Where gradient methods take the per-task gradients (LibMTL's `rep_grad`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Gradients of the shared parameters (one backward through the trunk per task).
    Params,
    /// Gradients at the trunk's output (MGDA-UB style: one backward through the trunk).
    Representation,
}

/// A weighting method and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Every weight 1.
    Ew,
    /// Each task's configured weight.
    Static,
    /// Uncertainty weighting: ½(e^{−s_t}L_t + s_t), s learned from 0 by the model's optimizer.
    Uw,
    /// Dynamic weight average.
    Dwa {
        /// Temperature (2).
        temperature: f64,
    },
    /// Random loss weighting.
    Rlw,
    /// Geometric loss strategy.
    Gls,
    /// Smooth Tchebycheff scalarisation.
    Stch {
        /// Smoothing μ (1.0).
        mu: f32,
        /// Epochs of log losses before it (4).
        warmup_epochs: usize,
    },
    /// Fast adaptive multitask optimisation.
    Famo {
        /// Learning rate of the task logits (0.025).
        lr: f32,
        /// Their weight decay (0.001).
        weight_decay: f32,
    },
    /// GradNorm.
    GradNorm {
        /// Restoring-force strength α (1.5).
        alpha: f64,
    },
    /// PCGrad.
    PcGrad,
    /// GradDrop (representation target only, as LibMTL).
    GradDrop {
        /// The share of a dropped gradient kept (LibMTL's `leak`, 0).
        #[serde(default)]
        leak: f64,
    },
    /// MGDA.
    Mgda {
        /// Gradient normalisation.
        norm: MgdaNorm,
    },
    /// CAGrad.
    CaGrad {
        /// c (0.5).
        c: f64,
        /// 1: divide by 1 + c².
        rescale: u8,
    },
    /// IMTL (IMTL-L's learned loss scales, then IMTL-G on the scaled losses' gradients).
    Imtl,
    /// IMTL-G alone.
    ImtlG,
    /// Nash-MTL.
    NashMtl {
        /// Solver iterations (20).
        iters: usize,
        /// Update norm clip (1.0).
        max_norm: f64,
    },
    /// Aligned-MTL.
    AlignedMtl,
    /// GradVac.
    GradVac {
        /// The targets' moving-average rate β (0.5).
        beta: f64,
    },
    /// FairGrad.
    FairGrad {
        /// The fairness α (1: Nash-MTL's proportional fairness).
        alpha: f64,
    },
    /// UPGrad.
    UpGrad,
    /// DB-MTL: moving averages of the log losses' gradients, brought to one norm.
    DbMtl {
        /// The averages' rate β (0.9).
        beta: f64,
        /// Its decay σ: β/step^σ (0).
        beta_sigma: f64,
    },
    /// MoCo: moving averages of loss-scaled unit gradients, weighted by a softmax-tracked λ.
    #[serde(rename = "moco")]
    MoCo {
        /// Rate of the averages β (0.5).
        beta: f64,
        /// Its decay σ_β (0.5).
        beta_sigma: f64,
        /// Rate of λ γ (0.1).
        gamma: f64,
        /// Its decay σ_γ (0.5).
        gamma_sigma: f64,
        /// ℓ2 regularisation ρ of λ's update (0).
        rho: f64,
    },
    /// ExcessMTL: loss weights moved by each task's excess-risk estimate.
    ExcessMtl {
        /// LibMTL's `robust_step_size` (0.01).
        step_size: f64,
    },
}

/// What the second submit of a gradient method's step applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Coefficients of d over the Gram matrix's rows: the T gradients, then (moving averages)
    /// the T averages before this step's update.
    pub coef: Vec<f64>,
    /// The moving averages' update y_t ← a_t·y_t + b_t·g_t as [a; b] (2T).
    pub mix: Option<Vec<f64>>,
    /// The heads' loss weights, for the methods that weight the heads (LibMTL's Nash-MTL,
    /// FairGrad, ExcessMTL, DB-MTL's log losses) and under the log transform.
    pub heads: Option<Vec<f64>>,
    /// The task weights to report: the coefficients, or with moving averages each task's
    /// weight on its average (DB-MTL's α, MoCo's λ).
    pub weights: Vec<f64>,
}

impl Method {
    /// A method by name with LibMTL's defaults (from the [`registry`]).
    pub fn by_name(name: &str) -> Result<Method> {
        registry::by_name(name).map(|e| e.default).ok_or_else(|| {
            Error::invalid("weighting.method", format!("{name:?} (expected one of {})", registry::names().join(", ")))
        })
    }

    /// The method's registry entry.
    pub fn entry(&self) -> &'static registry::Entry {
        registry::of(self)
    }

    /// The config name.
    pub fn name(&self) -> &'static str {
        self.entry().name
    }

    /// Where the method runs.
    pub fn runs(&self) -> Runs {
        self.entry().runs
    }

    /// Whether the method combines per-task gradients (needs them every step).
    pub fn uses_gradients(&self) -> bool {
        self.runs().uses_gradients()
    }

    /// The per-task state the method keeps on the GPU beside the gradients.
    pub fn slot_state(&self) -> SlotState {
        match self {
            Method::DbMtl { .. } | Method::MoCo { .. } => SlotState::Momentum,
            Method::ExcessMtl { .. } => SlotState::SquaredSum,
            _ => SlotState::None,
        }
    }
}

/// A weighting method with its state across steps (serialisable, so a resumed run continues
/// exactly).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Weighter {
    /// The method.
    pub method: Method,
    /// Where gradients are taken.
    pub target: Target,
    tasks: usize,
    static_weights: Vec<f64>,
    rng: Rng,
    gradnorm: GradNormState,
    history: Vec<Vec<f64>>,
    /// Gradient methods on the Gram matrix: combine the gradients of log L_t, ∇L_t / L_t
    /// (DB-MTL's loss transform), instead of those of L_t.
    #[serde(default)]
    pub log_losses: bool,
    /// GradVac's target cosines (T×T), empty until its first step.
    #[serde(default)]
    gradvac_targets: Vec<f64>,
    /// Steps taken (DB-MTL's and MoCo's rate decay).
    #[serde(default)]
    steps: u64,
    /// MoCo's λ, empty until its first step.
    #[serde(default)]
    moco_lambda: Vec<f64>,
    /// ExcessMTL's weights and first statistics.
    #[serde(default)]
    excess: Option<ExcessState>,
    /// The model's optimizer (GradNorm's logits take its steps, as LibMTL's).
    #[serde(default)]
    optimizer: Option<Optimizer>,
}

impl Weighter {
    /// A weighter for `tasks` tasks; `static_weights` are used by `static`.
    pub fn new(method: Method, target: Target, static_weights: &[f64], seed: u64) -> Weighter {
        let t = static_weights.len();
        Weighter {
            method,
            target,
            tasks: t,
            static_weights: static_weights.to_vec(),
            rng: Rng::new(seed ^ 0x3E16),
            gradnorm: GradNormState::new(t),
            history: Vec::new(),
            log_losses: false,
            gradvac_targets: Vec::new(),
            steps: 0,
            moco_lambda: Vec::new(),
            excess: None,
            optimizer: None,
        }
    }

    /// The same weighter taking the gradients of the log losses when `log` (`[weighting]
    /// loss_transform = "log"`, for methods on the Gram matrix).
    pub fn with_log_losses(mut self, log: bool) -> Weighter {
        self.log_losses = log;
        self
    }

    /// The same weighter with the model's optimizer, whose steps GradNorm's logits take (without
    /// it, Adam at the learning rate given to [`Weighter::plan`]).
    pub fn with_optimizer(mut self, opt: Optimizer) -> Weighter {
        self.optimizer = Some(opt);
        self
    }

    /// Loss weights at the start of training.
    pub fn initial_weights(&self) -> Vec<f64> {
        match self.method {
            Method::Static => self.static_weights.clone(),
            _ => vec![1.0; self.tasks],
        }
    }

    /// New loss weights for the coming step, for methods that change them every step (RLW).
    pub fn step_weights(&mut self) -> Option<Vec<f64>> {
        match self.method {
            Method::Rlw => Some(rlw(self.tasks, &mut self.rng)),
            _ => None,
        }
    }

    /// New loss weights after an epoch with these average training losses (DWA); the end of
    /// GradNorm's first epoch.
    pub fn epoch_weights(&mut self, epoch_losses: &[f64]) -> Option<Vec<f64>> {
        self.gradnorm.end_epoch();
        match self.method {
            Method::Dwa { temperature } => {
                self.history.push(epoch_losses.to_vec());
                Some(dwa(&self.history, temperature))
            }
            _ => None,
        }
    }

    /// Coefficients c of d = Σ c_t g_t from the Gram matrix and the losses, for the methods on
    /// the T×T Gram matrix (see [`Weighter::plan`] for the whole of a step).
    pub fn coefficients(&mut self, m: &Gram, losses: &[f64], lr: f64) -> Result<Vec<f64>> {
        Ok(self.plan(m, losses, lr, None)?.coef)
    }

    /// A gradient method's step from what phase one read back: the Gram matrix (T×T, or the
    /// 2T×2T joint one of the gradients and their moving averages), the losses, and for
    /// ExcessMTL each task's statistic; `lr` is the model's learning rate (GradNorm's logits
    /// take Adam steps at it unless [`Weighter::with_optimizer`] gave the model's optimizer). Non-finite coefficients are an error naming the method and what it was given
    /// (a non-finite Gram matrix or loss means training has diverged), never a silent switch to
    /// equal weighting.
    pub fn plan(&mut self, m: &Gram, losses: &[f64], lr: f64, stats: Option<&[f64]>) -> Result<Plan> {
        let stats_finite = stats.is_none_or(|s| s.iter().all(|v| v.is_finite()));
        if !m.m.iter().chain(losses).all(|v| v.is_finite()) || !stats_finite {
            return Err(Error::invalid(
                format!("weighting {}", self.method.name()),
                format!("a non-finite Gram matrix or loss: training diverged (Gram {:?}, losses {losses:?})", m.m),
            ));
        }
        let plan = match self.method {
            Method::DbMtl { .. } | Method::MoCo { .. } | Method::ExcessMtl { .. } => self.stateful(m, losses, stats)?,
            _ => self.on_gram(m, losses, lr),
        };
        let all = plan.coef.iter().chain(plan.mix.iter().flatten()).chain(plan.heads.iter().flatten());
        if all.clone().all(|v| v.is_finite()) {
            return Ok(plan);
        }
        Err(Error::invalid(
            format!("weighting {}", self.method.name()),
            format!("coefficients {:?} from a finite Gram matrix {:?} and losses {losses:?}", plan.coef, m.m),
        ))
    }

    /// The methods that keep per-task state on the GPU.
    fn stateful(&mut self, m: &Gram, losses: &[f64], stats: Option<&[f64]>) -> Result<Plan> {
        let t = losses.len();
        self.steps += 1;
        let step = match self.method {
            Method::DbMtl { beta, beta_sigma } => db_mtl(m, losses, self.steps, beta, beta_sigma),
            Method::MoCo { beta, beta_sigma, gamma, gamma_sigma, rho } => {
                if self.moco_lambda.len() != t {
                    self.moco_lambda = vec![1.0 / t as f64; t];
                }
                let p = MocoParams { beta, beta_sigma, gamma, gamma_sigma, rho };
                moco(m, losses, self.steps, &mut self.moco_lambda, p)
            }
            Method::ExcessMtl { step_size } => {
                let w = stats.ok_or_else(|| {
                    Error::invalid("weighting excess_mtl", "needs each task's statistic from the GPU (none was read)")
                })?;
                let state = self.excess.get_or_insert_with(|| ExcessState::new(t));
                let c = excess_mtl(state, w, step_size);
                return Ok(Plan { coef: c.clone(), mix: None, heads: Some(c.clone()), weights: c });
            }
            _ => unreachable!("stateful() is only called for DB-MTL, MoCo and ExcessMTL"),
        };
        let mix = step.a.iter().chain(&step.b).copied().collect();
        let heads = step.heads.iter().any(|&h| h != 1.0).then_some(step.heads);
        Ok(Plan { coef: step.coef, mix: Some(mix), heads, weights: step.weights })
    }

    /// The methods on the T×T Gram matrix, with the log transform where it is asked for.
    fn on_gram(&mut self, m: &Gram, losses: &[f64], lr: f64) -> Plan {
        // Under the log transform, g_t/L_t: the Gram matrix scaled by 1/L, and the coefficients
        // of the scaled gradients divided by L_t to apply to the gradients themselves. A task
        // whose loss is 0 in this batch (no labels in it) has no gradient: its scale is 1.
        let inv: Option<Vec<f64>> =
            self.log_losses.then(|| losses.iter().map(|&l| if l > 0.0 { 1.0 / l } else { 1.0 }).collect());
        let scaled;
        let m = match &inv {
            Some(inv) => {
                scaled = m.scaled(inv);
                &scaled
            }
            None => m,
        };
        let mut heads = None;
        let c = match self.method {
            Method::GradNorm { alpha } => {
                let norms: Vec<f64> = (0..m.t).map(|i| m.norm(i)).collect();
                let opt = self.optimizer.unwrap_or(Optimizer::adam(lr as f32));
                self.gradnorm.scales(&norms, losses, alpha, &opt)
            }
            Method::PcGrad => pcgrad(m, &mut self.rng).0,
            Method::Mgda { norm } => mgda(m, losses, norm),
            Method::CaGrad { c, rescale } => cagrad(m, c, rescale),
            Method::Imtl | Method::ImtlG => imtl(m),
            Method::NashMtl { iters, max_norm } => {
                let (c, h) = nash_mtl_step(m, iters, max_norm);
                heads = Some(h);
                c
            }
            Method::AlignedMtl => aligned_mtl(m),
            Method::UpGrad => upgrad(m),
            Method::FairGrad { alpha } => {
                let w = fair_weights(m, alpha, 20);
                heads = Some(w.clone());
                w
            }
            Method::GradVac { beta } => {
                if self.gradvac_targets.len() != m.t * m.t {
                    self.gradvac_targets = vec![0.0; m.t * m.t];
                }
                gradvac(m, &mut self.gradvac_targets, beta, &mut self.rng)
            }
            _ => vec![1.0; m.t],
        };
        match inv {
            Some(inv) => {
                let scale = |v: Vec<f64>| v.iter().zip(&inv).map(|(a, b)| a * b).collect::<Vec<f64>>();
                let heads = scale(heads.unwrap_or_else(|| vec![1.0; m.t]));
                let coef = scale(c);
                Plan { weights: coef.clone(), coef, mix: None, heads: Some(heads) }
            }
            None => Plan { weights: c.clone(), coef: c, mix: None, heads },
        }
    }

    /// A seed for this step's GradDrop draws.
    pub fn next_seed(&mut self) -> u32 {
        (self.rng.next_u64() >> 32) as u32
    }
}
