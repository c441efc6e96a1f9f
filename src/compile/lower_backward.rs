//! Lowering of the backward pass: the steps of the gradient rules
//! ([`crate::autograd::backward::derive()`]) become dispatches in order. The first
//! contribution to a gradient overwrites it, later ones add. Fused heads are lowered as one
//! group; a product that writes an activation's whole gradient takes its derivative in its
//! epilogue ([`super::fuse_act_grad`]); with a [`Split`], each task's contribution to the
//! split node goes to that task's own slot.

use std::collections::HashMap;

use super::fuse_act_grad::ActGradFusion;
use super::fuse_heads::HeadGroup;
use super::memory::Memory;
use super::upgrade::{matmul_upgradable, UpgradeJob};
use crate::autograd::backward::{self, Expr, Step, Val};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, Tensor};
use crate::ir::{Activation, Graph, GroupedLayout, MatmulShape, NodeId, Op};
use crate::kernels::{self, MatmulSpec};

/// Per-task gradient contributions at node `z` kept apart: the contribution of a node after
/// `z` that feeds only task t's loss goes to `slots[t]`.
pub struct Split<'a> {
    /// The split node.
    pub z: usize,
    /// For each node, the one task whose loss it feeds (None: several, or none).
    pub task_of: Vec<Option<usize>>,
    /// Each task's slot, shaped like z.
    pub slots: &'a [Tensor],
}

impl Split<'_> {
    /// For each node, the one task whose loss it alone feeds.
    pub fn tasks_of(graph: &Graph, consumers: &[Vec<usize>]) -> Vec<Option<usize>> {
        let n = graph.nodes.len();
        let mut task_of: Vec<Option<usize>> = vec![None; n];
        for i in (0..n).rev() {
            task_of[i] = match graph.nodes[i].op {
                Op::Loss { task, .. } => Some(task),
                _ => {
                    let ts: Vec<Option<usize>> = consumers[i].iter().map(|&c| task_of[c]).collect();
                    match ts.first() {
                        Some(&Some(t)) if ts.iter().all(|x| *x == Some(t)) => Some(t),
                        _ => None,
                    }
                }
            };
        }
        task_of
    }
}

/// The lowered backward pass.
pub struct Backward {
    /// Its dispatches, in order.
    pub dispatches: Vec<Dispatch>,
    /// With a split: where the part after the split node ends (the heads), the rest being the
    /// shared part below it, which reads the split node's combined gradient.
    pub head_end: Option<usize>,
}

/// What the backward lowering reads.
pub struct Inputs<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Its buffers.
    pub mem: &'a Memory,
    /// Fused head groups and each member's place.
    pub groups: &'a [HeadGroup],
    /// Node → (group, place).
    pub member_of: &'a HashMap<usize, (usize, usize)>,
    /// Which nodes need a gradient.
    pub need: &'a [bool],
    /// The activation-gradient fusion.
    pub fusion: ActGradFusion<'a>,
    /// The per-task split, if any.
    pub split: Option<Split<'a>>,
}

struct Lowering<'a, 'j> {
    ctx: &'a Context,
    inp: Inputs<'a>,
    written: Vec<bool>,
    written_slot: Vec<bool>,
    act_applied: Vec<bool>,
    /// Gradients at Linear nodes' pre-activations, where they have their own buffer.
    pre_grads: Vec<Option<Tensor>>,
    group_done: Vec<bool>,
    out: Vec<Dispatch>,
    head_end: Option<usize>,
    upgrades: &'j mut Vec<UpgradeJob>,
}

/// Lowers the backward pass of `inp.graph`.
pub fn lower(ctx: &Context, inp: Inputs<'_>, upgrades: &mut Vec<UpgradeJob>) -> Result<Backward> {
    let n = inp.graph.nodes.len();
    let tasks = inp.graph.tasks();
    let groups = inp.groups.len();
    let steps = backward::derive(inp.graph);
    let mut l = Lowering {
        ctx,
        inp,
        written: vec![false; n],
        written_slot: vec![false; tasks],
        act_applied: vec![false; n],
        pre_grads: vec![None; n],
        group_done: vec![false; groups],
        out: Vec::new(),
        head_end: None,
        upgrades,
    };
    for step in steps {
        l.step(step)?;
    }
    Ok(Backward { dispatches: l.out, head_end: l.head_end })
}

impl Lowering<'_, '_> {
    /// The task slot that node `i`'s contribution to operand `o` goes to, if it is split.
    fn slot_of(&self, o: NodeId, i: usize) -> Option<usize> {
        let sp = self.inp.split.as_ref()?;
        (o.0 == sp.z && i > sp.z).then_some(sp.task_of[i]).flatten()
    }

    /// Where node i's gradient with respect to its operand o goes, and whether to add.
    fn dest(&self, o: NodeId, i: usize) -> Result<(Tensor, bool)> {
        match (self.slot_of(o, i), &self.inp.split) {
            (Some(t), Some(sp)) => Ok((sp.slots[t].clone(), self.written_slot[t])),
            _ => Ok((self.inp.mem.grad(o)?.clone(), self.written[o.0])),
        }
    }

    fn mark(&mut self, o: NodeId, i: usize) {
        match self.slot_of(o, i) {
            Some(t) => self.written_slot[t] = true,
            None => self.written[o.0] = true,
        }
    }

    fn read(&self, val: Val) -> Result<Tensor> {
        let mem = self.inp.mem;
        Ok(match val {
            Val::Value(id) => mem.value(id)?.clone(),
            Val::Grad(id) => mem.grad(id)?.clone(),
            Val::PreGrad(id) => match &self.pre_grads[id.0] {
                Some(t) => t.clone(),
                None => mem.grad(id)?.clone(),
            },
        })
    }

    fn step(&mut self, step: Step) -> Result<()> {
        let i = match step {
            Step::PreGrad { of, .. } => of.0,
            Step::Add { from, .. } => from.0,
        };
        if let Some(z) = self.inp.split.as_ref().map(|s| s.z) {
            if i <= z && self.head_end.is_none() {
                // Everything after z is done: the heads. The combination of the slots writes
                // z's gradient.
                self.head_end = Some(self.out.len());
                self.written[z] = true;
            }
        }
        if let Some(&(gi, j)) = self.inp.member_of.get(&i) {
            // The whole group at its last member (the first reached going backward): every
            // member's gradient is its loss's, written in the forward pass.
            let g = &self.inp.groups[gi];
            if j + 1 == g.members.len() && !self.group_done[gi] && g.members.iter().all(|&m| self.inp.need[m]) {
                self.group_done[gi] = true;
                self.head_group(gi)?;
            }
            return Ok(());
        }
        let (ctx, mem, graph) = (self.ctx, self.inp.mem, self.inp.graph);
        match step {
            Step::PreGrad { of, act } => {
                if !self.act_applied[of.0] {
                    let dz = ctx.empty(graph.shape(of))?;
                    let (saved, from_output) = match &mem.pre[of.0] {
                        Some(z) => (z, false),
                        None => (mem.value(of)?, true),
                    };
                    self.out.push(kernels::act_backward(ctx, act, mem.grad(of)?, saved, from_output, &dz, false)?);
                    self.pre_grads[of.0] = Some(dz);
                }
            }
            Step::Add { dst, expr: Expr::LossGrad { .. }, .. } => {
                // The fused loss kernel wrote it in the forward pass.
                if self.written[dst.0] {
                    return Err(Error::invalid("graph", "logits that feed a loss must feed nothing else"));
                }
                self.written[dst.0] = true;
            }
            Step::Add { from, dst, expr } => {
                if let Some(d) = self.contribution(i, dst, expr)? {
                    self.out.push(d);
                }
                self.mark(dst, from.0);
            }
        }
        Ok(())
    }

    /// The dispatch of one step's contribution of node `i` to its operand `dst`'s gradient
    /// (None where there is nothing to compute: a pack's gradient is its members').
    fn contribution(&mut self, i: usize, dst: NodeId, expr: Expr) -> Result<Option<Dispatch>> {
        let ctx = self.ctx;
        let (out, acc) = self.dest(dst, i)?;
        let d = match expr {
            Expr::Matmul { a, b, trans_a } => {
                let spec = MatmulSpec { trans_a, accumulate: acc, ..Default::default() };
                let grad =
                    if acc || self.slot_of(dst, i).is_some() { None } else { self.inp.fusion.epilogue(dst, &[i]) };
                self.act_applied[dst.0] = grad.is_some();
                let (a, b) = (self.read(a)?, self.read(b)?);
                matmul_upgradable(ctx, &a, &b, None, &out, &spec, grad, self.upgrades)?
            }
            Expr::Grouped { a, b, trans_a, groups } => {
                let (a, b) = (self.read(a)?, self.read(b)?);
                let ((rows, gn), (_, bc)) = (a.dims2(), b.dims2());
                let n = gn / groups;
                let (s, layout) = if trans_a {
                    (MatmulShape { m: n, n: bc / groups, k: rows }, GroupedLayout::GRAD_WEIGHT)
                } else {
                    (MatmulShape { m: rows, n: bc, k: n }, GroupedLayout::GRAD_INPUT)
                };
                let ident = Activation::Identity;
                kernels::grouped_matmul(ctx, &a, &b, None, &out, s, groups, layout, ident, acc)?
            }
            // The pack's gradient is a view of its members' (compile::memory): already in place.
            Expr::Part { .. } => return Ok(None),
            Expr::EmbedGrad { dy, offsets, order } => {
                let (dy, offsets, order) = (self.read(dy)?, self.read(offsets)?, self.read(order)?);
                kernels::embed_scatter(ctx, &dy, &offsets, &order, &out, acc)?
            }
            Expr::ProductLogitGrad { dy, a, b, at_b } => {
                let (dy, a, b) = (self.read(dy)?, self.read(a)?, self.read(b)?);
                kernels::product_logit_grad(ctx, &a, &b, &dy, at_b, &out, acc)?
            }
            Expr::ColSum(x) => kernels::col_sum(ctx, &self.read(x)?, &out, acc)?,
            Expr::ActGrad { act, dy, x } => {
                kernels::act_backward(ctx, act, &self.read(dy)?, &self.read(x)?, false, &out, acc)?
            }
            Expr::Copy(x) if acc => kernels::axpy(ctx, 1.0, &self.read(x)?, &out)?,
            Expr::Copy(x) => kernels::act_forward(ctx, Activation::Identity, &self.read(x)?, &out)?,
            Expr::Mul(x, y) => kernels::mul(ctx, &self.read(x)?, &self.read(y)?, &out, acc)?,
            Expr::SoftmaxGrad { y, dy } => {
                kernels::softmax_rows_backward(ctx, &self.read(y)?, &self.read(dy)?, &out, acc)?
            }
            Expr::Columns { src, start, width } => {
                let src = self.read(src)?;
                if acc {
                    // Into a fresh buffer, then added: copy_columns overwrites.
                    let part = ctx.empty(out.shape())?;
                    self.out.push(kernels::copy_columns(ctx, &src, start, &part, 0, width, None)?);
                    kernels::axpy(ctx, 1.0, &part, &out)?
                } else {
                    kernels::copy_columns(ctx, &src, start, &out, 0, width, None)?
                }
            }
            Expr::Place { src, start, width } => {
                // The slice's gradient in its columns, zero elsewhere: into a zeroed
                // buffer, added when the gradient already holds a contribution.
                let dst = if acc { ctx.empty(out.shape())? } else { out.clone() };
                self.out.push(kernels::fill(ctx, &dst, 0.0)?);
                let placed = kernels::copy_columns(ctx, &self.read(src)?, 0, &dst, start, width, None)?;
                if acc {
                    self.out.push(placed);
                    kernels::axpy(ctx, 1.0, &dst, &out)?
                } else {
                    placed
                }
            }
            Expr::StitchBlocks { dy, alpha } => {
                kernels::stitch(ctx, &self.read(dy)?, &self.read(alpha)?, &out, true, acc)?
            }
            Expr::StitchAlpha { dy, x } => kernels::stitch_grad_alpha(ctx, &self.read(dy)?, &self.read(x)?, &out, acc)?,
            Expr::EncodeGrad { dy, s, experts } => {
                kernels::encode_grad(ctx, &self.read(dy)?, &self.read(s)?, experts, &out, acc)?
            }
            Expr::MixGate { dy, x } => kernels::mix_grad_gate(ctx, &self.read(dy)?, &self.read(x)?, &out, acc)?,
            Expr::MixBlocks { dy, gate } => kernels::mix_grad_x(ctx, &self.read(dy)?, &self.read(gate)?, &out, acc)?,
            Expr::LossGrad { .. } => unreachable!("matched above"),
        };
        Ok(Some(d))
    }

    /// A group of fused heads: their output gradients side by side, one product for all their
    /// weight gradients, each bias's column sums, and the gradient at their input (one product,
    /// or one per head where each goes to its task's slot).
    fn head_group(&mut self, gi: usize) -> Result<()> {
        let (ctx, mem, graph) = (self.ctx, self.inp.mem, self.inp.graph);
        let g = &self.inp.groups[gi];
        let x = g.x;
        let dy_all = ctx.empty(&[graph.shape(x)[0], g.width])?;
        for (k, &m) in g.members.iter().enumerate() {
            let dy = mem.grad(NodeId(m))?;
            self.out.push(kernels::copy_columns(ctx, dy, 0, &dy_all, g.cols[k], dy.dims2().1, None)?);
        }
        let in_features = graph.shape(x)[1];
        let at = mem.store.offsets[g.weights[0]];
        let w_all = mem.store.params.view(at, &[g.width, in_features])?;
        let dw_all = mem.store.grads.view(at, &[g.width, in_features])?;
        let spec = MatmulSpec { trans_a: true, ..Default::default() };
        self.out.push(matmul_upgradable(ctx, &dy_all, mem.value(x)?, None, &dw_all, &spec, None, self.upgrades)?);
        for &m in &g.members {
            let Op::Linear { w, b, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
            self.written[w.0] = true;
            if let Some(b) = b {
                self.out.push(kernels::col_sum(ctx, mem.grad(NodeId(m))?, mem.grad(b)?, self.written[b.0])?);
                self.written[b.0] = true;
            }
        }
        if !self.inp.need[x.0] {
            return Ok(());
        }
        if g.members.iter().any(|&m| self.slot_of(x, m).is_some()) {
            // Each task's gradient at the shared representation stays its own.
            for &m in &g.members {
                let Op::Linear { w, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
                let (dst, acc) = self.dest(x, m)?;
                let spec = MatmulSpec { accumulate: acc, ..Default::default() };
                let dy = mem.grad(NodeId(m))?;
                self.out.push(matmul_upgradable(ctx, dy, mem.value(w)?, None, &dst, &spec, None, self.upgrades)?);
                self.mark(x, m);
            }
        } else {
            let acc = self.written[x.0];
            let spec = MatmulSpec { accumulate: acc, ..Default::default() };
            let grad = if acc { None } else { self.inp.fusion.epilogue(x, &g.members) };
            self.act_applied[x.0] = grad.is_some();
            self.out.push(matmul_upgradable(ctx, &dy_all, &w_all, None, mem.grad(x)?, &spec, grad, self.upgrades)?);
            self.written[x.0] = true;
        }
        Ok(())
    }
}
