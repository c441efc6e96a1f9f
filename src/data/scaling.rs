//! The scaling fitted on the training rows (features, regression targets) and the three
//! splits it is applied to.

use super::{Dataset, Standardizer};
use crate::mtl::{TaskDef, TaskKind};

/// The three splits, already standardised.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training rows.
    pub train: Dataset,
    /// Validation rows (may be empty).
    pub val: Dataset,
    /// Test rows (may be empty).
    pub test: Dataset,
}

/// Statistics that map raw inputs to what the model sees, and its outputs back.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaling {
    /// Feature z-scores (identity when not standardising).
    pub features: Standardizer,
    /// Per task: regression targets' z-score (identity for other kinds).
    pub targets: Standardizer,
}

impl Scaling {
    /// Fits on the training split: features when `standardize`, regression targets always.
    pub fn fit(train: &Dataset, tasks: &[TaskDef], standardize: bool) -> Scaling {
        let features =
            if standardize { Standardizer::fit_features(train) } else { Standardizer::identity(train.width()) };
        let mut targets = Standardizer::fit_labels(train);
        for (t, task) in tasks.iter().enumerate() {
            if task.kind != TaskKind::Regression {
                targets.mean[t] = 0.0;
                targets.std[t] = 1.0;
            }
        }
        Scaling { features, targets }
    }

    /// Applies the scaling to a dataset (features and regression labels).
    pub fn apply(&self, d: &Dataset) -> Dataset {
        let mut out = d.clone();
        self.features.apply(&mut out.features);
        for (t, l) in out.labels.iter_mut().enumerate() {
            let (m, s) = (self.targets.mean[t], self.targets.std[t]);
            for (v, &mk) in l.iter_mut().zip(&d.masks[t]) {
                if mk != 0.0 {
                    *v = (*v - m) / s;
                }
            }
        }
        out
    }

    /// Maps task t's outputs back to original units (regression only).
    pub fn unscale_outputs(&self, t: usize, out: &mut [f32]) {
        let (m, s) = (self.targets.mean[t], self.targets.std[t]);
        out.iter_mut().for_each(|v| *v = *v * s + m);
    }
}
