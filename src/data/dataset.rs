//! A dataset in memory: a feature matrix and, per task, labels with a presence mask.

use super::table::Table;
use crate::error::{Error, Result};
use crate::mtl::task::{TaskDef, TaskKind};

/// Rows of features with per-task labels and masks (mask 0: label missing).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Row-major features `[rows, features]`.
    pub features: Vec<f32>,
    /// Per task, one label per row (0 where missing).
    pub labels: Vec<Vec<f32>>,
    /// Per task, 1 where the row has a label, else 0.
    pub masks: Vec<Vec<f32>>,
    /// Per row, the group key (rows of one group stay in one split), when grouping.
    pub groups: Option<Vec<String>>,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.first().map_or_else(|| self.features.len() / self.width().max(1), Vec::len)
    }

    /// Number of features.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// A dataset from memory: `features` row-major with `names.len()` columns, per task
    /// labels and masks of one value per row.
    pub fn from_slices(
        names: Vec<String>,
        features: Vec<f32>,
        labels: Vec<Vec<f32>>,
        masks: Vec<Vec<f32>>,
    ) -> Result<Dataset> {
        let w = names.len();
        if w == 0 || features.len() % w != 0 {
            return Err(Error::shape("dataset", format!("{} feature values for {w} columns", features.len())));
        }
        let n = features.len() / w;
        if labels.len() != masks.len() {
            return Err(Error::shape("dataset", "one mask per task"));
        }
        for (t, (l, m)) in labels.iter().zip(&masks).enumerate() {
            if l.len() != n || m.len() != n {
                return Err(Error::shape(
                    "dataset",
                    format!("task {t}: {} labels, {} masks for {n} rows", l.len(), m.len()),
                ));
            }
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "dataset",
                format!("feature value {} (row {}, column {}) is not finite", features[i], i / w, names[i % w]),
            ));
        }
        Ok(Dataset { feature_names: names, features, labels, masks, groups: None })
    }

    /// Checks every present label against its task, as [`Dataset::from_table`] does for a
    /// file: finite regression targets, binary labels of 0 or 1, class labels that are whole
    /// numbers in 0..classes (a larger one would make the loss kernel read the next row's
    /// logits). The error names the task and the row. The trainer and the evaluator check
    /// every dataset they are given, so data built with [`Dataset::from_slices`] is checked
    /// too.
    pub fn check_labels(&self, tasks: &[TaskDef]) -> Result<()> {
        if tasks.len() != self.labels.len() {
            return Err(Error::shape(
                "dataset",
                format!("{} tasks for {} label columns", tasks.len(), self.labels.len()),
            ));
        }
        for (task, (labels, masks)) in tasks.iter().zip(self.labels.iter().zip(&self.masks)) {
            let bad =
                |r: usize, why: String| Error::invalid(format!("task {:?}", task.name), format!("row {r}: {why}"));
            for (r, (&v, &m)) in labels.iter().zip(masks).enumerate() {
                if m == 0.0 {
                    continue;
                }
                match task.kind {
                    TaskKind::Regression if !v.is_finite() => return Err(bad(r, format!("target {v} is not finite"))),
                    TaskKind::Binary if v != 0.0 && v != 1.0 => {
                        return Err(bad(r, format!("binary label {v} (expected 0 or 1)")))
                    }
                    TaskKind::Multiclass => {
                        let k = task.classes();
                        if v.fract() != 0.0 || v < 0.0 || v >= k as f32 {
                            let last = k.saturating_sub(1);
                            return Err(bad(r, format!("class label {v} is out of range 0..{last}")));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Reads features and task labels from a table. `features`: the feature columns (None:
    /// every column that is no target, not ignored and not the group); an empty target cell is
    /// a missing label; class labels must be integers in 0..classes.
    pub fn from_table(
        table: &Table,
        features: Option<&[String]>,
        ignore: &[String],
        tasks: &[TaskDef],
        group: Option<&str>,
    ) -> Result<Dataset> {
        let mut target_cols = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            target_cols.push(table.column(&t.target, &format!("task[{i}].target"))?);
        }
        for name in ignore {
            table.column(name, "data.ignore")?;
        }
        let group_col = match group {
            Some(g) => Some(table.column(g, "data.group")?),
            None => None,
        };
        let feature_cols: Vec<usize> = match features {
            Some(list) => {
                let mut cols = Vec::new();
                for f in list {
                    let c = table.column(f, "data.features")?;
                    if target_cols.contains(&c) {
                        return Err(Error::Data {
                            file: table.file.clone(),
                            line: None,
                            column: Some(f.clone()),
                            message: "a target column cannot be a feature".into(),
                        });
                    }
                    cols.push(c);
                }
                cols
            }
            None => (0..table.header.len())
                .filter(|c| !target_cols.contains(c) && Some(*c) != group_col && !ignore.contains(&table.header[*c]))
                .collect(),
        };
        if feature_cols.is_empty() {
            return Err(Error::Data {
                file: table.file.clone(),
                line: None,
                column: None,
                message: "no feature columns are left".into(),
            });
        }
        let n = table.rows.len();
        let mut feats = Vec::with_capacity(n * feature_cols.len());
        for r in 0..n {
            for &c in &feature_cols {
                feats.push(table.number(r, c)?);
            }
        }
        let mut labels = Vec::new();
        let mut masks = Vec::new();
        for (t, task) in tasks.iter().enumerate() {
            let c = target_cols[t];
            let mut l = vec![0.0; n];
            let mut m = vec![0.0; n];
            for r in 0..n {
                if table.rows[r][c].is_empty() {
                    continue;
                }
                let v = table.number(r, c)?;
                match task.kind {
                    TaskKind::Regression => {}
                    TaskKind::Binary => {
                        if v != 0.0 && v != 1.0 {
                            return Err(table.cell_error(r, c, format!("binary label {v} (expected 0 or 1)")));
                        }
                    }
                    TaskKind::Multiclass => {
                        let k = task.classes();
                        if v.fract() != 0.0 || v < 0.0 || v >= k as f32 {
                            return Err(table.cell_error(
                                r,
                                c,
                                format!(
                                    "class label {v} is out of range 0..{} (task {:?})",
                                    k.saturating_sub(1),
                                    task.name
                                ),
                            ));
                        }
                    }
                }
                l[r] = v;
                m[r] = 1.0;
            }
            labels.push(l);
            masks.push(m);
        }
        let groups = group_col.map(|g| table.rows.iter().map(|row| row[g].clone()).collect());
        Ok(Dataset {
            feature_names: feature_cols.iter().map(|&c| table.header[c].clone()).collect(),
            features: feats,
            labels,
            masks,
            groups,
        })
    }

    /// The rows `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let w = self.width();
        let mut features = Vec::with_capacity(idx.len() * w);
        for &i in idx {
            features.extend_from_slice(&self.features[i * w..(i + 1) * w]);
        }
        Dataset {
            feature_names: self.feature_names.clone(),
            features,
            labels: self.labels.iter().map(|l| idx.iter().map(|&i| l[i]).collect()).collect(),
            masks: self.masks.iter().map(|m| idx.iter().map(|&i| m[i]).collect()).collect(),
            groups: self.groups.as_ref().map(|g| idx.iter().map(|&i| g[i].clone()).collect()),
        }
    }

    /// Keeps only the tasks `keep` (by index), in that order.
    pub fn select_tasks(&self, keep: &[usize]) -> Dataset {
        Dataset {
            feature_names: self.feature_names.clone(),
            features: self.features.clone(),
            labels: keep.iter().map(|&t| self.labels[t].clone()).collect(),
            masks: keep.iter().map(|&t| self.masks[t].clone()).collect(),
            groups: self.groups.clone(),
        }
    }
}
