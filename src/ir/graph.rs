//! The graph: nodes over tensors, in creation order (which is a topological order). A graph is
//! built once for a fixed batch size, then run by the CPU reference
//! ([`crate::autograd::cpu`]) or compiled into replayable GPU dispatches
//! ([`crate::runtime::GpuGraph`]).

use super::ops::{Activation, LossKind};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// What a node computes. Shapes are row-major `[rows, cols]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// Data fed each step (features, labels, masks).
    Input,
    /// A learnable tensor: index into [`Graph::params`].
    Param(usize),
    /// `y = act(x·wᵀ + b)`, x `[B, in]`, w `[out, in]` (nn.Linear's layout), b `[out]`.
    Linear {
        /// Input.
        x: NodeId,
        /// Weight.
        w: NodeId,
        /// Bias.
        b: Option<NodeId>,
        /// Activation.
        act: Activation,
    },
    /// `y = act(x)`.
    Act {
        /// Input.
        x: NodeId,
        /// Activation.
        act: Activation,
    },
    /// `y = a + b` (same shapes).
    Add {
        /// Left.
        a: NodeId,
        /// Right.
        b: NodeId,
    },
    /// `y = a ⊙ b`, the elementwise product (same shapes).
    Mul {
        /// Left.
        a: NodeId,
        /// Right.
        b: NodeId,
    },
    /// The softmax of each row: `y[r, j] = e^{x[r, j]} / Σ_k e^{x[r, k]}` (a gate).
    Softmax {
        /// Input `[B, n]`.
        x: NodeId,
    },
    /// `[a | b]`: the columns of `a` then those of `b` (same rows).
    Concat {
        /// Left `[B, na]`.
        a: NodeId,
        /// Right `[B, nb]`.
        b: NodeId,
    },
    /// Columns `start..start + width` of `x`.
    Slice {
        /// Input `[B, n]`.
        x: NodeId,
        /// First column.
        start: usize,
        /// How many.
        width: usize,
    },
    /// A cross-stitch unit: `y[r, t·D + d] = Σ_s alpha[t, s] · x[r, s·D + d]`, mixing the T
    /// blocks of `x` (`[B, T·D]`) by `alpha` (`[T, T]`).
    Stitch {
        /// The blocks `[B, T·D]`.
        x: NodeId,
        /// The mixing matrix `[T, T]`.
        alpha: NodeId,
    },
    /// DSelect-k's binary encoding: for each of the k selectors, the m = log2(E) smooth-step
    /// bits `s[r, i·m + q]` give every expert j the weight `Π_q (bit_q(j) ? s : 1 − s)`:
    /// `y[r, i·E + j]`, `[B, k·E]`.
    Encode {
        /// Bits `[B, k·m]`, in [0, 1].
        s: NodeId,
        /// E, a power of two.
        experts: usize,
    },
    /// Parameters laid side by side as one tensor (their rows stacked): [`Graph::packs`]`[i]`.
    /// It reads no values of its own: compiled, it is a view of the flat parameter buffer
    /// over its members, laid out back to back, and its gradient a view of theirs.
    Pack(usize),
    /// G products side by side: block g of the output (columns g·N..(g+1)·N) is
    /// `act(x_g·w_gᵀ + b_g)`, x_g the g-th block of K columns of `x` (`[B, G·K]`), w_g rows
    /// g·N..(g+1)·N of `w` (`[G·N, K]`, the G weights stacked), b_g the same part of `b`
    /// (`[G·N]`): the deeper layers of G experts in one product.
    Grouped {
        /// The blocks `[B, G·K]`.
        x: NodeId,
        /// The stacked weights `[G·N, K]`.
        w: NodeId,
        /// The stacked biases `[G·N]`.
        b: Option<NodeId>,
        /// Activation.
        act: Activation,
        /// G.
        groups: usize,
    },
    /// An embedding lookup: `y[r, :] = table[ids[r], :]`. `ids` holds row indices of the
    /// table as whole numbers (f32, exact below 2^24); `offsets` (`[V + 1]`) and `order`
    /// (`[B]`) are its inverse, built by the host with the batch: the rows that look up table
    /// row v are `order[offsets[v]..offsets[v + 1]]`, in increasing order, so the table's
    /// gradient is summed in one fixed order (no atomics: the same bits every run).
    Embed {
        /// The table `[V, D]`.
        table: NodeId,
        /// Row indices `[B]`.
        ids: NodeId,
        /// Where each table row's lookups start in `order` `[V + 1]`.
        offsets: NodeId,
        /// The looking-up rows grouped by table row `[B]`.
        order: NodeId,
    },
    /// `y = logit(σ(a)·σ(b))` elementwise: the logit of the product of two probabilities given
    /// by their logits (ESMM's conversion-after-click model, a product task's logits).
    ProductLogit {
        /// The first factor's logits.
        a: NodeId,
        /// The second's (same shape).
        b: NodeId,
    },
    /// A gated mixture: `y[r, d] = Σ_e gate[r, e] · x[r, e·D + d]`, `x` holding E blocks of
    /// D columns side by side (the experts' outputs), `gate` `[B, E]`.
    Mix {
        /// Mixture weights `[B, E]`.
        gate: NodeId,
        /// The blocks `[B, E·D]`.
        x: NodeId,
    },
    /// Task `task`'s mean loss over rows with a label (`[1]`); its gradient seeds the backward
    /// pass, scaled by the task's weight.
    Loss {
        /// Logits `[B, outputs]`.
        logits: NodeId,
        /// Labels `[B]`.
        labels: NodeId,
        /// Label mask `[B]` (0: missing).
        mask: NodeId,
        /// Loss kind.
        kind: LossKind,
        /// Task index (slot in the loss and weight buffers).
        task: usize,
    },
}

/// A node: its op and output shape.
#[derive(Clone, Debug)]
pub struct Node {
    /// The op.
    pub op: Op,
    /// Output shape.
    pub shape: Vec<usize>,
    /// A name for messages and checkpoints (inputs and params).
    pub name: String,
}

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `[−bound, bound]`.
    Uniform(f32),
    /// Every value the same.
    Constant(f32),
    /// Normal with mean 0 and this standard deviation (PyTorch's nn.Embedding uses 1).
    Normal(f32),
    /// A square matrix with `diag` on its diagonal and `off` elsewhere (cross-stitch units).
    Diagonal {
        /// The diagonal's value.
        diag: f32,
        /// Every other value.
        off: f32,
    },
}

/// A learnable tensor.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// Name (checkpoint key), e.g. `trunk.0.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Initialisation.
    pub init: Init,
    /// The node that holds it.
    pub node: NodeId,
}

/// A computation graph built once, for a fixed batch size.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Nodes in creation (topological) order.
    pub nodes: Vec<Node>,
    /// Learnable tensors in creation order.
    pub params: Vec<ParamInfo>,
    /// The members (parameter nodes) of each [`Op::Pack`].
    pub packs: Vec<Vec<NodeId>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, op: Op, shape: Vec<usize>, name: String) -> NodeId {
        self.nodes.push(Node { op, shape, name });
        NodeId(self.nodes.len() - 1)
    }

    /// The shape of a node's output.
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id.0].shape
    }

    fn get(&self, id: NodeId, op: &'static str) -> Result<&Node> {
        self.nodes.get(id.0).ok_or_else(|| Error::shape(op, format!("no node {}", id.0)))
    }

    /// A data input of `shape`.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> NodeId {
        self.push(Op::Input, shape.to_vec(), name.to_string())
    }

    /// A learnable tensor.
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> NodeId {
        let idx = self.params.len();
        let node = self.push(Op::Param(idx), shape.to_vec(), name.to_string());
        self.params.push(ParamInfo { name: name.to_string(), shape: shape.to_vec(), init, node });
        node
    }

    /// `act(x·wᵀ + b)`.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: Option<NodeId>, act: Activation) -> Result<NodeId> {
        act.check()?;
        let xs = self.get(x, "linear")?.shape.clone();
        let ws = self.get(w, "linear")?.shape.clone();
        if xs.len() != 2 || ws.len() != 2 || xs[1] != ws[1] {
            return Err(Error::shape("linear", format!("x {xs:?} with weight {ws:?} (weight is [out, in])")));
        }
        if let Some(b) = b {
            let bs = &self.get(b, "linear")?.shape;
            if bs.as_slice() != [ws[0]] {
                return Err(Error::shape("linear", format!("bias {bs:?} for {} outputs", ws[0])));
            }
        }
        Ok(self.push(Op::Linear { x, w, b, act }, vec![xs[0], ws[0]], String::new()))
    }

    /// The parameters `members` (same shape after the first dimension, each read by nothing
    /// else) as one tensor, their rows stacked in order: `[Σ rows, …]`.
    pub fn pack(&mut self, members: &[NodeId]) -> Result<NodeId> {
        let mut shape: Vec<usize> = Vec::new();
        for &m in members {
            let node = self.get(m, "pack")?;
            if !matches!(node.op, Op::Param(_)) || node.shape.is_empty() {
                return Err(Error::shape("pack", format!("node {} ({}) is not a parameter", m.0, node.name)));
            }
            match shape.first().copied() {
                None => shape = node.shape.clone(),
                Some(rows) if shape[1..] == node.shape[1..] => shape[0] = rows + node.shape[0],
                Some(_) => {
                    return Err(Error::shape(
                        "pack",
                        format!("{} is {:?}, not […, {:?}]", node.name, node.shape, &shape[1..]),
                    ))
                }
            }
        }
        if shape.is_empty() {
            return Err(Error::shape("pack", "no members"));
        }
        self.packs.push(members.to_vec());
        Ok(self.push(Op::Pack(self.packs.len() - 1), shape, String::new()))
    }

    /// G products side by side ([`Op::Grouped`]): `x` `[B, G·K]`, `w` `[G·N, K]`, `b` `[G·N]`.
    pub fn grouped(
        &mut self,
        x: NodeId,
        w: NodeId,
        b: Option<NodeId>,
        act: Activation,
        groups: usize,
    ) -> Result<NodeId> {
        act.check()?;
        let xs = self.get(x, "grouped")?.shape.clone();
        let ws = self.get(w, "grouped")?.shape.clone();
        let fits = groups > 0 && xs.len() == 2 && ws.len() == 2 && ws[0] % groups == 0 && xs[1] == groups * ws[1];
        if !fits {
            return Err(Error::shape(
                "grouped",
                format!("x {xs:?} with weights {ws:?} in {groups} groups (x [B, G·K], w [G·N, K])"),
            ));
        }
        if let Some(b) = b {
            let bs = &self.get(b, "grouped")?.shape;
            if bs.as_slice() != [ws[0]] {
                return Err(Error::shape("grouped", format!("bias {bs:?} for {} outputs", ws[0])));
            }
        }
        Ok(self.push(Op::Grouped { x, w, b, act, groups }, vec![xs[0], ws[0]], String::new()))
    }

    /// An embedding lookup ([`Op::Embed`]): `table` `[V, D]`, `ids` and `order` `[B]`,
    /// `offsets` `[V + 1]`; the output is `[B, D]`.
    pub fn embed(&mut self, table: NodeId, ids: NodeId, offsets: NodeId, order: NodeId) -> Result<NodeId> {
        let ts = self.get(table, "embed")?.shape.clone();
        let (is, os, rs) = (
            self.get(ids, "embed")?.shape.clone(),
            self.get(offsets, "embed")?.shape.clone(),
            self.get(order, "embed")?.shape.clone(),
        );
        if ts.len() != 2 || ts[0] == 0 || is.len() != 1 || rs != is || os != [ts[0] + 1] {
            return Err(Error::shape(
                "embed",
                format!("table {ts:?}, ids {is:?}, offsets {os:?}, order {rs:?} (table [V, D], ids and order [B], offsets [V + 1])"),
            ));
        }
        Ok(self.push(Op::Embed { table, ids, offsets, order }, vec![is[0], ts[1]], String::new()))
    }

    /// `logit(σ(a)·σ(b))` ([`Op::ProductLogit`]).
    pub fn product_logit(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (sa, sb) = (self.get(a, "product_logit")?.shape.clone(), self.get(b, "product_logit")?.shape.clone());
        if sa != sb {
            return Err(Error::shape("product_logit", format!("{sa:?} with {sb:?}")));
        }
        Ok(self.push(Op::ProductLogit { a, b }, sa, String::new()))
    }

    /// `act(x)`.
    pub fn act(&mut self, x: NodeId, act: Activation) -> Result<NodeId> {
        act.check()?;
        let s = self.get(x, "act")?.shape.clone();
        Ok(self.push(Op::Act { x, act }, s, String::new()))
    }

    /// `a + b`.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (sa, sb) = (self.get(a, "add")?.shape.clone(), self.get(b, "add")?.shape.clone());
        if sa != sb {
            return Err(Error::shape("add", format!("{sa:?} + {sb:?}")));
        }
        Ok(self.push(Op::Add { a, b }, sa, String::new()))
    }

    /// `a ⊙ b`, elementwise.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (sa, sb) = (self.get(a, "mul")?.shape.clone(), self.get(b, "mul")?.shape.clone());
        if sa != sb {
            return Err(Error::shape("mul", format!("{sa:?} ⊙ {sb:?}")));
        }
        Ok(self.push(Op::Mul { a, b }, sa, String::new()))
    }

    /// The softmax of each row of `x` (`[B, n]`, n ≥ 1).
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId> {
        let s = self.get(x, "softmax")?.shape.clone();
        if s.len() != 2 || s[1] == 0 {
            return Err(Error::shape("softmax", format!("{s:?} (rows of at least one value)")));
        }
        Ok(self.push(Op::Softmax { x }, s, String::new()))
    }

    /// `[a | b]`, columns side by side.
    pub fn concat(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (sa, sb) = (self.get(a, "concat")?.shape.clone(), self.get(b, "concat")?.shape.clone());
        if sa.len() != 2 || sb.len() != 2 || sa[0] != sb[0] {
            return Err(Error::shape("concat", format!("{sa:?} beside {sb:?}")));
        }
        Ok(self.push(Op::Concat { a, b }, vec![sa[0], sa[1] + sb[1]], String::new()))
    }

    /// Columns `start..start + width` of `x` (`[B, n]`).
    pub fn slice(&mut self, x: NodeId, start: usize, width: usize) -> Result<NodeId> {
        let s = self.get(x, "slice")?.shape.clone();
        if s.len() != 2 || width == 0 || start + width > s[1] {
            return Err(Error::shape("slice", format!("columns {start}..{} of {s:?}", start + width)));
        }
        Ok(self.push(Op::Slice { x, start, width }, vec![s[0], width], String::new()))
    }

    /// The cross-stitch of the T blocks of `x` (`[B, T·D]`) by `alpha` (`[T, T]`).
    pub fn stitch(&mut self, x: NodeId, alpha: NodeId) -> Result<NodeId> {
        let (sx, sa) = (self.get(x, "stitch")?.shape.clone(), self.get(alpha, "stitch")?.shape.clone());
        if sx.len() != 2 || sa.len() != 2 || sa[0] != sa[1] || sa[0] == 0 || sx[1] % sa[0] != 0 {
            return Err(Error::shape("stitch", format!("alpha {sa:?} over blocks {sx:?} (T×T over T blocks)")));
        }
        Ok(self.push(Op::Stitch { x, alpha }, sx, String::new()))
    }

    /// DSelect-k's encoding of the selectors' bits `s` (`[B, k·log2(E)]`) into weights of
    /// the `experts` (a power of two): `[B, k·E]`.
    pub fn encode(&mut self, s: NodeId, experts: usize) -> Result<NodeId> {
        let ss = self.get(s, "encode")?.shape.clone();
        let m = experts.trailing_zeros() as usize;
        if !experts.is_power_of_two() || experts < 2 || ss.len() != 2 || ss[1] % m != 0 {
            return Err(Error::shape("encode", format!("bits {ss:?} for {experts} experts (a power of two ≥ 2)")));
        }
        Ok(self.push(Op::Encode { s, experts }, vec![ss[0], ss[1] / m * experts], String::new()))
    }

    /// The gated mixture of the E blocks of `x` (`[B, E·D]`) with `gate` (`[B, E]`): `[B, D]`.
    pub fn mix(&mut self, gate: NodeId, x: NodeId) -> Result<NodeId> {
        let (sg, sx) = (self.get(gate, "mix")?.shape.clone(), self.get(x, "mix")?.shape.clone());
        if sg.len() != 2 || sx.len() != 2 || sg[0] != sx[0] || sg[1] == 0 || sx[1] % sg[1] != 0 {
            return Err(Error::shape("mix", format!("gate {sg:?} over blocks {sx:?} (E blocks of D columns)")));
        }
        Ok(self.push(Op::Mix { gate, x }, vec![sx[0], sx[1] / sg[1]], String::new()))
    }

    /// Task `task`'s loss of `logits` against `labels` where `mask` is non-zero.
    pub fn loss(
        &mut self,
        logits: NodeId,
        labels: NodeId,
        mask: NodeId,
        kind: LossKind,
        task: usize,
    ) -> Result<NodeId> {
        kind.check()?;
        let ls = self.get(logits, "loss")?.shape.clone();
        if ls.len() != 2 || ls[1] != kind.outputs() {
            return Err(Error::shape("loss", format!("logits {ls:?} for {kind:?}")));
        }
        for (what, id) in [("labels", labels), ("mask", mask)] {
            let s = &self.get(id, "loss")?.shape;
            if s.as_slice() != [ls[0]] {
                return Err(Error::shape("loss", format!("{what} {s:?} for batch {}", ls[0])));
            }
        }
        if self.nodes.iter().any(|n| matches!(n.op, Op::Loss { task: t, .. } if t == task)) {
            return Err(Error::invalid("loss", format!("task {task} already has a loss")));
        }
        Ok(self.push(Op::Loss { logits, labels, mask, kind, task }, vec![1], String::new()))
    }

    /// Number of task slots (largest loss task index + 1).
    pub fn tasks(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|n| if let Op::Loss { task, .. } = n.op { Some(task + 1) } else { None })
            .max()
            .unwrap_or(0)
    }

    /// The input nodes, in creation order.
    pub fn inputs(&self) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].op == Op::Input).map(NodeId).collect()
    }

    /// The nodes each node reads.
    pub fn operands(&self, id: NodeId) -> Vec<NodeId> {
        match self.nodes[id.0].op {
            Op::Input | Op::Param(_) => vec![],
            Op::Linear { x, w, b, .. } | Op::Grouped { x, w, b, .. } => {
                [Some(x), Some(w), b].into_iter().flatten().collect()
            }
            Op::Pack(k) => self.packs[k].clone(),
            Op::Embed { table, ids, offsets, order } => vec![table, ids, offsets, order],
            Op::Act { x, .. } => vec![x],
            Op::Add { a, b } | Op::Mul { a, b } | Op::Concat { a, b } | Op::ProductLogit { a, b } => vec![a, b],
            Op::Softmax { x } | Op::Slice { x, .. } => vec![x],
            Op::Encode { s, .. } => vec![s],
            Op::Stitch { x, alpha } => vec![x, alpha],
            Op::Mix { gate, x } => vec![gate, x],
            Op::Loss { logits, labels, mask, .. } => vec![logits, labels, mask],
        }
    }

    /// The nodes that read each node (by index), in graph order.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for i in 0..self.nodes.len() {
            for o in self.operands(NodeId(i)) {
                out[o.0].push(i);
            }
        }
        out
    }

    /// For each parameter, the one task whose loss reads it (a head's, a task's gate), or None
    /// when no loss or several do (shared layers, ESMM's factor heads).
    pub fn param_owners(&self) -> Vec<Option<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Owner {
            Nobody,
            One(usize),
            Many,
        }
        let mut owner = vec![Owner::Nobody; self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            if let Op::Loss { task, .. } = self.nodes[i].op {
                owner[i] = Owner::One(task);
            }
            let mine = owner[i];
            for o in self.operands(NodeId(i)) {
                owner[o.0] = match (owner[o.0], mine) {
                    (x, Owner::Nobody) | (Owner::Nobody, x) => x,
                    (Owner::One(a), Owner::One(b)) if a == b => Owner::One(a),
                    _ => Owner::Many,
                };
            }
        }
        self.params
            .iter()
            .map(|p| match owner[p.node.0] {
                Owner::One(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// Which nodes need a gradient: parameters, and anything computed from one.
    pub fn needs_grad(&self) -> Vec<bool> {
        let mut need = vec![false; self.nodes.len()];
        for i in 0..self.nodes.len() {
            need[i] = match self.nodes[i].op {
                Op::Param(_) => true,
                Op::Input | Op::Loss { .. } => false,
                _ => self.operands(NodeId(i)).iter().any(|o| need[o.0]),
            };
        }
        need
    }

    /// Checks that every node's element count can be addressed (at most 2^61 f32 values, what one buffer can address):
    /// a batch size or a layer width so large that a product of dimensions would wrap is an
    /// error naming the node, before anything is allocated.
    pub fn check_sizes(&self) -> Result<()> {
        for (i, n) in self.nodes.iter().enumerate() {
            crate::error::elements(&n.shape, || {
                let name = if n.name.is_empty() { format!("node {i}") } else { n.name.clone() };
                format!("{name} of shape {:?}", n.shape)
            })?;
        }
        Ok(())
    }

    /// Initial parameter values from a seed, in [`Graph::params`] order.
    pub fn init_params(&self, seed: u64) -> Result<Vec<Vec<f32>>> {
        self.check_sizes()?;
        let mut rng = Rng::new(seed);
        self.params
            .iter()
            .map(|p| {
                let n: usize = p.shape.iter().product();
                let mut v = crate::error::host_vec(n, 0.0, &format!("parameter {}", p.name))?;
                match p.init {
                    Init::Uniform(b) => v.iter_mut().for_each(|x| *x = rng.range(-f64::from(b), f64::from(b)) as f32),
                    Init::Constant(c) => v.fill(c),
                    Init::Normal(sd) => v.iter_mut().for_each(|x| *x = (rng.normal() * f64::from(sd)) as f32),
                    Init::Diagonal { diag, off } => {
                        let side = p.shape.first().copied().unwrap_or(1);
                        v.iter_mut().enumerate().for_each(|(k, x)| *x = if k / side == k % side { diag } else { off });
                    }
                }
                Ok(v)
            })
            .collect()
    }
}
