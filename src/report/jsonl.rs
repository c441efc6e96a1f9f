//! One JSON object per evaluation, keyed by task name (`hydra train --log`).

use serde_json::{json, Map, Value};

use crate::train::EvalRecord;

/// The JSON line of one evaluation: epoch, step, per-task train, validation and test losses
/// and metrics, task weights, gradient norms, the pairwise gradient cosines as a nested
/// object (`grad_cosines[a][b]`), and with `[train] affinity_every` the lookahead affinity so far
/// (`affinity[a][b]` = Z[a→b]: how much a step on task a's gradient lowers task b's loss).
pub fn record(names: &[String], r: &EvalRecord) -> Value {
    let by_task = |v: Vec<Value>| -> Map<String, Value> { names.iter().cloned().zip(v).collect() };
    let floats = |v: &[f64]| by_task(v.iter().map(|&x| x.into()).collect());
    let matrix = |m: &[f64]| -> Map<String, Value> {
        names
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let row: Map<String, Value> = names
                    .iter()
                    .enumerate()
                    .filter_map(|(j, b)| m.get(i * names.len() + j).map(|&c| (b.clone(), finite(c))))
                    .collect();
                (a.clone(), Value::Object(row))
            })
            .collect()
    };
    let mut v = json!({
        "epoch": r.epoch,
        "step": r.step,
        "train_loss": floats(&r.train_loss),
        "val_loss": floats(&r.val_loss),
        "val_metrics": by_task(r.val_metrics.iter().map(|m| json!(m)).collect()),
        "test_loss": floats(&r.test_loss),
        "test_metrics": by_task(r.test_metrics.iter().map(|m| json!(m)).collect()),
        "weights": by_task(r.weights.iter().map(|&v| v.into()).collect()),
        "grad_norms": floats(&r.grad_norms),
        "grad_cosines": matrix(&r.grad_cosines),
    });
    if !r.affinity.is_empty() {
        v["affinity"] = Value::Object(matrix(&r.affinity));
    }
    v
}

/// A number, or null where it is not finite (JSON has no NaN).
fn finite(x: f64) -> Value {
    if x.is_finite() {
        x.into()
    } else {
        Value::Null
    }
}
