use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch, KernelCall};
use crate::ir::LossKind;
use crate::shaders::Shader;

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
    task_loss_counted(ctx, kind, [logits, labels, mask, weights], task, grad, losses, None)
}

/// [`task_loss`] whose mean divides by `counts[task]` where it is positive (the labelled rows
/// of a global batch this batch is a slice of), else by the batch's own count.
pub fn task_loss_counted(
    ctx: &Context,
    kind: LossKind,
    [logits, labels, mask, weights]: [&Tensor; 4],
    task: usize,
    grad: &Tensor,
    losses: &Tensor,
    counts: Option<&Tensor>,
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
    if let Some(n) = counts {
        check_len("task_loss", "counts", n, losses.len())?;
    }
    let dummy = ctx.dummy()?;
    let constants = [("KIND", f64::from(kind.code())), ("COUNTED", f64::from(u8::from(counts.is_some())))];
    KernelCall::new(Shader::Loss, "task_loss", &constants)
        .params([b as u32, c as u32, task as u32, 0], [kind.delta(), 0.0, 0.0, 0.0])
        .bind(logits)
        .bind(labels)
        .bind(mask)
        .bind(weights)
        .bind(grad)
        .bind(losses)
        .bind(counts.unwrap_or(&dummy))
        .build(ctx)
}
