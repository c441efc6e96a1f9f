//! Per-task metrics from model outputs (computed on the host from one readback per
//! evaluation), and the multi-task gain Δm% over single-task baselines.

use std::collections::BTreeMap;

use super::task::TaskKind;

/// Metric name → value, e.g. {"rmse": 0.5, "mae": 0.4, "r2": 0.9}.
pub type Metrics = BTreeMap<String, f64>;

/// Regression: rmse, mae, r2 over the rows with a label.
pub fn regression(pred: &[f64], y: &[f64]) -> Metrics {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (p, t) in pred.iter().zip(y) {
        se += (p - t) * (p - t);
        ae += (p - t).abs();
        tot += (t - mean) * (t - mean);
    }
    let mut m = Metrics::new();
    m.insert("rmse".into(), (se / n).sqrt());
    m.insert("mae".into(), ae / n);
    m.insert("r2".into(), if tot > 0.0 { 1.0 - se / tot } else { 0.0 });
    m
}

/// ROC-AUC by the rank statistic (ties get their average rank); 0.5 when one class is absent.
pub fn roc_auc(score: &[f64], y: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut ranks = vec![0.0; score.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    let rank_sum: f64 = ranks.iter().zip(y).filter(|(_, &v)| v == 1.0).map(|(r, _)| r).sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Binary: accuracy (logit > 0), auc, log_loss (the mean binary cross-entropy, from the
/// logits, stable).
pub fn binary(logit: &[f64], y: &[f64]) -> Metrics {
    let n = y.len().max(1) as f64;
    let acc = logit.iter().zip(y).filter(|(x, t)| (**x > 0.0) == (**t == 1.0)).count() as f64 / n;
    let bce = logit.iter().zip(y).map(|(x, t)| x.max(0.0) - x * t + (1.0 + (-x.abs()).exp()).ln()).sum::<f64>() / n;
    let mut m = Metrics::new();
    m.insert("accuracy".into(), acc);
    m.insert("auc".into(), roc_auc(logit, y));
    m.insert("log_loss".into(), bce);
    m
}

/// Multiclass: accuracy (argmax), cross_entropy; `logits` row-major `[rows, classes]`.
pub fn multiclass(logits: &[f64], classes: usize, y: &[f64]) -> Metrics {
    let n = y.len();
    let (mut correct, mut ce) = (0usize, 0.0);
    for r in 0..n {
        let row = &logits[r * classes..(r + 1) * classes];
        let label = y[r] as usize;
        let (arg, mx) =
            row.iter().enumerate().fold((0, f64::NEG_INFINITY), |(a, m), (i, &v)| if v > m { (i, v) } else { (a, m) });
        correct += usize::from(arg == label);
        let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        ce += lse - row[label];
    }
    let nf = n.max(1) as f64;
    let mut m = Metrics::new();
    m.insert("accuracy".into(), correct as f64 / nf);
    m.insert("cross_entropy".into(), ce / nf);
    m
}

/// Metrics of one task from its outputs `[rows, outputs]`, labels and mask. Regression outputs
/// and labels are in original units here.
pub fn task_metrics(kind: TaskKind, outputs: &[f32], width: usize, labels: &[f32], mask: &[f32]) -> Metrics {
    let rows: Vec<usize> = (0..labels.len()).filter(|&r| mask[r] != 0.0).collect();
    let y: Vec<f64> = rows.iter().map(|&r| f64::from(labels[r])).collect();
    let out: Vec<f64> =
        rows.iter().flat_map(|&r| outputs[r * width..(r + 1) * width].iter().map(|&v| f64::from(v))).collect();
    match kind {
        TaskKind::Regression => regression(&out, &y),
        TaskKind::Binary => binary(&out, &y),
        TaskKind::Multiclass => multiclass(&out, width, &y),
    }
}

/// The metrics Δm% averages for a task kind, each with whether lower is better.
pub fn delta_metrics(kind: TaskKind) -> &'static [(&'static str, bool)] {
    match kind {
        TaskKind::Regression => &[("rmse", true), ("mae", true)],
        TaskKind::Binary => &[("accuracy", false), ("auc", false)],
        TaskKind::Multiclass => &[("accuracy", false)],
    }
}

/// The metrics `train`'s table shows for a task kind: those of Δm% ([`delta_metrics`]), then,
/// for a binary task, its log loss.
pub fn shown_metrics(kind: TaskKind) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = delta_metrics(kind).iter().map(|m| m.0).collect();
    if kind == TaskKind::Binary {
        v.push("log_loss");
    }
    v
}

/// One task's Δ%, with the metrics it had to leave out.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDelta {
    /// The mean over the task's defined metrics; None when none is defined.
    pub value: Option<f64>,
    /// Metrics whose relative change is undefined: a single-task value of zero (or not
    /// finite), or a value missing on either side.
    pub undefined: Vec<&'static str>,
}

/// Δ% of one task: mean over its metrics of (−1)^{lower is better}·(M − B)/B·100
/// (LibMTL's count_improvement; Maninis et al. 2019). Positive: multi-task helps. A metric
/// whose baseline B is zero has no relative change: it is left out and named, never turned
/// into an infinity or a NaN.
pub fn task_delta(kind: TaskKind, mtl: &Metrics, stl: &Metrics) -> TaskDelta {
    let mut sum = 0.0;
    let mut n = 0;
    let mut undefined = Vec::new();
    for (name, lower) in delta_metrics(kind) {
        match (mtl.get(*name), stl.get(*name)) {
            (Some(&m), Some(&b)) if b != 0.0 && b.is_finite() && m.is_finite() => {
                let sign = if *lower { -1.0 } else { 1.0 };
                sum += sign * (m - b) / b * 100.0;
                n += 1;
            }
            _ => undefined.push(*name),
        }
    }
    TaskDelta { value: (n > 0).then(|| sum / n as f64), undefined }
}

/// Δm%: the mean of the tasks' Δ% where defined; None when no task's is.
pub fn delta_m(per_task: &[TaskDelta]) -> Option<f64> {
    let defined: Vec<f64> = per_task.iter().filter_map(|d| d.value).collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_metrics_on_a_known_case() {
        let m = regression(&[1.0, 2.0, 3.0, 5.0], &[1.0, 2.0, 3.0, 4.0]);
        assert!(approx::abs_diff_eq!(m["rmse"], 0.5, epsilon = 1e-12));
        assert!(approx::abs_diff_eq!(m["mae"], 0.25, epsilon = 1e-12));
        assert!(approx::abs_diff_eq!(m["r2"], (1.0 - 1.0 / 5.0), epsilon = 1e-12));
    }

    #[test]
    fn auc_counts_ordered_pairs_with_ties_as_half() {
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75);
        assert_eq!(roc_auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
        assert_eq!(roc_auc(&[1.0, 2.0], &[0.0, 1.0]), 1.0);
    }

    #[test]
    fn multiclass_accuracy_and_cross_entropy() {
        let logits = [2.0, 0.0, 0.0, 0.0, 3.0, 0.0];
        let m = multiclass(&logits, 3, &[0.0, 2.0]);
        assert_eq!(m["accuracy"], 0.5);
        let lse1 = (2f64.exp() + 2.0).ln();
        let lse2 = (3f64.exp() + 2.0).ln();
        assert!(approx::abs_diff_eq!(m["cross_entropy"], ((lse1 - 2.0) + lse2) / 2.0, epsilon = 1e-12));
    }

    #[test]
    fn delta_m_sign_follows_the_metric_direction() {
        let stl: Metrics = [("rmse".to_string(), 2.0), ("mae".to_string(), 1.0)].into();
        let better: Metrics = [("rmse".to_string(), 1.0), ("mae".to_string(), 0.5)].into();
        assert_eq!(task_delta(TaskKind::Regression, &better, &stl).value, Some(50.0));
        let acc_b: Metrics = [("accuracy".to_string(), 0.5)].into();
        let acc_m: Metrics = [("accuracy".to_string(), 0.6)].into();
        assert!(approx::abs_diff_eq!(
            task_delta(TaskKind::Multiclass, &acc_m, &acc_b).value.unwrap(),
            20.0,
            epsilon = 1e-9
        ));
    }

    #[test]
    fn a_zero_baseline_leaves_its_metric_out_of_delta_m_by_name() {
        let stl: Metrics = [("rmse".to_string(), 2.0), ("mae".to_string(), 0.0)].into();
        let mtl: Metrics = [("rmse".to_string(), 1.0), ("mae".to_string(), 0.5)].into();
        let d = task_delta(TaskKind::Regression, &mtl, &stl);
        assert_eq!(d, TaskDelta { value: Some(50.0), undefined: vec!["mae"] });
        // A task with no defined metric has no Δ%, and Δm% is over the others.
        let acc0: Metrics = [("accuracy".to_string(), 0.0)].into();
        let none = task_delta(TaskKind::Multiclass, &acc0, &acc0);
        assert_eq!(none.value, None);
        assert_eq!(delta_m(&[d.clone(), none.clone()]), Some(50.0));
        assert_eq!(delta_m(&[none]), None);
        // Missing metrics (an empty split) are undefined too, never a panic.
        let empty = Metrics::new();
        assert_eq!(task_delta(TaskKind::Regression, &empty, &stl).undefined, vec!["rmse", "mae"]);
    }
}
