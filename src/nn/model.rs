//! The multi-task model with hard parameter sharing: a trunk Mlp shared by every task (each
//! layer Linear + activation, so the shared representation is activated), then per task a
//! head Mlp (hidden layers Linear + activation, and a final Linear without activation giving
//! 1 output, or `classes` logits).

use super::Mlp;
use crate::error::{Error, Result};
use crate::ir::{Activation, LossKind};
use crate::ir::{Graph, NodeId};

/// One task: a name and its loss (which fixes the number of outputs).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    /// Unique name, used in checkpoints (`heads.{name}.…`) and reports.
    pub name: String,
    /// The loss on this task's logits.
    pub loss: LossKind,
}

/// The architecture of a multi-task model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    /// Input features.
    pub inputs: usize,
    /// Hidden sizes of the shared trunk (empty: heads read the inputs).
    pub trunk: Vec<usize>,
    /// Hidden sizes of each head before its output layer (empty: a linear head).
    pub head: Vec<usize>,
    /// Activation of trunk and hidden head layers.
    pub activation: Activation,
    /// The tasks, in order.
    pub tasks: Vec<TaskSpec>,
}

impl ModelSpec {
    /// Rejects impossible sizes and duplicate task names.
    pub fn check(&self) -> Result<()> {
        if self.inputs == 0 {
            return Err(Error::invalid("model", "the model has no input features"));
        }
        if let Some(i) = self.trunk.iter().position(|&s| s == 0) {
            return Err(Error::invalid(format!("model.trunk[{i}]"), "a layer needs at least one unit"));
        }
        if let Some(i) = self.head.iter().position(|&s| s == 0) {
            return Err(Error::invalid(format!("model.head[{i}]"), "a layer needs at least one unit"));
        }
        if self.tasks.is_empty() {
            return Err(Error::invalid("task", "at least one task is needed"));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            t.loss.check()?;
            if self.tasks[..i].iter().any(|o| o.name == t.name) {
                return Err(Error::invalid(format!("task {:?}", t.name), "duplicate task name"));
            }
        }
        self.activation.check()
    }

    /// Width of the shared representation.
    pub fn representation(&self) -> usize {
        self.trunk.last().copied().unwrap_or(self.inputs)
    }
}

/// A multi-task model built into a graph for one batch size.
#[derive(Clone, Debug)]
pub struct MultiTaskModel {
    /// The architecture.
    pub spec: ModelSpec,
    /// The graph (inputs: x, then per task labels and mask).
    pub graph: Graph,
    /// Batch size the graph was built for.
    pub batch: usize,
    /// The features input `[B, inputs]`.
    pub x: NodeId,
    /// The shared representation `[B, representation]`.
    pub z: NodeId,
    /// Per task: logits `[B, outputs]`.
    pub logits: Vec<NodeId>,
    /// Per task: the loss node.
    pub losses: Vec<NodeId>,
    /// Number of trunk parameters (they come first in `graph.params`).
    pub trunk_params: usize,
}

impl MultiTaskModel {
    /// Builds the graph: `trunk.{i}.weight/bias`, `heads.{task}.{j}.weight/bias`.
    pub fn build(spec: &ModelSpec, batch: usize) -> Result<MultiTaskModel> {
        spec.check()?;
        if batch == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let mut g = Graph::new();
        let x = g.input("x", &[batch, spec.inputs]);
        let mut sizes = vec![spec.inputs];
        sizes.extend(&spec.trunk);
        let trunk = Mlp::new(&mut g, "trunk", &sizes, spec.activation, true);
        let trunk_params = g.params.len();
        let z = trunk.forward(&mut g, x)?;
        let mut logits = Vec::new();
        let mut losses = Vec::new();
        for (t, task) in spec.tasks.iter().enumerate() {
            let mut hs = vec![spec.representation()];
            hs.extend(&spec.head);
            hs.push(task.loss.outputs());
            let head = Mlp::new(&mut g, &format!("heads.{}", task.name), &hs, spec.activation, false);
            let out = head.forward(&mut g, z)?;
            let y = g.input(&format!("{}.labels", task.name), &[batch]);
            let m = g.input(&format!("{}.mask", task.name), &[batch]);
            losses.push(g.loss(out, y, m, task.loss, t)?);
            logits.push(out);
        }
        Ok(MultiTaskModel { spec: spec.clone(), graph: g, batch, x, z, logits, losses, trunk_params })
    }
}
