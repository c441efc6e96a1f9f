//! The gradient rules, written once: [`derive()`] turns a forward [`Graph`] into the steps of
//! its backward pass. The CPU reference ([`super::cpu`]) interprets these steps in f32 or
//! f64, so the finite-difference checks check the rules themselves; the GPU compiler
//! ([`crate::compile`]) lowers the same steps to kernel dispatches (fusing some of them), so the
//! CPU-vs-GPU tests check the kernels and the fusions.
//!
//! Every gradient is of Σ_t w_t·L_t. A step either defines the gradient at a Linear node's
//! pre-activation or adds one contribution to an operand's gradient; contributions to one
//! gradient add up in step order.

use crate::ir::{Activation, Graph, NodeId, Op};

/// A tensor a backward step reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// A node's output.
    Value(NodeId),
    /// A node's gradient (complete once every consumer's steps have run).
    Grad(NodeId),
    /// The gradient at a Linear or Grouped node's pre-activation ([`Step::PreGrad`]); for an identity
    /// activation, the node's gradient itself.
    PreGrad(NodeId),
}

/// What a contribution computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expr {
    /// `op(a)·b` with `a` read transposed when `trans_a` (no other transposes occur).
    Matmul {
        /// Left operand.
        a: Val,
        /// Right operand.
        b: Val,
        /// Read `a` transposed.
        trans_a: bool,
    },
    /// G products side by side, the gradients of an [`Op::Grouped`] node: `a` is its
    /// pre-activation gradient `dz` (`[B, G·N]`, G blocks of N columns). Without `trans_a`,
    /// `b` is the stacked weights `[G·N, K]` and block g of the result is `dz_g·w_g` (the
    /// input's gradient, `[B, G·K]`); with it, `b` is the input `[B, G·K]` and the result's
    /// rows g·N..(g+1)·N are `dz_gᵀ·x_g` (the stacked weights' gradient).
    Grouped {
        /// `dz`.
        a: Val,
        /// The weights or the input.
        b: Val,
        /// Which of the two products.
        trans_a: bool,
        /// G.
        groups: usize,
    },
    /// Values `start..start + len` of a tensor, flat: a packed parameter's part of the pack's
    /// gradient.
    Part {
        /// The pack's gradient.
        src: Val,
        /// First value.
        start: usize,
        /// How many.
        len: usize,
    },
    /// An embedding's gradient at its table: each table row the sum of the incoming gradient's
    /// rows that looked it up, in the inverse index's order.
    EmbedGrad {
        /// The incoming gradient `[B, D]`.
        dy: Val,
        /// The inverse index's offsets `[V + 1]`.
        offsets: Val,
        /// Its rows `[B]`.
        order: Val,
    },
    /// A product logit's gradient at its first operand (or, with `at_b`, its second):
    /// `dy · σ(−x) / (1 − σ(a)·σ(b))`.
    ProductLogitGrad {
        /// The incoming gradient.
        dy: Val,
        /// The first operand.
        a: Val,
        /// The second.
        b: Val,
        /// Whether the gradient is at `b`.
        at_b: bool,
    },
    /// The column sums of a `[rows, cols]` tensor (a bias gradient).
    ColSum(Val),
    /// `dy ⊙ act'(x)`, the derivative taken at the activation's input `x`.
    ActGrad {
        /// The activation.
        act: Activation,
        /// The incoming gradient.
        dy: Val,
        /// The activation's input.
        x: Val,
    },
    /// The tensor itself.
    Copy(Val),
    /// The elementwise product.
    Mul(Val, Val),
    /// `y ⊙ (dy − Σ_row dy ⊙ y)`: the softmax's gradient at its input, `y` its output.
    SoftmaxGrad {
        /// The softmax's output.
        y: Val,
        /// The incoming gradient.
        dy: Val,
    },
    /// Columns `start..start + width` of a tensor (a concatenation's part).
    Columns {
        /// The tensor.
        src: Val,
        /// First column.
        start: usize,
        /// How many.
        width: usize,
    },
    /// `src` placed at columns `start..start + width` of a wider tensor, zero elsewhere (a
    /// slice's gradient).
    Place {
        /// The slice's gradient.
        src: Val,
        /// First column.
        start: usize,
        /// How many.
        width: usize,
    },
    /// A cross-stitch's gradient at its blocks: `Σ_t alpha[t, s] · dy[r, t·D + d]`.
    StitchBlocks {
        /// The incoming gradient `[B, T·D]`.
        dy: Val,
        /// The mixing matrix.
        alpha: Val,
    },
    /// A cross-stitch's gradient at its matrix: `Σ_{r, d} dy[r, t·D + d] · x[r, s·D + d]`.
    StitchAlpha {
        /// The incoming gradient.
        dy: Val,
        /// The stitched blocks.
        x: Val,
    },
    /// DSelect-k's encoding's gradient at its bits.
    EncodeGrad {
        /// The incoming gradient `[B, k·E]`.
        dy: Val,
        /// The bits `[B, k·m]`.
        s: Val,
        /// E.
        experts: usize,
    },
    /// A mixture's gradient at its gate: `Σ_d dy[r, d] · x[r, e·D + d]`.
    MixGate {
        /// The incoming gradient `[B, D]`.
        dy: Val,
        /// The mixed blocks `[B, E·D]`.
        x: Val,
    },
    /// A mixture's gradient at its blocks: `gate[r, e] · dy[r, d]`.
    MixBlocks {
        /// The incoming gradient `[B, D]`.
        dy: Val,
        /// The gate `[B, E]`.
        gate: Val,
    },
    /// Task `task`'s loss gradient with respect to its logits, already scaled by the task's
    /// weight: the fused loss kernel computes it with the loss, in the forward pass.
    LossGrad {
        /// The loss node.
        loss: NodeId,
    },
}

/// One step of the backward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `PreGrad(of) = Grad(of) ⊙ act'(pre-activation of of)`, for a Linear or Grouped node `of` with a
    /// non-identity activation.
    PreGrad {
        /// The node.
        of: NodeId,
        /// Its activation.
        act: Activation,
    },
    /// `Grad(dst) += expr`: node `from`'s contribution to its operand `dst`'s gradient.
    Add {
        /// The node whose rule this is.
        from: NodeId,
        /// The operand whose gradient it adds to.
        dst: NodeId,
        /// What it adds.
        expr: Expr,
    },
}

/// The backward pass of `graph`: for each node, last to first, its rule's steps, leaving out
/// every contribution to a node that needs no gradient ([`Graph::needs_grad`]) and every rule
/// of a node no gradient reaches.
pub fn derive(graph: &Graph) -> Vec<Step> {
    let need = graph.needs_grad();
    let reached = reached(graph, &need);
    let mut steps = Vec::new();
    for i in (0..graph.nodes.len()).rev() {
        let id = NodeId(i);
        // Losses are where gradients start; any other node needs one to reach it.
        if !reached[i] && !matches!(graph.nodes[i].op, Op::Loss { .. }) {
            continue;
        }
        // y = act(z), z = x·wᵀ + b: first dz = dy ⊙ act'(z), which the Linear rule below reads.
        if let Op::Linear { act, .. } | Op::Grouped { act, .. } = graph.nodes[i].op {
            if act != Activation::Identity {
                steps.push(Step::PreGrad { of: id, act });
            }
        }
        let mut add = |dst: NodeId, expr: Expr| {
            if need[dst.0] {
                steps.push(Step::Add { from: id, dst, expr });
            }
        };
        match graph.nodes[i].op {
            Op::Input | Op::Param(_) => {}
            Op::Loss { logits, .. } => add(logits, Expr::LossGrad { loss: id }),
            Op::Linear { x, w, b, .. } => {
                // dx = dz·w; dw = dzᵀ·x; db = Σ_rows dz.
                let dz = Val::PreGrad(id);
                add(x, Expr::Matmul { a: dz, b: Val::Value(w), trans_a: false });
                add(w, Expr::Matmul { a: dz, b: Val::Value(x), trans_a: true });
                if let Some(b) = b {
                    add(b, Expr::ColSum(dz));
                }
            }
            Op::Grouped { x, w, b, groups, .. } => {
                let dz = Val::PreGrad(id);
                add(x, Expr::Grouped { a: dz, b: Val::Value(w), trans_a: false, groups });
                add(w, Expr::Grouped { a: dz, b: Val::Value(x), trans_a: true, groups });
                if let Some(b) = b {
                    add(b, Expr::ColSum(dz));
                }
            }
            Op::Pack(k) => {
                let mut start = 0;
                for &m in &graph.packs[k] {
                    let len: usize = graph.shape(m).iter().product();
                    add(m, Expr::Part { src: Val::Grad(id), start, len });
                    start += len;
                }
            }
            Op::Embed { table, offsets, order, .. } => add(
                table,
                Expr::EmbedGrad { dy: Val::Grad(id), offsets: Val::Value(offsets), order: Val::Value(order) },
            ),
            Op::ProductLogit { a, b } => {
                let (va, vb, dy) = (Val::Value(a), Val::Value(b), Val::Grad(id));
                add(a, Expr::ProductLogitGrad { dy, a: va, b: vb, at_b: false });
                add(b, Expr::ProductLogitGrad { dy, a: va, b: vb, at_b: true });
            }
            Op::Act { x, act } => add(x, Expr::ActGrad { act, dy: Val::Grad(id), x: Val::Value(x) }),
            Op::Add { a, b } => {
                add(a, Expr::Copy(Val::Grad(id)));
                add(b, Expr::Copy(Val::Grad(id)));
            }
            Op::Mul { a, b } => {
                add(a, Expr::Mul(Val::Grad(id), Val::Value(b)));
                add(b, Expr::Mul(Val::Grad(id), Val::Value(a)));
            }
            Op::Softmax { x } => add(x, Expr::SoftmaxGrad { y: Val::Value(id), dy: Val::Grad(id) }),
            Op::Concat { a, b } => {
                let (wa, wb) = (graph.shape(a)[1], graph.shape(b)[1]);
                add(a, Expr::Columns { src: Val::Grad(id), start: 0, width: wa });
                add(b, Expr::Columns { src: Val::Grad(id), start: wa, width: wb });
            }
            Op::Slice { x, start, width } => add(x, Expr::Place { src: Val::Grad(id), start, width }),
            Op::Stitch { x, alpha } => {
                add(x, Expr::StitchBlocks { dy: Val::Grad(id), alpha: Val::Value(alpha) });
                add(alpha, Expr::StitchAlpha { dy: Val::Grad(id), x: Val::Value(x) });
            }
            Op::Encode { s, experts } => add(s, Expr::EncodeGrad { dy: Val::Grad(id), s: Val::Value(s), experts }),
            Op::Mix { gate, x } => {
                add(gate, Expr::MixGate { dy: Val::Grad(id), x: Val::Value(x) });
                add(x, Expr::MixBlocks { dy: Val::Grad(id), gate: Val::Value(gate) });
            }
        }
    }
    steps
}

/// Which nodes a gradient reaches from some loss: those that need a gradient and have a
/// consumer that passes one on (losses pass their logits one).
pub fn reached(graph: &Graph, need: &[bool]) -> Vec<bool> {
    let n = graph.nodes.len();
    let mut reached = vec![false; n];
    for i in (0..n).rev() {
        match graph.nodes[i].op {
            Op::Loss { logits, .. } => reached[logits.0] |= need[logits.0],
            _ if reached[i] => {
                for o in graph.operands(NodeId(i)) {
                    reached[o.0] |= need[o.0];
                }
            }
            _ => {}
        }
    }
    reached
}
