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

/// A categorical input: its learned table `embeddings.{column}` `[rows, dim]`, row 0 for
/// values never seen in training.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmbeddingSpec {
    /// The column.
    pub column: String,
    /// Table rows: the column's training categories plus one.
    pub rows: usize,
    /// Values per row.
    pub dim: usize,
}

/// How the tasks share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Hard parameter sharing: one trunk, a head per task.
    #[default]
    Hps,
    /// Multi-gate mixture of experts (Ma et al., KDD 2018): experts on the input, a softmax
    /// gate per task mixing them, the task's head on its mixture.
    Mmoe,
    /// One-gate mixture of experts: MMoE with one gate shared by every task.
    Omoe,
    /// Customized gate control (Tang et al., RecSys 2020): shared experts and each task's own
    /// experts; a task's gate mixes its experts and the shared ones. PLE with one level.
    Cgc,
    /// Progressive layered extraction (Tang et al., RecSys 2020): CGC levels stacked; below
    /// the last, a shared gate mixes every expert into the next level's shared input.
    Ple,
    /// Cross-stitch networks (Misra et al., CVPR 2016): a column per task, their activations
    /// mixed after each layer by a learned T×T matrix.
    CrossStitch,
    /// DSelect-k (Hazimeh et al., NeurIPS 2021): MMoE whose gates select k experts through
    /// smooth-step binary encodings.
    DselectK,
}

impl Arch {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Hps => "hps",
            Arch::Mmoe => "mmoe",
            Arch::Omoe => "omoe",
            Arch::Cgc => "cgc",
            Arch::Ple => "ple",
            Arch::CrossStitch => "cross_stitch",
            Arch::DselectK => "dselect_k",
        }
    }

    /// Whether the tasks share experts through gates.
    pub fn has_experts(self) -> bool {
        !matches!(self, Arch::Hps | Arch::CrossStitch)
    }
}

/// The architecture of a multi-task model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    /// How the tasks share.
    #[serde(default)]
    pub arch: Arch,
    /// Number of experts (mmoe, omoe).
    #[serde(default)]
    pub experts: usize,
    /// Hidden sizes of each expert, each Linear + activation (mmoe, omoe, cgc, ple).
    #[serde(default)]
    pub expert: Vec<usize>,
    /// Shared experts at each level (cgc, ple).
    #[serde(default)]
    pub shared_experts: usize,
    /// Each task's own experts at each level (cgc, ple).
    #[serde(default)]
    pub task_experts: usize,
    /// Levels (ple; cgc is one).
    #[serde(default)]
    pub levels: usize,
    /// Experts each task's gate selects (dselect_k).
    #[serde(default)]
    pub k: usize,
    /// Numeric input features.
    pub inputs: usize,
    /// Categorical inputs, each looked up in its table and placed after the numeric features.
    #[serde(default)]
    pub embeddings: Vec<EmbeddingSpec>,
    /// Binary tasks whose probability is the product of two earlier binary tasks' (ESMM):
    /// (task, [first factor, second factor]), by task index. Such a task has no head of its
    /// own; its logits are `logit(σ(a)·σ(b))` of its factors' logits.
    #[serde(default)]
    pub products: Vec<(usize, [usize; 2])>,
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
    /// Hard parameter sharing: a trunk of `trunk` hidden sizes under one head per task, each
    /// with `head` hidden layers before its output layer.
    pub fn hard_sharing(
        inputs: usize,
        trunk: &[usize],
        head: &[usize],
        activation: Activation,
        tasks: Vec<TaskSpec>,
    ) -> ModelSpec {
        ModelSpec {
            arch: Arch::Hps,
            experts: 0,
            expert: vec![],
            shared_experts: 0,
            task_experts: 0,
            levels: 0,
            k: 0,
            inputs,
            embeddings: vec![],
            products: vec![],
            trunk: trunk.to_vec(),
            head: head.to_vec(),
            activation,
            tasks,
        }
    }

    /// Rejects impossible sizes and duplicate task names.
    pub fn check(&self) -> Result<()> {
        if self.inputs == 0 && self.embeddings.is_empty() {
            return Err(Error::invalid("model", "the model has no input features"));
        }
        for e in &self.embeddings {
            if e.dim == 0 {
                return Err(Error::invalid(format!("embedding_dim of {:?}", e.column), "must be at least 1"));
            }
            if e.rows == 0 || e.rows >= 1 << 24 {
                return Err(Error::invalid(
                    format!("categories of {:?}", e.column),
                    format!("{} table rows (from 1 to 2^24: ids travel as f32)", e.rows),
                ));
            }
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
        if self.arch == Arch::CrossStitch && self.trunk.is_empty() {
            return Err(Error::invalid("model.trunk", "cross_stitch needs at least one layer in each column"));
        }
        if matches!(self.arch, Arch::Cgc | Arch::Ple) {
            if self.shared_experts + self.task_experts == 0 {
                return Err(Error::invalid("model.shared_experts", "a level needs at least one expert"));
            }
            if self.arch == Arch::Ple && self.levels == 0 {
                return Err(Error::invalid("model.levels", "ple needs at least one level"));
            }
        }
        if self.arch.has_experts() {
            if self.arch == Arch::DselectK && (self.experts < 2 || !self.experts.is_power_of_two() || self.k == 0) {
                return Err(Error::invalid(
                    "model.experts",
                    "dselect_k needs a power of two of at least 2 experts and k ≥ 1",
                ));
            }
            if matches!(self.arch, Arch::Mmoe | Arch::Omoe) && self.experts == 0 {
                return Err(Error::invalid("model.experts", "a mixture needs at least one expert"));
            }
            if self.expert.is_empty() || self.expert.contains(&0) {
                return Err(Error::invalid(
                    "model.expert",
                    "each expert needs at least one layer of at least one unit",
                ));
            }
            if !self.trunk.is_empty() {
                return Err(Error::invalid("model.trunk", format!("is for hps, not {}", self.arch.name())));
            }
        }
        for &(t, [a, b]) in &self.products {
            let bce = |i: usize| self.tasks.get(i).is_some_and(|x| x.loss == LossKind::Bce);
            if !(bce(t) && bce(a) && bce(b) && a < t && b < t && a != b) {
                return Err(Error::invalid(
                    "task product_of",
                    format!("task {t} = task {a} × task {b}: two different earlier binary tasks, and a binary product"),
                ));
            }
            if !matches!(self.arch, Arch::Hps | Arch::Mmoe | Arch::Omoe) {
                return Err(Error::invalid(
                    "task product_of",
                    format!("needs arch hps, mmoe or omoe, not {}", self.arch.name()),
                ));
            }
        }
        for (i, t) in self.tasks.iter().enumerate() {
            t.loss.check()?;
            if self.tasks[..i].iter().any(|o| o.name == t.name) {
                return Err(Error::invalid(format!("task {:?}", t.name), "duplicate task name"));
            }
        }
        self.activation.check()
    }

    /// Width of what each head reads: the trunk's output, or an expert's.
    pub fn representation(&self) -> usize {
        match self.arch {
            Arch::Hps | Arch::CrossStitch => self.trunk.last().copied().unwrap_or(self.width()),
            _ => self.expert.last().copied().unwrap_or(self.width()),
        }
    }

    /// The factors of task `t`, if it is a product task.
    pub fn product_of(&self, t: usize) -> Option<[usize; 2]> {
        self.products.iter().find(|p| p.0 == t).map(|p| p.1)
    }

    /// Width of the model's input: the numeric features, then every embedding.
    pub fn width(&self) -> usize {
        self.inputs + self.embeddings.iter().map(|e| e.dim).sum::<usize>()
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
    /// The model's input `[B, width]`: the numeric features input, or, with categorical
    /// inputs, the numeric features and the embeddings side by side.
    pub x: NodeId,
    /// The shared representation: the trunk's output `[B, representation]`, or the experts'
    /// outputs side by side `[B, experts·representation]`. Gradient methods with
    /// `target = "representation"` take each task's gradient here.
    pub z: NodeId,
    /// Per task: logits `[B, outputs]`.
    pub logits: Vec<NodeId>,
    /// Per task: the loss node.
    pub losses: Vec<NodeId>,
    /// Number of shared parameters, first in `graph.params`: the trunk's, or the experts'
    /// (an OMoE's shared gate is trained with the tasks' summed gradient, like a head).
    pub trunk_params: usize,
}

impl MultiTaskModel {
    /// Builds the graph: `trunk.{i}.weight/bias`, `heads.{task}.{j}.weight/bias`.
    pub fn build(spec: &ModelSpec, batch: usize) -> Result<MultiTaskModel> {
        spec.check()?;
        if batch == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        match spec.arch {
            Arch::Hps => {}
            Arch::Mmoe | Arch::Omoe | Arch::DselectK => return super::moe::build(spec, batch),
            Arch::Cgc | Arch::Ple => return super::ple::build(spec, batch),
            Arch::CrossStitch => return super::cross_stitch::build(spec, batch),
        }
        let mut g = Graph::new();
        let x = input(&mut g, spec, batch)?;
        let mut sizes = vec![spec.width()];
        sizes.extend(&spec.trunk);
        let trunk = Mlp::new(&mut g, "trunk", &sizes, spec.activation, true);
        let trunk_params = g.params.len();
        let z = trunk.forward(&mut g, x)?;
        let mut logits = Vec::new();
        let mut losses = Vec::new();
        for t in 0..spec.tasks.len() {
            let (out, loss) = head(&mut g, spec, t, z, batch, &logits)?;
            logits.push(out);
            losses.push(loss);
        }
        Ok(MultiTaskModel { spec: spec.clone(), graph: g, batch, x, z, logits, losses, trunk_params })
    }
}

/// The model's input: `x` (`[B, inputs]`, the numeric features) and, for each categorical
/// column, its table `embeddings.{column}` (PyTorch's nn.Embedding init, N(0, 1)) looked up
/// by the inputs `{column}.ids`, `{column}.offsets` and `{column}.order` (the ids and their
/// inverse, [`crate::cpu::embed_inverse`]); all side by side. The tables are the first
/// parameters: shared by every task.
pub(crate) fn input(g: &mut Graph, spec: &ModelSpec, batch: usize) -> Result<NodeId> {
    let x = (spec.inputs > 0).then(|| g.input("x", &[batch, spec.inputs]));
    let mut parts: Vec<NodeId> = x.into_iter().collect();
    for e in &spec.embeddings {
        let table = g.param(&format!("embeddings.{}", e.column), &[e.rows, e.dim], crate::ir::Init::Normal(1.0));
        let ids = g.input(&format!("{}.ids", e.column), &[batch]);
        let offsets = g.input(&format!("{}.offsets", e.column), &[e.rows + 1]);
        let order = g.input(&format!("{}.order", e.column), &[batch]);
        parts.push(g.embed(table, ids, offsets, order)?);
    }
    super::concat_all(g, &parts)
}

/// Task `t`'s head on `rep` (`heads.{task}.{j}`), its labels and mask inputs, and its loss:
/// (logits, loss). A product task ([`ModelSpec::products`]) has no head: its logits are
/// `logit(σ(a)·σ(b))` of its factors' (in `earlier`, the earlier tasks' logits). A factor's
/// loss reads a copy of its logits, whose gradient the product adds to.
pub(crate) fn head(
    g: &mut Graph,
    spec: &ModelSpec,
    t: usize,
    rep: NodeId,
    batch: usize,
    earlier: &[NodeId],
) -> Result<(NodeId, NodeId)> {
    let task = &spec.tasks[t];
    let out = match spec.product_of(t) {
        Some([a, b]) => g.product_logit(earlier[a], earlier[b])?,
        None => {
            let mut hs = vec![spec.representation()];
            hs.extend(&spec.head);
            hs.push(task.loss.outputs());
            let head = Mlp::new(g, &format!("heads.{}", task.name), &hs, spec.activation, false);
            head.forward(g, rep)?
        }
    };
    let factor = spec.products.iter().any(|(_, of)| of.contains(&t));
    let scored = if factor { g.act(out, Activation::Identity)? } else { out };
    let y = g.input(&format!("{}.labels", task.name), &[batch]);
    let m = g.input(&format!("{}.mask", task.name), &[batch]);
    let loss = g.loss(scored, y, m, task.loss, t)?;
    Ok((out, loss))
}
