//! A task: what it predicts (kind), from which column, with which loss.

use crate::error::{Error, Result};
use crate::ir::LossKind;

/// What a task predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A real value (one output).
    Regression,
    /// A 0/1 label (one logit).
    Binary,
    /// One of `classes` integer labels 0..classes-1.
    Multiclass,
}

/// A task as the data layer and the trainer see it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskDef {
    /// Unique name.
    pub name: String,
    /// The CSV column holding its labels (empty cell: label missing).
    pub target: String,
    /// What it predicts.
    pub kind: TaskKind,
    /// Its loss (fixes the outputs: 1, or the number of classes).
    pub loss: LossKind,
    /// Static weight (used by weighting "static").
    pub weight: f32,
    /// Text labels of a binary or multiclass task, class k's at k (empty: labels are
    /// numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// A binary task whose probability is the product of these two earlier binary tasks'
    /// (ESMM); empty for a task with its own head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_of: Vec<String>,
    /// Whether the task's labels train it through a loss of its own; false: they only
    /// measure it, and it learns through the products that use it (ESMM's conversion task).
    #[serde(default = "yes")]
    pub own_loss: bool,
}

fn yes() -> bool {
    true
}

impl TaskDef {
    /// A regression task with MSE loss.
    pub fn regression(name: &str, target: &str) -> TaskDef {
        TaskDef {
            name: name.into(),
            target: target.into(),
            kind: TaskKind::Regression,
            loss: LossKind::Mse,
            weight: 1.0,
            labels: vec![],
            product_of: vec![],
            own_loss: true,
        }
    }
    /// A binary task with BCE on the logit.
    pub fn binary(name: &str, target: &str) -> TaskDef {
        TaskDef {
            name: name.into(),
            target: target.into(),
            kind: TaskKind::Binary,
            loss: LossKind::Bce,
            weight: 1.0,
            labels: vec![],
            product_of: vec![],
            own_loss: true,
        }
    }
    /// A multiclass task with softmax cross-entropy.
    pub fn multiclass(name: &str, target: &str, classes: usize) -> TaskDef {
        TaskDef {
            name: name.into(),
            target: target.into(),
            kind: TaskKind::Multiclass,
            loss: LossKind::CrossEntropy { classes },
            weight: 1.0,
            labels: vec![],
            product_of: vec![],
            own_loss: true,
        }
    }

    /// Checks that kind and loss agree.
    pub fn check(&self) -> Result<()> {
        let ok = matches!(
            (self.kind, self.loss),
            (TaskKind::Regression, LossKind::Mse | LossKind::L1 | LossKind::Huber { .. })
                | (TaskKind::Binary, LossKind::Bce)
                | (TaskKind::Multiclass, LossKind::CrossEntropy { .. })
        );
        if !ok {
            return Err(Error::invalid(
                format!("task {:?} loss", self.name),
                format!("{:?} does not fit a {:?} task", self.loss, self.kind),
            ));
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(Error::invalid(
                format!("task {:?} weight", self.name),
                format!("{} (must be finite and >= 0)", self.weight),
            ));
        }
        let want = match self.kind {
            TaskKind::Regression => 0,
            TaskKind::Binary => 2,
            TaskKind::Multiclass => self.classes(),
        };
        if !self.labels.is_empty() && self.labels.len() != want {
            return Err(Error::invalid(
                format!("task {:?} labels", self.name),
                format!("{} labels for a {:?} task of {want} classes", self.labels.len(), self.kind),
            ));
        }
        self.loss.check()
    }

    /// Number of classes (multiclass), else 0.
    pub fn classes(&self) -> usize {
        match self.loss {
            LossKind::CrossEntropy { classes } => classes,
            _ => 0,
        }
    }
}
