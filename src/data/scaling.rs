//! The scaling fitted on the training rows (features, regression targets) and the three
//! splits it is applied to.

use std::ops::Index;

use super::{Dataset, Standardizer};
use crate::error::{Error, Result};
use crate::mtl::metrics::Metrics;
use crate::mtl::{TaskDef, TaskKind};

/// One of the three splits. Per-split values are kept as `[T; 3]` in this order and indexed
/// by a `Split`, never by a bare number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training rows.
    Train,
    /// The validation rows (early stopping).
    Val,
    /// The test rows (reported).
    Test,
}

impl Split {
    /// All three, in storage order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// Its place in a `[T; 3]`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name: train, val or test.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// A split by name (`what` names the option or key it came from, for the error).
    pub fn parse(name: &str, what: &str) -> Result<Split> {
        Split::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::invalid(what, format!("{name:?} (expected train, val or test)")))
    }
}

impl Index<Split> for [Metrics; 3] {
    type Output = Metrics;
    fn index(&self, s: Split) -> &Metrics {
        &self[s.index()]
    }
}

impl Index<Split> for [Dataset; 3] {
    type Output = Dataset;
    fn index(&self, s: Split) -> &Dataset {
        &self[s.index()]
    }
}

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

impl Splits {
    /// One split.
    pub fn get(&self, s: Split) -> &Dataset {
        match s {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// The split results are reported on: test when it has rows, else validation, else the
    /// training rows themselves.
    pub fn reported(&self) -> Split {
        if self.test.rows() > 0 {
            Split::Test
        } else if self.val.rows() > 0 {
            Split::Val
        } else {
            Split::Train
        }
    }

    /// The held-out splits without rows ("val", "test").
    pub fn missing(&self) -> Vec<Split> {
        [Split::Val, Split::Test].into_iter().filter(|&s| self.get(s).rows() == 0).collect()
    }
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
        Self::fit_with(train, tasks, standardize, true)
    }

    /// Fits on the training split: features when `features`, regression targets when
    /// `targets` (else they stay in their own units, as a PyTorch run on raw targets has them).
    pub fn fit_with(train: &Dataset, tasks: &[TaskDef], features: bool, targets: bool) -> Scaling {
        let features = if features { Standardizer::fit_features(train) } else { Standardizer::identity(train.width()) };
        let mut targets_z = Standardizer::fit_labels(train);
        for (t, task) in tasks.iter().enumerate() {
            if task.kind != TaskKind::Regression || !targets {
                targets_z.mean[t] = 0.0;
                targets_z.std[t] = 1.0;
            }
        }
        Scaling { features, targets: targets_z }
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
