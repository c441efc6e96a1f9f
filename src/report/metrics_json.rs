//! The final metrics document (`hydra train --metrics-json`):
//! `{"tasks": {"<name>": {"<split>": {"rmse": …}, "single_task": {…}, "delta": …}}, "delta_m": …}`.

use serde_json::{json, Map, Value};

use crate::data::Split;
use crate::experiment::Outcome;
use crate::mtl::TaskDef;

/// The document of a finished run; `split` is the one baselines and Δm% are reported on.
pub fn document(tasks: &[TaskDef], out: &Outcome, split: Split, seconds: f64) -> Value {
    let rep = &out.report;
    let mut by_task = Map::new();
    for (t, task) in tasks.iter().enumerate() {
        let mut per = Map::new();
        for s in Split::ALL {
            if !rep.metrics[t][s].is_empty() {
                per.insert(s.name().into(), json!(rep.metrics[t][s]));
            }
        }
        if let Some(b) = &out.baselines {
            per.insert("single_task".into(), json!({ split.name(): b[t][split] }));
        }
        if let Some((deltas, _)) = &out.delta {
            per.insert("delta".into(), json!(deltas[t].value));
        }
        by_task.insert(task.name.clone(), Value::Object(per));
    }
    json!({
        "tasks": by_task,
        "delta_m": out.delta.as_ref().and_then(|d| d.1),
        "steps": rep.steps,
        "best_epoch": rep.best_epoch,
        "seconds": seconds,
    })
}
