//! The graph on the CPU, generic over f32 and f64: the reference the GPU plan is compared
//! with and, in f64, the oracle of the finite-difference gradient checks. The forward pass is
//! interpreted op by op; the backward pass interprets the steps of [`backward::derive()`], the
//! gradient rules the GPU compiler lowers too.

use super::backward::{self, Expr, Step, Val};
use crate::cpu::{self, Real};
use crate::error::{Error, Result};
use crate::ir::{Activation, GroupedLayout, MatmulShape};
use crate::ir::{Graph, NodeId, Op};

/// Everything one forward and backward pass computed.
#[derive(Clone, Debug)]
pub struct CpuRun<T> {
    /// Each node's output.
    pub values: Vec<Vec<T>>,
    /// Pre-activation of Linear and Grouped nodes (empty elsewhere).
    pub pre: Vec<Vec<T>>,
    /// Each node's gradient (of Σ_t w_t·L_t); empty where none is needed.
    pub grads: Vec<Vec<T>>,
    /// Task losses, by task index.
    pub losses: Vec<T>,
}

impl<T: Real> CpuRun<T> {
    /// Gradients of the parameters, in [`Graph::params`] order.
    pub fn param_grads(&self, g: &Graph) -> Vec<Vec<T>> {
        g.params.iter().map(|p| self.grads[p.node.0].clone()).collect()
    }
    /// Σ_t w_t·L_t.
    pub fn total(&self, weights: &[T]) -> T {
        self.losses.iter().zip(weights).fold(T::of(0.0), |s, (&l, &w)| s + w * l)
    }
}

fn add_into<T: Real>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// Runs the forward pass (and, with `backward`, the backward pass) of `g`. `inputs` follow
/// [`Graph::inputs`] order, `params` [`Graph::params`] order; `weights[t]` scales task t's loss.
pub fn run<T: Real>(
    g: &Graph,
    params: &[Vec<T>],
    inputs: &[Vec<T>],
    weights: &[T],
    backward: bool,
) -> Result<CpuRun<T>> {
    let input_ids = g.inputs();
    if inputs.len() != input_ids.len() || params.len() != g.params.len() || weights.len() < g.tasks() {
        return Err(Error::shape("graph run", "wrong number of inputs, parameters or weights"));
    }
    let fwd = forward(g, params, inputs, weights)?;
    let grads = if backward { backward_pass(g, &fwd) } else { vec![Vec::new(); g.nodes.len()] };
    Ok(CpuRun { values: fwd.values, pre: fwd.pre, grads, losses: fwd.losses })
}

/// What the forward pass leaves for the backward pass.
struct Forward<T> {
    values: Vec<Vec<T>>,
    /// Pre-activation of Linear and Grouped nodes (empty elsewhere).
    pre: Vec<Vec<T>>,
    /// Loss node → the gradient of its (weighted) loss at its logits.
    seeds: Vec<Vec<T>>,
    losses: Vec<T>,
}

/// Interprets every node in order (the graph is topologically sorted).
fn forward<T: Real>(g: &Graph, params: &[Vec<T>], inputs: &[Vec<T>], weights: &[T]) -> Result<Forward<T>> {
    let n = g.nodes.len();
    let mut f = Forward {
        values: vec![Vec::new(); n],
        pre: vec![Vec::new(); n],
        seeds: vec![Vec::new(); n],
        losses: vec![T::of(0.0); g.tasks()],
    };
    for (k, id) in g.inputs().iter().enumerate() {
        f.values[id.0] = inputs[k].clone();
    }
    for i in 0..n {
        let shape = &g.nodes[i].shape;
        let len: usize = shape.iter().product();
        let values = &f.values;
        let y = match g.nodes[i].op {
            Op::Input if values[i].len() != len => {
                return Err(Error::shape("graph run", format!("input {} needs {len} values", g.nodes[i].name)));
            }
            Op::Input => continue,
            Op::Param(p) => params[p].clone(),
            Op::Linear { x, w, b, act } => {
                let (m, k) = (g.shape(x)[0], g.shape(x)[1]);
                let s = MatmulShape { m, n: shape[1], k };
                let mut z = vec![T::of(0.0); len];
                let bias = b.map(|b| values[b.0].as_slice());
                cpu::matmul(&values[x.0], &values[w.0], bias, &mut z, s, false, true, Activation::Identity, false);
                let mut y = vec![T::of(0.0); len];
                cpu::act_forward(act, &z, &mut y);
                f.pre[i] = z;
                y
            }
            Op::Grouped { x, w, b, act, groups } => {
                let (m, k) = (g.shape(x)[0], g.shape(w)[1]);
                let s = MatmulShape { m, n: shape[1] / groups, k };
                let mut z = vec![T::of(0.0); len];
                let bias = b.map(|b| values[b.0].as_slice());
                let layout = GroupedLayout::FORWARD;
                cpu::grouped_matmul(
                    &values[x.0],
                    &values[w.0],
                    bias,
                    &mut z,
                    s,
                    groups,
                    layout,
                    Activation::Identity,
                    false,
                );
                let mut y = vec![T::of(0.0); len];
                cpu::act_forward(act, &z, &mut y);
                f.pre[i] = z;
                y
            }
            Op::Pack(k) => g.packs[k].iter().flat_map(|m| values[m.0].iter().copied()).collect(),
            Op::Loss { logits, labels, mask, kind, task } => {
                let mut grad = vec![T::of(0.0); values[logits.0].len()];
                let l = cpu::task_loss(
                    kind,
                    &values[logits.0],
                    &values[labels.0],
                    &values[mask.0],
                    weights[task],
                    &mut grad,
                );
                f.losses[task] = l;
                f.seeds[i] = grad;
                vec![l]
            }
            op => {
                let mut y = vec![T::of(0.0); len];
                elementwise(g, op, shape.get(1).copied().unwrap_or(1), values, &mut y);
                y
            }
        };
        f.values[i] = y;
    }
    Ok(f)
}

/// The value of a node that is a pure function of other nodes' values (no parameters, no
/// pre-activation, no loss), written into `y`; `cols` is the node's width.
fn elementwise<T: Real>(g: &Graph, op: Op, cols: usize, values: &[Vec<T>], y: &mut [T]) {
    match op {
        Op::Act { x, act } => cpu::act_forward(act, &values[x.0], y),
        Op::Add { a, b } => cpu::add(&values[a.0], &values[b.0], y),
        Op::Mul { a, b } => cpu::mul(&values[a.0], &values[b.0], y, false),
        Op::Softmax { x } => cpu::softmax_rows(&values[x.0], cols, y),
        Op::Concat { a, b } => {
            let (wa, wb) = (g.shape(a)[1], g.shape(b)[1]);
            cpu::copy_columns(&values[a.0], wa, 0, y, wa + wb, 0, wa, None);
            cpu::copy_columns(&values[b.0], wb, 0, y, wa + wb, wa, wb, None);
        }
        Op::Slice { x, start, width } => {
            cpu::copy_columns(&values[x.0], g.shape(x)[1], start, y, width, 0, width, None)
        }
        Op::Stitch { x, alpha } => {
            let t = g.shape(alpha)[0];
            cpu::stitch(&values[x.0], &values[alpha.0], t, cols / t, y, false, false);
        }
        Op::Encode { s, experts } => cpu::encode(&values[s.0], experts, y),
        Op::Mix { gate, x } => cpu::mix(&values[gate.0], &values[x.0], g.shape(gate)[1], y),
        Op::ProductLogit { a, b } => cpu::product_logit(&values[a.0], &values[b.0], y),
        Op::Embed { table, ids, .. } => cpu::embed_gather(&values[table.0], &values[ids.0], cols, y),
        Op::Input | Op::Param(_) | Op::Pack(_) | Op::Linear { .. } | Op::Grouped { .. } | Op::Loss { .. } => {
            unreachable!("{op:?} is interpreted by forward()")
        }
    }
}

/// Interprets the steps of [`backward::derive()`]: each node's gradient of Σ_t w_t·L_t.
fn backward_pass<T: Real>(g: &Graph, f: &Forward<T>) -> Vec<Vec<T>> {
    let n = g.nodes.len();
    let need = g.needs_grad();
    let mut grads: Vec<Vec<T>> =
        (0..n).map(|i| if need[i] { vec![T::of(0.0); f.values[i].len()] } else { Vec::new() }).collect();
    // Gradients at Linear nodes' pre-activations, by node.
    let mut pre_grads: Vec<Vec<T>> = vec![Vec::new(); n];
    for step in backward::derive(g) {
        match step {
            Step::PreGrad { of, act } => {
                let mut dz = vec![T::of(0.0); grads[of.0].len()];
                cpu::act_backward(act, &grads[of.0], &f.pre[of.0], false, &mut dz, false);
                pre_grads[of.0] = dz;
            }
            Step::Add { dst, expr, .. } => {
                // A step never reads the gradient it adds to (it reads its own node's).
                let mut out = std::mem::take(&mut grads[dst.0]);
                let read = |v: Val| -> &[T] {
                    match v {
                        Val::Value(id) => &f.values[id.0],
                        Val::Grad(id) => &grads[id.0],
                        Val::PreGrad(id) if pre_grads[id.0].is_empty() => &grads[id.0],
                        Val::PreGrad(id) => &pre_grads[id.0],
                    }
                };
                contribute(g, expr, &read, &f.seeds, &mut out);
                grads[dst.0] = out;
            }
        }
    }
    grads
}

/// Adds one backward contribution to `out` (a gradient, accumulated in place).
fn contribute<'a, T: Real>(g: &Graph, expr: Expr, read: &dyn Fn(Val) -> &'a [T], seeds: &[Vec<T>], out: &mut [T]) {
    let rows_cols = |v: Val| -> (usize, usize) {
        let id = match v {
            Val::Value(id) | Val::Grad(id) | Val::PreGrad(id) => id,
        };
        let s = g.shape(id);
        (s[0], s.get(1).copied().unwrap_or(1))
    };
    match expr {
        Expr::Matmul { a, b, trans_a } => {
            let ((ar, ac), (br, bc)) = (rows_cols(a), rows_cols(b));
            let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
            debug_assert_eq!(k, br);
            let s = MatmulShape { m, n: bc, k };
            cpu::matmul(read(a), read(b), None, out, s, trans_a, false, Activation::Identity, true);
        }
        Expr::Grouped { a, b, trans_a, groups } => {
            // a = dz [B, G·N]; b = w [G·N, K] (the input's gradient) or x [B, G·K] (the weights').
            let ((rows, gn), (_, bc)) = (rows_cols(a), rows_cols(b));
            let n = gn / groups;
            let (s, layout) = if trans_a {
                (MatmulShape { m: n, n: bc / groups, k: rows }, GroupedLayout::GRAD_WEIGHT)
            } else {
                (MatmulShape { m: rows, n: bc, k: n }, GroupedLayout::GRAD_INPUT)
            };
            cpu::grouped_matmul(read(a), read(b), None, out, s, groups, layout, Activation::Identity, true);
        }
        Expr::Part { src, start, len } => add_into(out, &read(src)[start..start + len]),
        Expr::EmbedGrad { dy, offsets, order } => {
            cpu::embed_scatter(read(dy), read(offsets), read(order), rows_cols(dy).1, out, true)
        }
        Expr::ProductLogitGrad { dy, a, b, at_b } => {
            cpu::product_logit_grad(read(a), read(b), read(dy), at_b, out, true)
        }
        Expr::ColSum(v) => {
            let (rows, cols) = rows_cols(v);
            cpu::col_sum(read(v), rows, cols, out, true);
        }
        Expr::ActGrad { act, dy, x } => cpu::act_backward(act, read(dy), read(x), false, out, true),
        Expr::Copy(v) => add_into(out, read(v)),
        Expr::Mul(x, y) => cpu::mul(read(x), read(y), out, true),
        Expr::SoftmaxGrad { y, dy } => cpu::softmax_rows_backward(read(y), read(dy), rows_cols(y).1, out, true),
        Expr::Columns { src, start, width } => {
            let (_, w) = rows_cols(src);
            let mut part = vec![T::of(0.0); out.len()];
            cpu::copy_columns(read(src), w, start, &mut part, width, 0, width, None);
            add_into(out, &part);
        }
        Expr::Place { src, start, width } => {
            let (_, w) = rows_cols(src);
            debug_assert_eq!(w, width);
            let wide = out.len() / rows_cols(src).0;
            let mut part = vec![T::of(0.0); out.len()];
            cpu::copy_columns(read(src), width, 0, &mut part, wide, start, width, None);
            add_into(out, &part);
        }
        Expr::StitchBlocks { dy, alpha } => {
            let t = rows_cols(alpha).0;
            cpu::stitch(read(dy), read(alpha), t, rows_cols(dy).1 / t, out, true, true);
        }
        Expr::StitchAlpha { dy, x } => {
            let t = (out.len() as f64).sqrt().round() as usize;
            cpu::stitch_grad_alpha(read(dy), read(x), t, rows_cols(x).1 / t, out, true);
        }
        Expr::EncodeGrad { dy, s, experts } => cpu::encode_grad(read(dy), read(s), experts, out, true),
        Expr::MixGate { dy, x } => {
            let experts = out.len() / rows_cols(dy).0;
            cpu::mix_grad_gate(read(dy), read(x), experts, out, true);
        }
        Expr::MixBlocks { dy, gate } => cpu::mix_grad_x(read(dy), read(gate), rows_cols(gate).1, out, true),
        Expr::LossGrad { loss } => add_into(out, &seeds[loss.0]),
    }
}

/// The node ids of a run's inputs, for callers that build input vectors by name.
pub fn input_index(g: &Graph, name: &str) -> Option<usize> {
    g.inputs().iter().position(|id: &NodeId| g.nodes[id.0].name == name)
}
