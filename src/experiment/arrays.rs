//! A run's data from arrays in memory (the Python package): features `[n, f]` row-major,
//! each task's labels with missing ones marked (NaN for a regression target, −1 or NaN for a
//! class), a validation set when given, no test set.

use super::Prepared;
use crate::config::Config;
use crate::data::{Dataset, Encoding, Split};
use crate::error::{Error, Result};
use crate::mtl::TaskKind;
use crate::train::{Scaling, Splits};

/// A dataset of `x` (`n` rows of `f` features, named `x0`, `x1`, …) and each task's labels:
/// a missing label (NaN; −1 for a class) is masked. Every feature must be finite and every
/// present label valid for its task; the error names the row and the column or task.
pub fn dataset(cfg: &Config, x: Vec<f32>, f: usize, labels: Vec<Vec<f32>>) -> Result<Dataset> {
    if labels.len() != cfg.tasks.len() {
        return Err(Error::shape("labels", format!("{} label arrays for {} tasks", labels.len(), cfg.tasks.len())));
    }
    let masks: Vec<Vec<f32>> = cfg
        .tasks
        .iter()
        .zip(&labels)
        .map(|(t, l)| {
            l.iter()
                .map(|&v| {
                    let missing = v.is_nan() || (t.kind != TaskKind::Regression && v == -1.0);
                    if missing {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect()
        })
        .collect();
    let labels: Vec<Vec<f32>> =
        labels.into_iter().zip(&masks).map(|(l, m)| l.iter().zip(m).map(|(&v, &k)| v * k).collect()).collect();
    let names = (0..f).map(|i| format!("x{i}")).collect();
    let d = Dataset::from_slices(names, x, labels, masks)?;
    d.check_labels(&cfg.tasks)?;
    Ok(d)
}

/// The splits and scaling of a run on `train` (and `val`, when given): the scaling is fitted on
/// the training rows as for a file; there is no test split.
pub fn prepare(cfg: &Config, train: Dataset, val: Option<Dataset>) -> Result<Prepared> {
    let val = match val {
        Some(v) if v.width() != train.width() => {
            return Err(Error::shape("X_val", format!("{} features where X has {}", v.width(), train.width())))
        }
        Some(v) => v,
        None => train.subset(&[]),
    };
    let test = train.subset(&[]);
    let encoding = Encoding::fit(&train, false);
    let scaling = Scaling::fit_with(&train, &cfg.tasks, cfg.standardize, cfg.standardize_targets);
    let raw = [train, val, test];
    let [tr, va, te] = Split::ALL.map(|s| scaling.apply(&raw[s]));
    Ok(Prepared { raw, encoding, splits: Splits { train: tr, val: va, test: te }, scaling })
}
