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
        let run = SeedRun { metrics: metrics.to_vec(), delta_m, seconds_per_epoch, epochs };
        self.row_over_seeds(name, std::slice::from_ref(&run))
    }

    /// One method's row over several seeds: each cell the mean ± the standard deviation (the
    /// sample's, n − 1) of the seeds' values; with one seed, the value alone.
    pub fn row_over_seeds(&self, name: &str, runs: &[SeedRun]) -> String {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|(t, m)| {
                let v: Vec<f64> =
                    runs.iter().map(|r| r.metrics[*t][self.split].get(*m).copied().unwrap_or(f64::NAN)).collect();
                spread(&v, |x| format!("{x:.4}"))
            })
            .collect();
        let dm: Option<Vec<f64>> = runs.iter().map(|r| r.delta_m).collect();
        let secs: Option<Vec<f64>> = runs.iter().map(|r| r.seconds_per_epoch).collect();
        let epochs: Option<Vec<f64>> = runs.iter().map(|r| r.epochs.map(|e| e as f64)).collect();
        format!(
            "| {name} | {} | {} | {} | {} |",
            cells.join(" | "),
            dm.map_or("–".into(), |v| spread(&v, |x| format!("{x:+.2}"))),
            secs.map_or("–".into(), |v| format!("{:.3}", v.iter().sum::<f64>() / v.len() as f64)),
            epochs.map_or("–".into(), |v| match v.len() {
                1 => format!("{}", v[0]),
                n => format!("{:.1}", v.iter().sum::<f64>() / n as f64),
            })
        )
    }
}

/// One seed's results for a row of the comparison.
#[derive(Clone, Debug)]
pub struct SeedRun {
    /// Per task, the metrics on train, val and test.
    pub metrics: Vec<[Metrics; 3]>,
    /// Δm% against that seed's single-task baselines.
    pub delta_m: Option<f64>,
    /// Seconds per epoch.
    pub seconds_per_epoch: Option<f64>,
    /// Epochs run.
    pub epochs: Option<usize>,
}

/// `fmt(value)` for one value; `fmt(mean) ± fmt(std)` (sample standard deviation) for more.
fn spread(v: &[f64], fmt: impl Fn(f64) -> String) -> String {
    if v.len() == 1 {
        return fmt(v[0]);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{} ± {}", fmt(mean), fmt(var.sqrt()).trim_start_matches('+'))
}

/// The negative-transfer report of a run with baselines and affinity probes: per task, its Δ%
/// against its single-task model, the mean lookahead affinity it received from the other
/// tasks, and the share of probes in which its gradient conflicted (cosine < 0) with each
/// other task's, so a task that is hurt shows by whom.
pub fn negative_transfer(
    tasks: &[TaskDef],
    deltas: &[crate::mtl::metrics::TaskDelta],
    aff: &crate::mtl::affinity::Affinity,
) -> String {
    let t = tasks.len();
    let received = aff.received();
    let conflicts = aff.conflict_share();
    let z = aff.mean();
    let pct = |x: f64| if x.is_finite() { format!("{:.0}%", 100.0 * x) } else { "–".into() };
    let num = |x: f64| if x.is_finite() { format!("{x:+.5}") } else { "–".into() };
    let mut s = format!(
        "\nnegative transfer ({} probes): Δ% against the single-task model, the mean lookahead affinity\n\
         received, and per other task its affinity onto this one and the share of probes in which\n\
         their gradients conflicted (cosine < 0)\n",
        aff.probes
    );
    for (j, task) in tasks.iter().enumerate() {
        let d = deltas.get(j).and_then(|d| d.value).map_or("–".into(), |v| format!("{v:+.2}"));
        let others: Vec<String> = (0..t)
            .filter(|&i| i != j)
            .map(|i| format!("{}: {} ({} conflicting)", tasks[i].name, num(z[i * t + j]), pct(conflicts[i * t + j])))
            .collect();
        let hurt = if deltas.get(j).and_then(|d| d.value).is_some_and(|v| v < 0.0) { "  ← hurt" } else { "" };
        s.push_str(&format!(
            "{:<12} Δ% {:>7}  received {}  from {}{hurt}\n",
            task.name,
            d,
            num(received[j]),
            others.join(", ")
        ));
    }
    s
}

/// `[train] groups` against all-in-one: per task, its Δ% against its single-task model when
/// trained with every task and in its group, and both Δm%.
pub fn grouping(tasks: &[TaskDef], g: &crate::experiment::groups::Grouped) -> String {
    let show = |d: &crate::mtl::metrics::TaskDelta| d.value.map_or("–".into(), |v| format!("{v:+.2}"));
    let m = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:+.2}"));
    let names: Vec<String> = g
        .groups
        .iter()
        .map(|grp| format!("[{}]", grp.iter().map(|&i| tasks[i].name.as_str()).collect::<Vec<_>>().join(", ")))
        .collect();
    let mut s = format!("\ngrouping {} (Δ% against each task's single-task model):\n", names.join(" "));
    s.push_str(&format!("{:<12} {:>11} {:>9}\n", "task", "all-in-one", "grouped"));
    for (t, task) in tasks.iter().enumerate() {
        s.push_str(&format!("{:<12} {:>11} {:>9}\n", task.name, show(&g.all_in_one[t]), show(&g.grouped[t])));
    }
    s.push_str(&format!("Δm% all-in-one {}, grouped {}\n", m(g.delta_m_all), m(g.delta_m_grouped)));
    s
}
