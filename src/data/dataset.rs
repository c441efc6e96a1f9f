//! A dataset in memory: a feature matrix and, per task, labels with a presence mask.

use super::table::Table;
use crate::error::{Error, Result};
use crate::mtl::task::{TaskDef, TaskKind};

/// A categorical column: each row's category as an id, 0 for a value never seen in
/// training ("unknown") and k ≥ 1 for `levels[k − 1]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatColumn {
    /// The column.
    pub name: String,
    /// The categories, sorted (byte order; an empty cell is the category "").
    pub levels: Vec<String>,
    /// Per row, its category's id.
    pub ids: Vec<u32>,
}

impl CatColumn {
    /// Rows of its embedding table: the categories and the unknown one.
    pub fn table_rows(&self) -> usize {
        self.levels.len() + 1
    }
}

/// Which columns of a table to read, and how ([`Dataset::read`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Columns<'a> {
    /// The feature columns (None: every column that is no target, not ignored and not the
    /// group).
    pub features: Option<&'a [String]>,
    /// Columns to leave out.
    pub ignore: &'a [String],
    /// Columns to read as categories even where every cell is a number (ids, codes). A
    /// feature column with a cell that is not a number is categorical anyway.
    pub categorical: &'a [String],
    /// Whether the categorical columns are exactly those of `categorical` (a text cell in
    /// another column is then an error), rather than those and every column with a cell that
    /// is not a number.
    pub fixed: bool,
    /// Whether an empty numeric feature cell is missing (NaN, for [`super::Encoding`] to
    /// impute) rather than an error.
    pub impute: bool,
    /// The group column (rows of one group stay in one split).
    pub group: Option<&'a str>,
}

/// Rows of features with per-task labels and masks (mask 0: label missing).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Numeric feature names, in column order.
    pub feature_names: Vec<String>,
    /// Row-major numeric features `[rows, features]` (NaN where a cell is missing, until
    /// [`super::Encoding::apply`] imputes it).
    pub features: Vec<f32>,
    /// Categorical features, in column order: the model embeds them after the numeric ones.
    pub categorical: Vec<CatColumn>,
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
        match (self.labels.first(), self.categorical.first()) {
            (Some(l), _) => l.len(),
            (None, Some(c)) if self.width() == 0 => c.ids.len(),
            _ => self.features.len() / self.width().max(1),
        }
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
        Ok(Dataset { feature_names: names, features, categorical: vec![], labels, masks, groups: None })
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

    /// Reads features and task labels from a table, every feature column numeric unless a
    /// cell says otherwise ([`Dataset::read`] with `columns` of `features`, `ignore` and
    /// `group`).
    pub fn from_table(
        table: &Table,
        features: Option<&[String]>,
        ignore: &[String],
        tasks: &[TaskDef],
        group: Option<&str>,
    ) -> Result<Dataset> {
        Self::read(table, &Columns { features, ignore, group, ..Columns::default() }, tasks)
    }

    /// Reads features and task labels from a table. A feature column is categorical when
    /// `columns.categorical` names it or one of its cells is not a number; an empty target
    /// cell is a missing label; class labels must be integers in 0..classes.
    pub fn read(table: &Table, columns: &Columns<'_>, tasks: &[TaskDef]) -> Result<Dataset> {
        // A task without a loss of its own (a product's factor) may have no target column: it
        // then has no labels (usize::MAX).
        let mut target_cols = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            let missing = !t.own_loss && !table.header.contains(&t.target);
            target_cols.push(match missing {
                true => usize::MAX,
                false => table.column(&t.target, &format!("task[{i}].target"))?,
            });
        }
        for name in columns.ignore {
            table.column(name, "data.ignore")?;
        }
        let group_col = match columns.group {
            Some(g) => Some(table.column(g, "data.group")?),
            None => None,
        };
        let feature_cols = feature_columns(table, columns, &target_cols, group_col)?;
        for name in columns.categorical {
            let c = table.column(name, "data.categorical")?;
            if target_cols.contains(&c) {
                return Err(table_err(table, name, "a target column cannot be a categorical feature"));
            }
        }
        let n = table.len();
        let is_cat = |c: usize| {
            columns.categorical.contains(&table.header[c])
                || (!columns.fixed && table.column_cells(c).any(|v| !v.is_empty() && v.parse::<f32>().is_err()))
        };
        let (cat_cols, num_cols): (Vec<usize>, Vec<usize>) = feature_cols.iter().partition(|&&c| is_cat(c));
        let mut feats = crate::error::host_vec(n * num_cols.len(), 0f32, "the features")?;
        for r in 0..n {
            for (k, &c) in num_cols.iter().enumerate() {
                feats[r * num_cols.len() + k] = match table.cell(r, c).is_empty() && columns.impute {
                    true => f32::NAN,
                    false => table.number(r, c)?,
                };
            }
        }
        let categorical = cat_cols.iter().map(|&c| categories(table, c)).collect();
        let (labels, masks) = read_labels(table, tasks, &target_cols)?;
        let groups = group_col.map(|g| table.column_cells(g).map(str::to_string).collect());
        Ok(Dataset {
            feature_names: num_cols.iter().map(|&c| table.header[c].clone()).collect(),
            features: feats,
            categorical,
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
            categorical: self
                .categorical
                .iter()
                .map(|c| CatColumn { ids: idx.iter().map(|&i| c.ids[i]).collect(), ..c.clone() })
                .collect(),
            masks: self.masks.iter().map(|m| idx.iter().map(|&i| m[i]).collect()).collect(),
            groups: self.groups.as_ref().map(|g| idx.iter().map(|&i| g[i].clone()).collect()),
        }
    }

    /// Keeps only the tasks `keep` (by index), in that order.
    pub fn select_tasks(&self, keep: &[usize]) -> Dataset {
        Dataset {
            feature_names: self.feature_names.clone(),
            features: self.features.clone(),
            categorical: self.categorical.clone(),
            labels: keep.iter().map(|&t| self.labels[t].clone()).collect(),
            masks: keep.iter().map(|&t| self.masks[t].clone()).collect(),
            groups: self.groups.clone(),
        }
    }
}

fn table_err(table: &Table, column: &str, message: &str) -> Error {
    Error::Data { file: table.file.clone(), line: None, column: Some(column.to_string()), message: message.into() }
}

/// The feature columns of `table`: those named, or every column that is no target, not
/// ignored and not the group.
fn feature_columns(
    table: &Table,
    columns: &Columns<'_>,
    target_cols: &[usize],
    group_col: Option<usize>,
) -> Result<Vec<usize>> {
    let cols: Vec<usize> = match columns.features {
        Some(list) => {
            let mut cols = Vec::new();
            for f in list {
                let c = table.column(f, "data.features")?;
                if target_cols.contains(&c) {
                    return Err(table_err(table, f, "a target column cannot be a feature"));
                }
                cols.push(c);
            }
            cols
        }
        None => (0..table.header.len())
            .filter(|c| {
                !target_cols.contains(c) && Some(*c) != group_col && !columns.ignore.contains(&table.header[*c])
            })
            .collect(),
    };
    if cols.is_empty() {
        return Err(Error::Data {
            file: table.file.clone(),
            line: None,
            column: None,
            message: "no feature columns are left".into(),
        });
    }
    Ok(cols)
}

/// Column `c` as categories: its distinct values sorted, each row's id (1-based).
fn categories(table: &Table, c: usize) -> CatColumn {
    let distinct: std::collections::BTreeSet<&str> = table.column_cells(c).collect();
    let levels: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    let ids = table
        .column_cells(c)
        .map(|v| levels.binary_search_by(|l| l.as_str().cmp(v)).map_or(0, |k| k as u32 + 1))
        .collect();
    CatColumn { name: table.header[c].clone(), levels, ids }
}

/// Per task, one value per row: labels, or masks.
type PerTask = Vec<Vec<f32>>;

/// Each task's labels and masks from its target column.
fn read_labels(table: &Table, tasks: &[TaskDef], target_cols: &[usize]) -> Result<(PerTask, PerTask)> {
    let n = table.len();
    let mut labels = Vec::new();
    let mut masks = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        let c = target_cols[t];
        let mut l = vec![0.0; n];
        let mut m = vec![0.0; n];
        for r in (0..n).filter(|_| c != usize::MAX) {
            let cell = table.cell(r, c);
            if cell.is_empty() {
                continue;
            }
            let v = if task.labels.is_empty() {
                table.number(r, c)?
            } else {
                let k = task.labels.iter().position(|l| l == cell).ok_or_else(|| {
                    table.cell_error(
                        r,
                        c,
                        format!("label {cell:?} is not one of {:?} (task {:?})", task.labels, task.name),
                    )
                })?;
                k as f32
            };
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
    Ok((labels, masks))
}
