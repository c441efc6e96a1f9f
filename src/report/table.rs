//! The tables a run prints: `train`'s results against the single-task baselines, and
//! `compare`'s Markdown table of methods.

use crate::data::Split;
use crate::experiment::Outcome;
use crate::mtl::metrics::{delta_metrics, shown_metrics, Metrics};
use crate::mtl::TaskDef;

/// `train`'s table: per task and metric on `split`, the multi-task value, the single-task
/// baseline and Δ%, then Δm% when baselines ran; then what is missing: held-out splits
/// without rows (`missing`) and metrics whose Δ is undefined.
pub fn results(tasks: &[TaskDef], out: &Outcome, split: Split, missing: &[Split]) -> String {
    let rep = &out.report;
    let metric_header = format!("{} metric", split.name());
    let mut s =
        format!("{:<12} {:<14} {:>12} {:>12} {:>9}\n", "task", metric_header, "multi-task", "single-task", "Δ%");
    for (t, task) in tasks.iter().enumerate() {
        for (k, name) in shown_metrics(task.kind).into_iter().enumerate() {
            let m = rep.metrics[t][split].get(name).copied().unwrap_or(f64::NAN);
            let b = out.baselines.as_ref().map(|b| b[t][split].get(name).copied().unwrap_or(f64::NAN));
            let d = out.delta.as_ref().map(|d| d.0[t].value);
            s += &format!(
                "{:<12} {:<14} {:>12.4} {:>12} {:>9}\n",
                if k == 0 { task.name.as_str() } else { "" },
                name,
                m,
                b.map_or("-".into(), |v| format!("{v:.4}")),
                match (k, d) {
                    (0, Some(Some(v))) => format!("{v:+.2}"),
                    (0, Some(None)) => "undefined".into(),
                    (0, None) => "-".into(),
                    _ => String::new(),
                }
            );
        }
    }
    if let Some((per, dm)) = &out.delta {
        match dm {
            Some(dm) => s += &format!("Δm% (multi-task vs single-task, {}): {dm:+.2}\n", split.name()),
            None => s += &format!("Δm% (multi-task vs single-task, {}): undefined\n", split.name()),
        }
        for (task, d) in tasks.iter().zip(per) {
            for m in &d.undefined {
                s += &format!("Δ% of {} leaves out {m}: its single-task value is 0 or missing\n", task.name);
            }
        }
    }
    let note = match (missing.contains(&Split::Val), missing.contains(&Split::Test)) {
        (true, true) => Some("no val or test split: metrics on the training rows; no early stopping"),
        (true, false) => Some("no val split: no early stopping (the last epoch's parameters are kept)"),
        (false, true) => Some("no test split: metrics on the validation rows"),
        (false, false) => None,
    };
    if let Some(note) = note {
        s += note;
        s.push('\n');
    }
    s
}

/// `compare`'s Markdown table: one column per (task, metric) on one split.
pub struct CompareTable {
    columns: Vec<(usize, &'static str)>,
    header: Vec<String>,
    split: Split,
}

impl CompareTable {
    /// The table for these tasks on `split`.
    pub fn new(tasks: &[TaskDef], split: Split) -> CompareTable {
        let columns: Vec<(usize, &'static str)> = tasks
            .iter()
            .enumerate()
            .flat_map(|(t, task)| delta_metrics(task.kind).iter().map(move |(m, _)| (t, *m)))
            .collect();
        let header = columns.iter().map(|(t, m)| format!("{} {m}", tasks[*t].name)).collect();
        CompareTable { columns, header, split }
    }

    /// The header and separator lines.
    pub fn head(&self) -> String {
        format!(
            "| method | {} | Δm% | s/epoch | epochs |\n|---|{}---|---|---|",
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        )
    }

    /// One method's row.
    pub fn row(
        &self,
        name: &str,
        metrics: &[[Metrics; 3]],
        delta_m: Option<f64>,
        seconds_per_epoch: Option<f64>,
        epochs: Option<usize>,
    ) -> String {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|(t, m)| format!("{:.4}", metrics[*t][self.split].get(*m).copied().unwrap_or(f64::NAN)))
            .collect();
        format!(
            "| {name} | {} | {} | {} | {} |",
            cells.join(" | "),
            delta_m.map_or("–".into(), |v| format!("{v:+.2}")),
            seconds_per_epoch.map_or("–".into(), |v| format!("{v:.3}")),
            epochs.map_or("–".into(), |v| v.to_string())
        )
    }
}
