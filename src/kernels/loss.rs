use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::shaders::Shader;
use crate::tensor::Tensor;

/// A task's loss on its logits. Every loss is a mean over the rows whose label is present.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// (y − t)², one output.
    Mse,
    /// |y − t|, one output.
    L1,
    /// ½d² if |d| ≤ δ else δ(|d| − ½δ), d = y − t, one output (PyTorch's HuberLoss).
    Huber {
        /// δ (1 by default).
        delta: f32,
    },
    /// Binary cross-entropy on a logit x with label t ∈ {0, 1}: softplus(x) − x·t.
    Bce,
    /// Softmax cross-entropy over `classes` logits; the label is the class index.
    CrossEntropy {
        /// Number of classes.
        classes: usize,
    },
}

impl LossKind {
    /// Logits per row.
    pub fn outputs(self) -> usize {
        match self {
            LossKind::CrossEntropy { classes } => classes,
            _ => 1,
        }
    }
    fn code(self) -> u32 {
        match self {
            LossKind::Mse => 0,
            LossKind::L1 => 1,
            LossKind::Huber { .. } => 2,
            LossKind::Bce => 3,
            LossKind::CrossEntropy { .. } => 4,
        }
    }
    fn delta(self) -> f32 {
        match self {
            LossKind::Huber { delta } => delta,
            _ => 0.0,
        }
    }
    pub(crate) fn check(self) -> Result<()> {
        match self {
            LossKind::Huber { delta } if !(delta.is_finite() && delta > 0.0) => {
                Err(Error::invalid("huber delta", format!("{delta} (must be > 0)")))
            }
            LossKind::CrossEntropy { classes } if classes < 2 => {
                Err(Error::invalid("classes", format!("{classes} (cross-entropy needs at least 2)")))
            }
            _ => Ok(()),
        }
    }
}

/// The fused loss of task `task`: `losses[task] = mean over present rows of loss(logits, labels)`
/// and `grad = weights[task] · ∂ losses[task] / ∂ logits` (zero on rows without a label).
#[allow(clippy::too_many_arguments)]
pub fn task_loss(
    ctx: &Context,
    kind: LossKind,
    logits: &Tensor,
    labels: &Tensor,
    mask: &Tensor,
    weights: &Tensor,
    task: usize,
    grad: &Tensor,
    losses: &Tensor,
) -> Result<Dispatch> {
    kind.check()?;
    let (b, c) = logits.dims2();
    if c != kind.outputs() {
        return Err(Error::shape("task_loss", format!("{c} logits per row for {kind:?}")));
    }
    check_len("task_loss", "labels", labels, b)?;
    check_len("task_loss", "mask", mask, b)?;
    check_len("task_loss", "grad", grad, b * c)?;
    if task >= weights.len() || task >= losses.len() {
        return Err(Error::shape("task_loss", format!("task {task} past {} weights", weights.len())));
    }
    KernelCall::new(Shader::Loss, "task_loss", &[("KIND", f64::from(kind.code()))])
        .params([b as u32, c as u32, task as u32, 0], [kind.delta(), 0.0, 0.0, 0.0])
        .bind(logits)
        .bind(labels)
        .bind(mask)
        .bind(weights)
        .bind(grad)
        .bind(losses)
        .build(ctx)
}
