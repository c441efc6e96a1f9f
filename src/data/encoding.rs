//! How raw columns become the model's inputs, fitted on the training rows and stored in the
//! checkpoint so `eval` and `predict` encode raw rows the same way: each categorical column's
//! vocabulary (its training categories, sorted; id 0 for any other value), and each numeric
//! column's training mean, which fills its missing cells, with a 0/1 "was missing" feature
//! (`{column}.missing`) for each column that had empty training cells.

use super::dataset::CatColumn;
use super::Dataset;
use crate::error::{Error, Result};

/// A categorical column's vocabulary: category k ≥ 1 is `levels[k − 1]`, 0 is unknown.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vocabulary {
    /// The column.
    pub column: String,
    /// Its training categories, sorted (an empty cell is the category "").
    pub levels: Vec<String>,
}

/// The encoding of a run's raw columns (see the module).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Encoding {
    /// The raw numeric feature columns, in order.
    pub numeric: Vec<String>,
    /// Each numeric column's training mean (over its present cells; 0 when it has none).
    pub means: Vec<f32>,
    /// The numeric columns (indices) with empty training cells: each gets a "was missing"
    /// feature, after the numeric ones, in this order.
    pub indicators: Vec<usize>,
    /// The categorical columns, in order.
    pub categorical: Vec<Vocabulary>,
    /// Whether empty numeric cells are imputed (else they are an error).
    #[serde(default)]
    pub impute: bool,
}

impl Encoding {
    /// Fits on the training rows (raw, as read); `impute` as `[data] impute = "mean"`.
    pub fn fit(train: &Dataset, impute: bool) -> Encoding {
        let w = train.width();
        let rows = train.features.len() / w.max(1);
        let mut means = vec![0f32; w];
        let mut indicators = Vec::new();
        for (c, mean) in means.iter_mut().enumerate() {
            let (mut sum, mut n, mut missing) = (0f64, 0usize, false);
            for r in 0..rows {
                let v = train.features[r * w + c];
                if v.is_nan() {
                    missing = true;
                } else {
                    sum += f64::from(v);
                    n += 1;
                }
            }
            *mean = if n > 0 { (sum / n as f64) as f32 } else { 0.0 };
            if missing {
                indicators.push(c);
            }
        }
        let categorical = train
            .categorical
            .iter()
            .map(|col| {
                let mut seen = vec![false; col.table_rows()];
                col.ids.iter().for_each(|&i| seen[i as usize] = true);
                let levels = (1..seen.len()).filter(|&k| seen[k]).map(|k| col.levels[k - 1].clone()).collect();
                Vocabulary { column: col.name.clone(), levels }
            })
            .collect();
        Encoding { numeric: train.feature_names.clone(), means, indicators, categorical, impute }
    }

    /// The names of the model's numeric inputs: the numeric columns, then the indicators.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.clone();
        names.extend(self.indicators.iter().map(|&c| format!("{}.missing", self.numeric[c])));
        names
    }

    /// Reads raw rows of a table as this encoding expects them (its numeric and categorical
    /// columns, and no task) and encodes them: what `predict` does with a CSV file.
    pub fn read(&self, table: &super::Table) -> Result<Dataset> {
        let features: Vec<String> =
            self.numeric.iter().cloned().chain(self.categorical.iter().map(|v| v.column.clone())).collect();
        let categorical: Vec<String> = self.categorical.iter().map(|v| v.column.clone()).collect();
        let columns = super::Columns {
            features: Some(&features),
            categorical: &categorical,
            fixed: true,
            impute: self.impute,
            ..super::Columns::default()
        };
        self.apply(&Dataset::read(table, &columns, &[])?)
    }

    /// Encodes raw rows read with the same columns: missing numeric cells take the training
    /// mean (with their indicator where the column has one), categories their vocabulary id.
    pub fn apply(&self, d: &Dataset) -> Result<Dataset> {
        let cats: Vec<&str> = d.categorical.iter().map(|c| c.name.as_str()).collect();
        let want: Vec<&str> = self.categorical.iter().map(|v| v.column.as_str()).collect();
        if d.feature_names != self.numeric || cats != want {
            return Err(Error::invalid(
                "data",
                format!(
                    "numeric columns {:?} and categorical {cats:?}, where the encoding has {:?} and {want:?}",
                    d.feature_names, self.numeric
                ),
            ));
        }
        let (w, extra) = (self.numeric.len(), self.indicators.len());
        let rows = d.rows();
        let mut features = crate::error::host_vec(rows * (w + extra), 0f32, "the encoded features")?;
        for r in 0..rows {
            let (src, dst) = (&d.features[r * w..(r + 1) * w], &mut features[r * (w + extra)..(r + 1) * (w + extra)]);
            for c in 0..w {
                dst[c] = if src[c].is_nan() { self.means[c] } else { src[c] };
            }
            for (k, &c) in self.indicators.iter().enumerate() {
                dst[w + k] = if src[c].is_nan() { 1.0 } else { 0.0 };
            }
        }
        let categorical = d
            .categorical
            .iter()
            .zip(&self.categorical)
            .map(|(col, vocab)| {
                // Each of this data's categories → its vocabulary id (0: not seen in training).
                let map: Vec<u32> = std::iter::once(0)
                    .chain(col.levels.iter().map(|l| vocab.levels.binary_search(l).map_or(0, |k| k as u32 + 1)))
                    .collect();
                CatColumn {
                    name: col.name.clone(),
                    levels: vocab.levels.clone(),
                    ids: col.ids.iter().map(|&i| map[i as usize]).collect(),
                }
            })
            .collect();
        Ok(Dataset {
            feature_names: self.feature_names(),
            features,
            categorical,
            labels: d.labels.clone(),
            masks: d.masks.clone(),
            groups: d.groups.clone(),
        })
    }
}

/// The default width of a categorical column's embedding with `rows` table rows (its
/// categories and the unknown one): fast.ai's rule of thumb, min(600, round(1.6 · rows^0.56))
/// (`emb_sz_rule` in fastai's tabular model).
pub fn default_embedding_dim(rows: usize) -> usize {
    ((1.6 * (rows as f64).powf(0.56)).round() as usize).clamp(1, 600)
}
