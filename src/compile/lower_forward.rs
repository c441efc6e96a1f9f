//! Lowering of the forward pass: one or two dispatches per op, in graph order.

use std::collections::HashMap;

use super::fuse_heads::HeadGroup;
use super::memory::Memory;
use super::upgrade::{matmul_upgradable, UpgradeJob};
use crate::error::Result;
use crate::gpu::{Context, Dispatch};
use crate::ir::{Activation, Graph, GroupedLayout, MatmulShape, NodeId, Op};
use crate::kernels::{self, MatmulSpec};

/// The forward dispatches of `graph`. Fused heads run as one product at their first member,
/// split with each member's bias by `copy_columns`. Each loss kernel also writes its logits'
/// gradient scaled by the task's weight, or by one when `weights_after_loss` (a weighting that
/// needs this step's losses scales it afterwards); where nothing upstream learns, that
/// gradient goes to a scratch buffer.
pub fn lower(
    ctx: &Context,
    graph: &Graph,
    mem: &Memory,
    groups: &[HeadGroup],
    member_of: &HashMap<usize, (usize, usize)>,
    weights_after_loss: bool,
    upgrades: &mut Vec<UpgradeJob>,
) -> Result<Vec<Dispatch>> {
    let v = |id: NodeId| mem.value(id);
    let mut forward = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = NodeId(i);
        match node.op {
            Op::Input | Op::Param(_) => {}
            Op::Linear { .. } if member_of.contains_key(&i) => {
                let (gi, j) = member_of[&i];
                if j == 0 {
                    forward.extend(head_group(ctx, graph, mem, &groups[gi], upgrades)?);
                }
            }
            Op::Linear { x, w, b, act } => {
                let bias = match b {
                    Some(b) => Some(v(b)?),
                    None => None,
                };
                if let Some(z) = &mem.pre[i] {
                    let spec = MatmulSpec { trans_b: true, ..Default::default() };
                    forward.push(matmul_upgradable(ctx, v(x)?, v(w)?, bias, z, &spec, None, upgrades)?);
                    forward.push(kernels::act_forward(ctx, act, z, v(id)?)?);
                } else {
                    let spec = MatmulSpec { trans_b: true, act, ..Default::default() };
                    forward.push(matmul_upgradable(ctx, v(x)?, v(w)?, bias, v(id)?, &spec, None, upgrades)?);
                }
            }
            Op::Grouped { x, w, b, act, groups } => {
                let s = MatmulShape { m: graph.shape(x)[0], n: node.shape[1] / groups, k: graph.shape(w)[1] };
                let bias = match b {
                    Some(b) => Some(v(b)?),
                    None => None,
                };
                let layout = GroupedLayout::FORWARD;
                match &mem.pre[i] {
                    Some(z) => {
                        let ident = Activation::Identity;
                        forward.push(kernels::grouped_matmul(
                            ctx,
                            v(x)?,
                            v(w)?,
                            bias,
                            z,
                            s,
                            groups,
                            layout,
                            ident,
                            false,
                        )?);
                        forward.push(kernels::act_forward(ctx, act, z, v(id)?)?);
                    }
                    None => forward.push(kernels::grouped_matmul(
                        ctx,
                        v(x)?,
                        v(w)?,
                        bias,
                        v(id)?,
                        s,
                        groups,
                        layout,
                        act,
                        false,
                    )?),
                }
            }
            Op::Embed { table, ids, .. } => forward.push(kernels::embed_gather(ctx, v(table)?, v(ids)?, v(id)?)?),
            Op::ProductLogit { a, b } => forward.push(kernels::product_logit(ctx, v(a)?, v(b)?, v(id)?)?),
            // A view of its members in the flat buffer: nothing to compute.
            Op::Pack(_) => {}
            Op::Act { x, act } => forward.push(kernels::act_forward(ctx, act, v(x)?, v(id)?)?),
            Op::Add { a, b } => forward.push(kernels::add(ctx, v(a)?, v(b)?, v(id)?)?),
            Op::Mul { a, b } => forward.push(kernels::mul(ctx, v(a)?, v(b)?, v(id)?, false)?),
            Op::Softmax { x } => forward.push(kernels::softmax_rows(ctx, v(x)?, v(id)?)?),
            Op::Concat { a, b } => {
                let (wa, wb) = (graph.shape(a)[1], graph.shape(b)[1]);
                forward.push(kernels::copy_columns(ctx, v(a)?, 0, v(id)?, 0, wa, None)?);
                forward.push(kernels::copy_columns(ctx, v(b)?, 0, v(id)?, wa, wb, None)?);
            }
            Op::Mix { gate, x } => forward.push(kernels::mix(ctx, v(gate)?, v(x)?, v(id)?)?),
            Op::Encode { s, experts } => forward.push(kernels::encode(ctx, v(s)?, experts, v(id)?)?),
            Op::Slice { x, start, width } => {
                forward.push(kernels::copy_columns(ctx, v(x)?, start, v(id)?, 0, width, None)?)
            }
            Op::Stitch { x, alpha } => forward.push(kernels::stitch(ctx, v(x)?, v(alpha)?, v(id)?, false, false)?),
            Op::Loss { logits, labels, mask, kind, task } => {
                let scratch;
                let grad = match &mem.node_grads[logits.0] {
                    Some(g) => g,
                    None => {
                        scratch = ctx.empty(graph.shape(logits))?;
                        &scratch
                    }
                };
                let w = if weights_after_loss { &mem.ones } else { &mem.weights };
                let (lg, lb, mk) = (v(logits)?, v(labels)?, v(mask)?);
                let inputs = [lg, lb, mk, w];
                forward.push(kernels::task_loss_counted(
                    ctx,
                    kind,
                    inputs,
                    task,
                    grad,
                    &mem.losses,
                    Some(&mem.counts),
                )?);
            }
        }
    }
    Ok(forward)
}

/// A group of heads: one product of all their outputs, then each member's columns (and bias).
fn head_group(
    ctx: &Context,
    graph: &Graph,
    mem: &Memory,
    g: &HeadGroup,
    upgrades: &mut Vec<UpgradeJob>,
) -> Result<Vec<Dispatch>> {
    let y_all = ctx.empty(&[graph.shape(g.x)[0], g.width])?;
    let in_features = graph.shape(g.x)[1];
    let w_all = mem.store.params.view(mem.store.offsets[g.weights[0]], &[g.width, in_features])?;
    let spec = MatmulSpec { trans_b: true, ..Default::default() };
    let mut out = vec![matmul_upgradable(ctx, mem.value(g.x)?, &w_all, None, &y_all, &spec, None, upgrades)?];
    for (k, &m) in g.members.iter().enumerate() {
        let Op::Linear { b, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
        let bias = match b {
            Some(b) => Some(mem.value(b)?),
            None => None,
        };
        let y = mem.value(NodeId(m))?;
        out.push(kernels::copy_columns(ctx, &y_all, g.cols[k], y, 0, y.dims2().1, bias)?);
    }
    Ok(out)
}
