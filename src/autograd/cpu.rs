//! The graph on the CPU, generic over f32 and f64: the reference the GPU plan is compared
//! with and, in f64, the oracle of the finite-difference gradient checks. Each op's backward
//! rule sits beside its forward rule.

use crate::cpu::{self, Real};
use crate::error::{Error, Result};
use crate::ir::{Activation, MatmulShape};
use crate::ir::{Graph, NodeId, Op};

/// Everything one forward and backward pass computed.
#[derive(Clone, Debug)]
pub struct CpuRun<T> {
    /// Each node's output.
    pub values: Vec<Vec<T>>,
    /// Pre-activation of Linear nodes (empty elsewhere).
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
    let n = g.nodes.len();
    let input_ids = g.inputs();
    if inputs.len() != input_ids.len() || params.len() != g.params.len() || weights.len() < g.tasks() {
        return Err(Error::shape("graph run", "wrong number of inputs, parameters or weights"));
    }
    let mut values: Vec<Vec<T>> = vec![Vec::new(); n];
    let mut pre: Vec<Vec<T>> = vec![Vec::new(); n];
    let mut seeds: Vec<Vec<T>> = vec![Vec::new(); n]; // loss node → gradient of its logits
    let mut losses = vec![T::of(0.0); g.tasks()];
    for (k, id) in input_ids.iter().enumerate() {
        values[id.0] = inputs[k].clone();
    }
    for i in 0..n {
        let shape = &g.nodes[i].shape;
        let len: usize = shape.iter().product();
        match g.nodes[i].op {
            Op::Input => {
                if values[i].len() != len {
                    return Err(Error::shape("graph run", format!("input {} needs {len} values", g.nodes[i].name)));
                }
            }
            Op::Param(p) => values[i] = params[p].clone(),
            Op::Linear { x, w, b, act } => {
                let (m, k) = (g.shape(x)[0], g.shape(x)[1]);
                let s = MatmulShape { m, n: shape[1], k };
                let mut z = vec![T::of(0.0); len];
                let bias = b.map(|b| values[b.0].as_slice());
                cpu::matmul(&values[x.0], &values[w.0], bias, &mut z, s, false, true, Activation::Identity, false);
                let mut y = vec![T::of(0.0); len];
                cpu::act_forward(act, &z, &mut y);
                pre[i] = z;
                values[i] = y;
            }
            Op::Act { x, act } => {
                let mut y = vec![T::of(0.0); len];
                cpu::act_forward(act, &values[x.0], &mut y);
                values[i] = y;
            }
            Op::Add { a, b } => {
                let mut y = vec![T::of(0.0); len];
                cpu::add(&values[a.0], &values[b.0], &mut y);
                values[i] = y;
            }
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
                losses[task] = l;
                values[i] = vec![l];
                seeds[i] = grad;
            }
        }
    }
    let mut grads: Vec<Vec<T>> = vec![Vec::new(); n];
    if backward {
        let need = g.needs_grad();
        for i in 0..n {
            if need[i] {
                grads[i] = vec![T::of(0.0); values[i].len()];
            }
        }
        for i in (0..n).rev() {
            match g.nodes[i].op {
                Op::Input | Op::Param(_) => {}
                Op::Loss { logits, .. } => {
                    if need[logits.0] {
                        add_into(&mut grads[logits.0], &seeds[i]);
                    }
                }
                Op::Linear { x, w, b, act } => {
                    if !need[i] {
                        continue;
                    }
                    let dy = grads[i].clone();
                    let mut dz = vec![T::of(0.0); dy.len()];
                    cpu::act_backward(act, &dy, &pre[i], false, &mut dz, false);
                    let (m, k, out) = (g.shape(x)[0], g.shape(x)[1], g.nodes[i].shape[1]);
                    if need[x.0] {
                        // dx += dz·w : [m, out]·[out, k]
                        let s = MatmulShape { m, n: k, k: out };
                        cpu::matmul(
                            &dz,
                            &values[w.0],
                            None,
                            &mut grads[x.0],
                            s,
                            false,
                            false,
                            Activation::Identity,
                            true,
                        );
                    }
                    if need[w.0] {
                        // dw += dzᵀ·x : [out, m]·[m, k]
                        let s = MatmulShape { m: out, n: k, k: m };
                        cpu::matmul(
                            &dz,
                            &values[x.0],
                            None,
                            &mut grads[w.0],
                            s,
                            true,
                            false,
                            Activation::Identity,
                            true,
                        );
                    }
                    if let Some(b) = b {
                        if need[b.0] {
                            cpu::col_sum(&dz, m, out, &mut grads[b.0], true);
                        }
                    }
                }
                Op::Act { x, act } => {
                    if need[i] && need[x.0] {
                        let dy = grads[i].clone();
                        cpu::act_backward(act, &dy, &values[x.0], false, &mut grads[x.0], true);
                    }
                }
                Op::Add { a, b } => {
                    if need[i] {
                        let dy = grads[i].clone();
                        for o in [a, b] {
                            if need[o.0] {
                                add_into(&mut grads[o.0], &dy);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(CpuRun { values, pre, grads, losses })
}

/// The node ids of a run's inputs, for callers that build input vectors by name.
pub fn input_index(g: &Graph, name: &str) -> Option<usize> {
    g.inputs().iter().position(|id: &NodeId| g.nodes[id.0].name == name)
}
