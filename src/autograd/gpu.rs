//! The graph compiled for the GPU: every buffer allocated and every dispatch built once, then
//! replayed. A training step is one queue submit with no readback; parameters, gradients and
//! optimizer state are flat buffers (each tensor an aligned view), so the update is one
//! dispatch. Each op's backward dispatches are built beside its forward ones.

use std::sync::Arc;

use super::graph::{Graph, NodeId, Op};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch};
use crate::kernels::{self, Activation, MatmulSpec};
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// Offsets (in f32 elements) of tensors packed into one flat buffer, each aligned to `align`.
pub fn flat_layout(lens: &[usize], align: usize) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(lens.len());
    let mut at: usize = 0;
    for &n in lens {
        at = at.div_ceil(align) * align;
        offsets.push(at);
        at += n;
    }
    (offsets, at.max(1))
}

struct GpuOptim {
    opt: Optimizer,
    dispatch: Dispatch,
    state: Vec<Tensor>,
    step: u64,
}

/// A [`Graph`] compiled for the GPU: buffers, forward, backward and optimizer dispatches.
pub struct GpuGraph {
    ctx: Arc<Context>,
    graph: Graph,
    params: Tensor,
    grads: Tensor,
    param_views: Vec<Tensor>,
    grad_views: Vec<Tensor>,
    batch: Tensor,
    input_offsets: Vec<usize>,
    staging: Vec<f32>,
    values: Vec<Option<Tensor>>,
    node_grads: Vec<Option<Tensor>>,
    losses: Tensor,
    weights: Tensor,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    optim: Option<GpuOptim>,
}

fn node_len(g: &Graph, id: NodeId) -> usize {
    g.shape(id).iter().product()
}

impl GpuGraph {
    /// Compiles `graph` with initial parameters `init` (in [`Graph::params`] order) and an
    /// optional optimizer. Every task weight starts at 1.
    pub fn new(ctx: Arc<Context>, graph: Graph, init: &[Vec<f32>], optimizer: Option<Optimizer>) -> Result<GpuGraph> {
        if init.len() != graph.params.len() {
            return Err(Error::shape(
                "compile",
                format!("{} initial tensors for {} parameters", init.len(), graph.params.len()),
            ));
        }
        let align = (ctx.adapter().storage_offset_alignment as usize / 4).max(1);
        let n = graph.nodes.len();
        let tasks = graph.tasks().max(1);

        // Parameters and gradients: one flat buffer each.
        let lens: Vec<usize> = graph.params.iter().map(|p| p.shape.iter().product()).collect();
        let (offsets, total) = flat_layout(&lens, align);
        let mut host = vec![0f32; total];
        for (i, v) in init.iter().enumerate() {
            if v.len() != lens[i] {
                return Err(Error::shape(
                    "compile",
                    format!("parameter {} needs {} values, got {}", graph.params[i].name, lens[i], v.len()),
                ));
            }
            host[offsets[i]..offsets[i] + lens[i]].copy_from_slice(v);
        }
        let params = ctx.upload(&host, &[total])?;
        let grads = ctx.zeros(&[total])?;
        let param_views =
            (0..lens.len()).map(|i| params.view(offsets[i], &graph.params[i].shape)).collect::<Result<Vec<_>>>()?;
        let grad_views =
            (0..lens.len()).map(|i| grads.view(offsets[i], &graph.params[i].shape)).collect::<Result<Vec<_>>>()?;

        // Inputs: one flat batch buffer, written once per step.
        let inputs = graph.inputs();
        let in_lens: Vec<usize> = inputs.iter().map(|&id| node_len(&graph, id)).collect();
        let (input_offsets, batch_total) = flat_layout(&in_lens, align);
        let batch = ctx.zeros(&[batch_total])?;

        let losses = ctx.zeros(&[tasks])?;
        let weights = ctx.upload(&vec![1.0; tasks], &[tasks])?;

        // Values.
        let mut values: Vec<Option<Tensor>> = vec![None; n];
        let mut pre: Vec<Option<Tensor>> = vec![None; n];
        for i in 0..n {
            let shape = graph.nodes[i].shape.clone();
            values[i] = match graph.nodes[i].op {
                Op::Input => {
                    let k = inputs.iter().position(|&id| id.0 == i).expect("input listed");
                    Some(batch.view(input_offsets[k], &shape)?)
                }
                Op::Param(p) => Some(param_views[p].clone()),
                Op::Loss { .. } => None,
                Op::Linear { act, .. } => {
                    if !act.grad_from_output() {
                        pre[i] = Some(ctx.empty(&shape)?);
                    }
                    Some(ctx.empty(&shape)?)
                }
                _ => Some(ctx.empty(&shape)?),
            };
        }

        // Gradients: parameters into the flat buffer, other nodes their own.
        let need = graph.needs_grad();
        let mut node_grads: Vec<Option<Tensor>> = vec![None; n];
        for i in 0..n {
            if !need[i] {
                continue;
            }
            node_grads[i] = Some(match graph.nodes[i].op {
                Op::Param(p) => grad_views[p].clone(),
                _ => ctx.empty(&graph.nodes[i].shape)?,
            });
        }

        let v = |id: NodeId| -> Result<&Tensor> {
            values[id.0].as_ref().ok_or_else(|| Error::shape("compile", format!("node {} has no value", id.0)))
        };
        let gr = |id: NodeId| -> Result<&Tensor> {
            node_grads[id.0].as_ref().ok_or_else(|| Error::shape("compile", format!("node {} has no gradient", id.0)))
        };

        // Forward.
        let mut forward = Vec::new();
        for i in 0..n {
            let id = NodeId(i);
            match graph.nodes[i].op {
                Op::Input | Op::Param(_) => {}
                Op::Linear { x, w, b, act } => {
                    let bias = match b {
                        Some(b) => Some(v(b)?),
                        None => None,
                    };
                    if let Some(z) = &pre[i] {
                        let spec = MatmulSpec { trans_b: true, ..Default::default() };
                        forward.push(kernels::matmul(&ctx, v(x)?, v(w)?, bias, z, &spec)?);
                        forward.push(kernels::act_forward(&ctx, act, z, v(id)?)?);
                    } else {
                        let spec = MatmulSpec { trans_b: true, act, ..Default::default() };
                        forward.push(kernels::matmul(&ctx, v(x)?, v(w)?, bias, v(id)?, &spec)?);
                    }
                }
                Op::Act { x, act } => forward.push(kernels::act_forward(&ctx, act, v(x)?, v(id)?)?),
                Op::Add { a, b } => forward.push(kernels::add(&ctx, v(a)?, v(b)?, v(id)?)?),
                Op::Loss { logits, labels, mask, kind, task } => {
                    // The fused kernel also writes the (weighted) gradient of the logits; when
                    // nothing upstream learns, it goes to a scratch buffer.
                    let scratch;
                    let grad = match &node_grads[logits.0] {
                        Some(g) => g,
                        None => {
                            scratch = ctx.empty(graph.shape(logits))?;
                            &scratch
                        }
                    };
                    forward.push(kernels::task_loss(
                        &ctx,
                        kind,
                        v(logits)?,
                        v(labels)?,
                        v(mask)?,
                        &weights,
                        task,
                        grad,
                        &losses,
                    )?);
                }
            }
        }

        // Backward, in reverse; the first contribution to a gradient overwrites, later ones add.
        let mut written = vec![false; n];
        let mut backward = Vec::new();
        for i in (0..n).rev() {
            let id = NodeId(i);
            match graph.nodes[i].op {
                Op::Input | Op::Param(_) => {}
                Op::Loss { logits, .. } => {
                    if need[logits.0] {
                        if written[logits.0] {
                            return Err(Error::invalid("graph", "logits that feed a loss must feed nothing else"));
                        }
                        written[logits.0] = true;
                    }
                }
                Op::Linear { x, w, b, act } => {
                    if !need[i] || !written[i] {
                        continue; // no gradient reaches this node
                    }
                    let dy = gr(id)?;
                    let dz_own;
                    let dz = if act == Activation::Identity {
                        dy
                    } else {
                        dz_own = ctx.empty(graph.shape(id))?;
                        let (saved, from_output) = match &pre[i] {
                            Some(z) => (z, false),
                            None => (v(id)?, true),
                        };
                        backward.push(kernels::act_backward(&ctx, act, dy, saved, from_output, &dz_own, false)?);
                        &dz_own
                    };
                    if need[x.0] {
                        let spec = MatmulSpec { accumulate: written[x.0], ..Default::default() };
                        backward.push(kernels::matmul(&ctx, dz, v(w)?, None, gr(x)?, &spec)?);
                        written[x.0] = true;
                    }
                    if need[w.0] {
                        let spec = MatmulSpec { trans_a: true, accumulate: written[w.0], ..Default::default() };
                        backward.push(kernels::matmul(&ctx, dz, v(x)?, None, gr(w)?, &spec)?);
                        written[w.0] = true;
                    }
                    if let Some(b) = b {
                        if need[b.0] {
                            backward.push(kernels::col_sum(&ctx, dz, gr(b)?, written[b.0])?);
                            written[b.0] = true;
                        }
                    }
                }
                Op::Act { x, act } => {
                    if need[i] && written[i] && need[x.0] {
                        backward.push(kernels::act_backward(&ctx, act, gr(id)?, v(x)?, false, gr(x)?, written[x.0])?);
                        written[x.0] = true;
                    }
                }
                Op::Add { a, b } => {
                    if !(need[i] && written[i]) {
                        continue;
                    }
                    for o in [a, b] {
                        if need[o.0] {
                            if written[o.0] {
                                backward.push(kernels::axpy(&ctx, 1.0, gr(id)?, gr(o)?)?);
                            } else {
                                backward.push(kernels::act_forward(&ctx, Activation::Identity, gr(id)?, gr(o)?)?);
                            }
                            written[o.0] = true;
                        }
                    }
                }
            }
        }

        let optim = match optimizer {
            None => None,
            Some(opt) => {
                opt.check()?;
                let mut state = Vec::new();
                for _ in 0..opt.state_buffers().max(1) {
                    state.push(ctx.zeros(&[total])?);
                }
                let dispatch = match opt {
                    Optimizer::Sgd { momentum, nesterov, .. } => {
                        kernels::sgd(&ctx, &params, &grads, &state[0], nesterov, momentum != 0.0, opt.uniform(1))?
                    }
                    Optimizer::Adam { beta1, beta2, .. } | Optimizer::AdamW { beta1, beta2, .. } => {
                        let decoupled = matches!(opt, Optimizer::AdamW { .. });
                        kernels::adam(
                            &ctx,
                            &params,
                            &grads,
                            &state[0],
                            &state[1],
                            (beta1, beta2),
                            decoupled,
                            opt.uniform(1),
                        )?
                    }
                };
                Some(GpuOptim { opt, dispatch, state, step: 0 })
            }
        };

        Ok(GpuGraph {
            ctx,
            graph,
            params,
            grads,
            param_views,
            grad_views,
            batch,
            input_offsets,
            staging: vec![0.0; batch_total],
            values,
            node_grads,
            losses,
            weights,
            forward,
            backward,
            optim,
        })
    }

    /// The graph this was compiled from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Writes one batch: every input in [`Graph::inputs`] order, with one upload.
    pub fn feed(&mut self, inputs: &[&[f32]]) -> Result<()> {
        let ids = self.graph.inputs();
        if inputs.len() != ids.len() {
            return Err(Error::shape("feed", format!("{} inputs for {} input nodes", inputs.len(), ids.len())));
        }
        for (k, id) in ids.iter().enumerate() {
            let len = node_len(&self.graph, *id);
            if inputs[k].len() != len {
                let name = &self.graph.nodes[id.0].name;
                return Err(Error::shape("feed", format!("input {name} needs {len} values, got {}", inputs[k].len())));
            }
            self.staging[self.input_offsets[k]..self.input_offsets[k] + len].copy_from_slice(inputs[k]);
        }
        self.ctx.write(&self.batch, &self.staging)
    }

    /// Sets the task weights w_t of Σ_t w_t·L_t (read by the loss kernels on the GPU).
    pub fn set_task_weights(&self, w: &[f32]) -> Result<()> {
        self.ctx.write(&self.weights, w)
    }

    /// Runs the forward pass (losses included): one submit.
    pub fn forward(&self) -> Result<()> {
        let d: Vec<&Dispatch> = self.forward.iter().collect();
        self.ctx.run(&d)
    }

    /// Runs forward and backward (gradients, no update): one submit.
    pub fn forward_backward(&self) -> Result<()> {
        let d: Vec<&Dispatch> = self.forward.iter().chain(&self.backward).collect();
        self.ctx.run(&d)
    }

    /// One training step on the fed batch: forward, backward and the optimizer update in one
    /// submit, nothing read back.
    pub fn step(&mut self) -> Result<()> {
        let Some(opt) = self.optim.as_mut() else {
            return Err(Error::invalid("step", "the graph was compiled without an optimizer"));
        };
        opt.step += 1;
        opt.dispatch.set_params(&self.ctx, [self.params.len() as u32, 0, 0, 0], opt.opt.uniform(opt.step));
        let d: Vec<&Dispatch> =
            self.forward.iter().chain(&self.backward).chain(std::iter::once(&opt.dispatch)).collect();
        self.ctx.run(&d)
    }

    /// The optimizer's state tensors, each split per parameter (one readback each): SGD's
    /// momentum buffer, or Adam's exp_avg and exp_avg_sq. Empty without an optimizer.
    pub fn read_optim_state(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        let Some(o) = &self.optim else { return Ok(vec![]) };
        let n = o.opt.state_buffers();
        o.state[..n].iter().map(|t| self.split(&self.ctx.read(t)?, &self.param_views)).collect()
    }

    /// Restores optimizer state (as [`GpuGraph::read_optim_state`] returns it) and the step count.
    pub fn write_optim_state(&mut self, state: &[Vec<Vec<f32>>], steps: u64) -> Result<()> {
        let base = self.param_views.first().map_or(0, Tensor::offset_bytes);
        let offsets: Vec<usize> = self.param_views.iter().map(|t| ((t.offset_bytes() - base) / 4) as usize).collect();
        let total = self.params.len();
        let Some(o) = self.optim.as_mut() else {
            return Err(Error::invalid("optimizer state", "the graph has no optimizer"));
        };
        if state.len() != o.opt.state_buffers() {
            return Err(Error::invalid(
                "optimizer state",
                format!("{} tensors per parameter, the optimizer keeps {}", state.len(), o.opt.state_buffers()),
            ));
        }
        for (buf, per_param) in o.state.iter().zip(state) {
            let mut flat = vec![0f32; total];
            for (i, v) in per_param.iter().enumerate() {
                let len = self.param_views[i].len();
                if v.len() != len {
                    return Err(Error::shape(
                        "optimizer state",
                        format!("{} values for a parameter of {len}", v.len()),
                    ));
                }
                flat[offsets[i]..offsets[i] + len].copy_from_slice(v);
            }
            self.ctx.write(buf, &flat)?;
        }
        o.step = steps;
        Ok(())
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.optim.as_ref().map_or(0, |o| o.step)
    }

    /// Dispatches in one training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.forward.len() + self.backward.len() + usize::from(self.optim.is_some())
    }

    /// Reads the task losses back (one readback).
    pub fn losses(&self) -> Result<Vec<f32>> {
        self.ctx.read(&self.losses)
    }

    /// Reads every parameter back, in [`Graph::params`] order (one readback).
    pub fn read_params(&self) -> Result<Vec<Vec<f32>>> {
        self.split(&self.ctx.read(&self.params)?, &self.param_views)
    }

    /// Reads every parameter gradient back, in [`Graph::params`] order (one readback).
    pub fn read_grads(&self) -> Result<Vec<Vec<f32>>> {
        self.split(&self.ctx.read(&self.grads)?, &self.grad_views)
    }

    fn split(&self, flat: &[f32], views: &[Tensor]) -> Result<Vec<Vec<f32>>> {
        let base = views.first().map_or(0, Tensor::offset_bytes);
        Ok(views
            .iter()
            .map(|t| {
                let off = ((t.offset_bytes() - base) / 4) as usize;
                flat[off..off + t.len()].to_vec()
            })
            .collect())
    }

    /// Reads several nodes' outputs back in one readback (losses are not nodes with values).
    pub fn read_values(&self, ids: &[NodeId]) -> Result<Vec<Vec<f32>>> {
        let mut ts = Vec::new();
        for id in ids {
            ts.push(
                self.values[id.0]
                    .as_ref()
                    .ok_or_else(|| Error::shape("read_values", format!("node {} has no value", id.0)))?,
            );
        }
        self.ctx.read_many(&ts)
    }

    /// Reads a node's output back.
    pub fn read_value(&self, id: NodeId) -> Result<Vec<f32>> {
        match &self.values[id.0] {
            Some(t) => self.ctx.read(t),
            None => Ok(vec![
                self.losses()?[match self.graph.nodes[id.0].op {
                    Op::Loss { task, .. } => task,
                    _ => 0,
                }],
            ]),
        }
    }

    /// Reads a node's gradient back (None where the node needs none).
    pub fn read_grad(&self, id: NodeId) -> Result<Option<Vec<f32>>> {
        match &self.node_grads[id.0] {
            Some(t) => Ok(Some(self.ctx.read(t)?)),
            None => Ok(None),
        }
    }

    /// Overwrites every parameter (in [`Graph::params`] order).
    pub fn write_params(&self, values: &[Vec<f32>]) -> Result<()> {
        if values.len() != self.param_views.len() {
            return Err(Error::shape(
                "write_params",
                format!("{} tensors for {}", values.len(), self.param_views.len()),
            ));
        }
        for (t, v) in self.param_views.iter().zip(values) {
            self.ctx.write(t, v)?;
        }
        Ok(())
    }
}
