//! `[train] groups`: one model per group of tasks, each with its own early stopping, against
//! the all-in-one model and the single-task models, in Δm% (the question TAG's grouping answers).

use std::sync::Arc;

use super::{prepare, run, Outcome, RunOptions};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::mtl::metrics::{delta_m, TaskDelta};

/// What training the groups gave, per task in the config's order.
#[derive(Clone, Debug)]
pub struct Grouped {
    /// The groups, as task indices.
    pub groups: Vec<Vec<usize>>,
    /// Each task's Δ% against its single-task model, trained with every task.
    pub all_in_one: Vec<TaskDelta>,
    /// The same, trained in its group.
    pub grouped: Vec<TaskDelta>,
    /// Δm% of the all-in-one model (None where undefined).
    pub delta_m_all: Option<f64>,
    /// Δm% of the grouping.
    pub delta_m_grouped: Option<f64>,
}

/// The config of one group: its tasks only, the other tasks' targets ignored (never features).
pub fn group_config(cfg: &Config, group: &[usize]) -> Config {
    let mut c = cfg.clone();
    c.tasks = group.iter().map(|&i| cfg.tasks[i].clone()).collect();
    for (i, t) in cfg.tasks.iter().enumerate() {
        if !group.contains(&i) && !c.raw.data.ignore.contains(&t.target) {
            c.raw.data.ignore.push(t.target.clone());
        }
    }
    c.groups = Vec::new();
    c
}

/// Trains one model per group of `cfg.groups` (with its own single-task baselines, on the same
/// rows) and sets them beside `all`, the all-in-one run with its baselines.
pub fn run_groups(ctx: &Arc<Context>, cfg: &Config, all: &Outcome, on_note: &mut dyn FnMut(&str)) -> Result<Grouped> {
    let (all_in_one, delta_m_all) =
        all.delta.clone().ok_or_else(|| Error::invalid("train.groups", "needs the all-in-one run's baselines"))?;
    let mut grouped = vec![TaskDelta { value: None, undefined: Vec::new() }; cfg.tasks.len()];
    for group in &cfg.groups {
        let c = group_config(cfg, group);
        let prepared = prepare(&c)?;
        let opts = RunOptions { baselines: true, ..Default::default() };
        let (out, _) = run(ctx, &c, &prepared, &opts, &mut |_| {}, on_note)?;
        let (deltas, _) = out.delta.ok_or_else(|| Error::invalid("train.groups", "a group ran without baselines"))?;
        for (k, &i) in group.iter().enumerate() {
            grouped[i] = deltas[k].clone();
        }
    }
    let delta_m_grouped = delta_m(&grouped);
    Ok(Grouped { groups: cfg.groups.clone(), all_in_one, grouped, delta_m_all, delta_m_grouped })
}
