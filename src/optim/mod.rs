//! Optimizers: a host-side description (PyTorch's formulas and defaults), the per-step values
//! the GPU kernel needs, and the CPU reference of one update. The GPU update program
//! ([`gpu`]) is one dispatch of `optim.wgsl` per trainable range of the flat parameter
//! buffer, with gradient clipping's norm before it and the divergence guard after.

pub mod gpu;

use crate::cpu::Real;
use crate::error::{Error, Result};

/// An optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// torch.optim.SGD (dampening 0).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor (0: plain SGD).
        momentum: f32,
        /// Nesterov momentum (needs momentum > 0).
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
    /// torch.optim.Adam (L2 penalty added to the gradient).
    Adam {
        /// Learning rate.
        lr: f32,
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// ε.
        eps: f32,
        /// L2 penalty.
        weight_decay: f32,
    },
    /// torch.optim.AdamW (decoupled weight decay).
    AdamW {
        /// Learning rate.
        lr: f32,
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// ε.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
}

impl Optimizer {
    /// SGD with PyTorch's defaults (no momentum, no weight decay).
    pub fn sgd(lr: f32) -> Self {
        Optimizer::Sgd { lr, momentum: 0.0, nesterov: false, weight_decay: 0.0 }
    }
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam(lr: f32) -> Self {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
    /// AdamW with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    pub fn adamw(lr: f32) -> Self {
        Optimizer::AdamW { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } | Optimizer::AdamW { lr, .. } => lr,
        }
    }

    /// Number of state buffers the size of the parameters (momentum; Adam's m and v).
    pub fn state_buffers(&self) -> usize {
        match *self {
            Optimizer::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            _ => 2,
        }
    }

    /// Rejects values PyTorch rejects.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, v: f32| Err(Error::invalid(format!("optimizer {what}"), format!("{v}")));
        let lr = self.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            return bad("lr", lr);
        }
        match *self {
            Optimizer::Sgd { momentum, nesterov, weight_decay, .. } => {
                if !(momentum >= 0.0 && momentum.is_finite()) {
                    return bad("momentum", momentum);
                }
                if weight_decay < 0.0 || !weight_decay.is_finite() {
                    return bad("weight_decay", weight_decay);
                }
                if nesterov && momentum == 0.0 {
                    return Err(Error::invalid("optimizer nesterov", "needs momentum > 0"));
                }
            }
            Optimizer::Adam { beta1, beta2, eps, weight_decay, .. }
            | Optimizer::AdamW { beta1, beta2, eps, weight_decay, .. } => {
                if !(0.0..1.0).contains(&beta1) {
                    return bad("beta1", beta1);
                }
                if !(0.0..1.0).contains(&beta2) {
                    return bad("beta2", beta2);
                }
                if !(eps >= 0.0 && eps.is_finite()) {
                    return bad("eps", eps);
                }
                if weight_decay < 0.0 || !weight_decay.is_finite() {
                    return bad("weight_decay", weight_decay);
                }
            }
        }
        Ok(())
    }

    /// The kernel's uniform floats for update number `step` (1-based).
    pub fn uniform(&self, step: u64) -> [f32; 4] {
        match *self {
            Optimizer::Sgd { lr, momentum, weight_decay, .. } => [lr, momentum, weight_decay, 0.0],
            Optimizer::Adam { lr, beta1, beta2, eps, weight_decay }
            | Optimizer::AdamW { lr, beta1, beta2, eps, weight_decay } => {
                let t = step as i32;
                let bc1 = 1.0 - f64::from(beta1).powi(t);
                let bc2 = 1.0 - f64::from(beta2).powi(t);
                let wd = if matches!(self, Optimizer::AdamW { .. }) { lr * weight_decay } else { weight_decay };
                [(f64::from(lr) / bc1) as f32, (1.0 / bc2.sqrt()) as f32, wd, eps]
            }
        }
    }

    /// The CPU reference of update number `step` (1-based) of parameters `p` with gradient
    /// `g`; `m` and `v` are the state buffers (unused ones may be empty).
    pub fn cpu_step<T: Real>(&self, step: u64, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let f = |x: f32| T::of(f64::from(x));
        match *self {
            Optimizer::Sgd { lr, momentum, nesterov, weight_decay } => {
                for i in 0..p.len() {
                    let mut gi = g[i] + f(weight_decay) * p[i];
                    if momentum != 0.0 {
                        let buf = f(momentum) * m[i] + gi;
                        m[i] = buf;
                        gi = if nesterov { gi + f(momentum) * buf } else { buf };
                    }
                    p[i] = p[i] - f(lr) * gi;
                }
            }
            Optimizer::Adam { lr, beta1, beta2, eps, weight_decay }
            | Optimizer::AdamW { lr, beta1, beta2, eps, weight_decay } => {
                let decoupled = matches!(self, Optimizer::AdamW { .. });
                let t = step as i32;
                let bc1 = T::of(1.0 - f64::from(beta1).powi(t));
                let bc2 = T::of(1.0 - f64::from(beta2).powi(t));
                let (b1, b2) = (f(beta1), f(beta2));
                let one = T::of(1.0);
                for i in 0..p.len() {
                    let mut x = p[i];
                    let mut gi = g[i];
                    if decoupled {
                        x = x * (one - f(lr) * f(weight_decay));
                    } else {
                        gi += f(weight_decay) * x;
                    }
                    m[i] = b1 * m[i] + (one - b1) * gi;
                    v[i] = b2 * v[i] + (one - b2) * gi * gi;
                    p[i] = x - (f(lr) / bc1) * m[i] / (v[i].sqrt() / bc2.sqrt() + f(eps));
                }
            }
        }
    }
}
