//! Train/validation/test splits (seeded shuffles, optionally keeping groups together) and
//! z-score standardisation fitted on the training rows.

use super::dataset::Dataset;
use crate::error::{Error, Result};
pub use crate::rng::shuffle;
use crate::rng::Rng;

/// Splits `n` rows by `fractions` (train, val, test; summing to 1) after a seeded shuffle.
/// With `groups`, whole groups are assigned (shuffled group order, cut by row count).
pub fn split_rows(n: usize, fractions: [f64; 3], seed: u64, groups: Option<&[String]>) -> Result<[Vec<usize>; 3]> {
    let sum: f64 = fractions.iter().sum();
    if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) || (sum - 1.0).abs() > 1e-6 {
        return Err(Error::invalid(
            "data.split",
            format!("{fractions:?} must be three fractions in [0, 1] summing to 1 (sum is {sum})"),
        ));
    }
    let mut rng = Rng::new(seed);
    // Units: single rows, or groups of rows in first-seen order.
    let mut units: Vec<Vec<usize>> = match groups {
        None => (0..n).map(|i| vec![i]).collect(),
        Some(g) => {
            let mut keys: Vec<&String> = Vec::new();
            let mut members: Vec<Vec<usize>> = Vec::new();
            for (i, k) in g.iter().enumerate() {
                match keys.iter().position(|x| *x == k) {
                    Some(p) => members[p].push(i),
                    None => {
                        keys.push(k);
                        members.push(vec![i]);
                    }
                }
            }
            members
        }
    };
    shuffle(&mut units, &mut rng);
    let cut1 = (fractions[0] * n as f64).round() as usize;
    let cut2 = ((fractions[0] + fractions[1]) * n as f64).round() as usize;
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    let mut taken = 0;
    for u in units {
        let s = if taken < cut1 {
            0
        } else if taken < cut2 {
            1
        } else {
            2
        };
        taken += u.len();
        out[s].extend(u);
    }
    if out[0].is_empty() {
        return Err(Error::invalid("data.split", "the training split is empty"));
    }
    Ok(out)
}

/// Per-column mean and population standard deviation (1 where a column is constant).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    /// Means.
    pub mean: Vec<f32>,
    /// Standard deviations.
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits the features of `d`.
    pub fn fit_features(d: &Dataset) -> Standardizer {
        let w = d.width();
        let n = d.rows().max(1);
        let cols: Vec<Vec<f64>> = (0..w).map(|c| (0..n).map(|r| f64::from(d.features[r * w + c])).collect()).collect();
        Self::from_columns(&cols)
    }

    /// Fits each task's present labels (for regression targets).
    pub fn fit_labels(d: &Dataset) -> Standardizer {
        let cols: Vec<Vec<f64>> = d
            .labels
            .iter()
            .zip(&d.masks)
            .map(|(l, m)| l.iter().zip(m).filter(|(_, &m)| m != 0.0).map(|(&v, _)| f64::from(v)).collect())
            .collect();
        Self::from_columns(&cols)
    }

    fn from_columns(cols: &[Vec<f64>]) -> Standardizer {
        let mut mean = Vec::new();
        let mut std = Vec::new();
        for c in cols {
            let n = c.len().max(1) as f64;
            let mu = c.iter().sum::<f64>() / n;
            let var = c.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
            mean.push(mu as f32);
            std.push(if var > 1e-24 { var.sqrt() as f32 } else { 1.0 });
        }
        Standardizer { mean, std }
    }

    /// Identity (mean 0, std 1) for `n` columns.
    pub fn identity(n: usize) -> Standardizer {
        Standardizer { mean: vec![0.0; n], std: vec![1.0; n] }
    }

    /// z-scores a row-major matrix in place.
    pub fn apply(&self, rows: &mut [f32]) {
        let w = self.mean.len();
        for (i, v) in rows.iter_mut().enumerate() {
            let c = i % w;
            *v = (*v - self.mean[c]) / self.std[c];
        }
    }
}
