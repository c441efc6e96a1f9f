//! Task weighting and gradient combination: the methods users compare, with LibMTL's
//! defaults (formulas and invariants in the project's MTL-METHODS notes).
//!
//! Loss-based methods give task weights w_t for Σ_t w_t·L_t. Gradient-based methods take the
//! T×T Gram matrix M = G·Gᵀ of the per-task gradients (of the shared parameters, or of the
//! shared representation) and return coefficients c with the update direction d = Σ_t c_t g_t.
//! The library works on its own: give it a [`Gram`] (or explicit gradients) and losses.

mod aligned_mtl;
mod cagrad;
mod gradvac;
pub mod gram;
mod imtl;
pub mod linalg;
mod loss_based;
mod mgda;
mod nash_mtl;
mod pcgrad;
pub mod registry;
mod upgrad;

pub use aligned_mtl::aligned_mtl;
pub use cagrad::cagrad;
pub use gradvac::gradvac;
pub use gram::{combine, Gram};
pub use imtl::imtl;
pub use loss_based::{dwa, gls, graddrop, imtl_l, rlw, stch_weights, uw, GradNormState};
pub use mgda::{line_search, mgda, min_norm, MgdaNorm};
pub use nash_mtl::{fair_weights, nash_alpha, nash_mtl};
pub use pcgrad::pcgrad;
pub use registry::Runs;
pub use upgrad::{project_weights, upgrad};

use crate::error::{Error, Result};
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
    /// GradDrop.
    GradDrop,
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
        }
    }

    /// The same weighter taking the gradients of the log losses when `log` (`[weighting]
    /// loss_transform = "log"`, for methods on the Gram matrix).
    pub fn with_log_losses(mut self, log: bool) -> Weighter {
        self.log_losses = log;
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

    /// New loss weights after an epoch with these average training losses (DWA).
    pub fn epoch_weights(&mut self, epoch_losses: &[f64]) -> Option<Vec<f64>> {
        match self.method {
            Method::Dwa { temperature } => {
                self.history.push(epoch_losses.to_vec());
                Some(dwa(&self.history, temperature))
            }
            _ => None,
        }
    }

    /// Coefficients c of d = Σ c_t g_t from the Gram matrix and the losses; `lr` is the
    /// model's learning rate (GradNorm's weights follow it). Non-finite coefficients are an
    /// error naming the method and what it was given (a non-finite Gram matrix or loss means
    /// training has diverged), never a silent switch to equal weighting.
    pub fn coefficients(&mut self, m: &Gram, losses: &[f64], lr: f64) -> Result<Vec<f64>> {
        if !m.m.iter().chain(losses).all(|v| v.is_finite()) {
            return Err(Error::invalid(
                format!("weighting {}", self.method.name()),
                format!("a non-finite Gram matrix or loss: training diverged (Gram {:?}, losses {losses:?})", m.m),
            ));
        }
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
        let c = match self.method {
            Method::GradNorm { alpha } => {
                let c = self.gradnorm.w.clone();
                let norms: Vec<f64> = (0..m.t).map(|i| m.norm(i)).collect();
                self.gradnorm.update(&norms, losses, alpha, lr);
                c
            }
            Method::PcGrad => pcgrad(m, &mut self.rng).0,
            Method::Mgda { norm } => mgda(m, losses, norm),
            Method::CaGrad { c, rescale } => cagrad(m, c, rescale),
            Method::Imtl | Method::ImtlG => imtl(m),
            Method::NashMtl { iters, max_norm } => nash_mtl(m, iters, max_norm),
            Method::AlignedMtl => aligned_mtl(m),
            Method::UpGrad => upgrad(m),
            Method::FairGrad { alpha } => fair_weights(m, alpha, 20),
            Method::GradVac { beta } => {
                if self.gradvac_targets.len() != m.t * m.t {
                    self.gradvac_targets = vec![0.0; m.t * m.t];
                }
                gradvac(m, &mut self.gradvac_targets, beta, &mut self.rng)
            }
            _ => vec![1.0; m.t],
        };
        let c: Vec<f64> = match &inv {
            Some(inv) => c.iter().zip(inv).map(|(a, b)| a * b).collect(),
            None => c,
        };
        if c.iter().all(|v| v.is_finite()) {
            return Ok(c);
        }
        Err(Error::invalid(
            format!("weighting {}", self.method.name()),
            format!("coefficients {c:?} from a finite Gram matrix {:?} and losses {losses:?}", m.m),
        ))
    }

    /// A seed for this step's GradDrop draws.
    pub fn next_seed(&mut self) -> u32 {
        (self.rng.next_u64() >> 32) as u32
    }
}
