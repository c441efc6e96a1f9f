//! Single-task baselines: one model per task, the reference of Δm%.

use std::sync::Arc;

use crate::data::Standardizer;
use crate::error::Result;
use crate::gpu::Context;
use crate::mtl::metrics::Metrics;
use crate::mtl::TaskDef;
use crate::nn::ModelSpec;

use super::{Scaling, Splits, TrainSettings, Trainer};

/// Trains one single-task model per task (same architecture and settings, one head) and
/// returns each task's metrics on `[train, val, test]`. A product task alone is a binary task
/// with a head of its own; a task without a loss of its own (`own_loss = false`) has no
/// training labels to train alone on, so it has no baseline (empty metrics: its Δ% is
/// undefined, and named so).
pub fn single_task_baselines(
    ctx: &Arc<Context>,
    spec: &ModelSpec,
    tasks: &[TaskDef],
    settings: &TrainSettings,
    scaling: &Scaling,
    splits: &Splits,
) -> Result<Vec<[Metrics; 3]>> {
    crate::gpu::wait::block(
        "training baselines",
        single_task_baselines_async(ctx, spec, tasks, settings, scaling, splits),
    )
}

/// [`single_task_baselines`] as a future: the form a browser page uses.
pub async fn single_task_baselines_async(
    ctx: &Arc<Context>,
    spec: &ModelSpec,
    tasks: &[TaskDef],
    settings: &TrainSettings,
    scaling: &Scaling,
    splits: &Splits,
) -> Result<Vec<[Metrics; 3]>> {
    let mut out = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        if !task.own_loss {
            out.push([Metrics::new(), Metrics::new(), Metrics::new()]);
            continue;
        }
        let one = [task.clone()];
        let mut s1 = spec.clone();
        s1.tasks = vec![spec.tasks[t].clone()];
        s1.products = vec![];
        let sc = Scaling {
            features: scaling.features.clone(),
            targets: Standardizer { mean: vec![scaling.targets.mean[t]], std: vec![scaling.targets.std[t]] },
        };
        let sp = Splits {
            train: splits.train.select_tasks(&[t]),
            val: splits.val.select_tasks(&[t]),
            test: splits.test.select_tasks(&[t]),
        };
        let mut tr = Trainer::new(ctx.clone(), &s1, &one, settings.clone(), sc, None)?;
        let rep = tr.fit_async(&sp, &mut |_| {}).await?;
        out.push(rep.metrics[0].clone());
    }
    Ok(out)
}
