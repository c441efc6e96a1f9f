//! The graph compiled for the GPU: every buffer allocated and every dispatch built once, then
//! replayed. A training step is one queue submit with no readback; parameters, gradients and
//! optimizer state are flat buffers (each tensor an aligned view), so the update is one
//! dispatch. Each op's backward dispatches are built beside its forward ones.

use std::sync::Arc;

use super::backward::{self, Expr, Step, Val};
use super::slots::{self, Slots};
use super::update::{self, optimizer_dispatches, GpuOptim};
use crate::error::{Error, Result};
use crate::gpu::MatmulVariant;
use crate::gpu::Tensor;
use crate::gpu::{Context, Dispatch};
use crate::ir::{Activation, MatmulShape};
use crate::ir::{Graph, NodeId, Op};
use crate::kernels::{self, MatmulSpec};
use crate::optim::Optimizer;

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

/// What the divergence guard saw first: (step, task index or T for a parameter, value).
pub type Divergence = (u64, usize, f32);

/// How the GPU computes loss weights inside the step, for methods that need no host work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GpuLossWeighting {
    /// Weights come from the weights buffer as set by the host (ew, static, dwa, rlw, and
    /// every gradient method).
    Host,
    /// Uncertainty weighting with log-variances in parameter `log_var` (by index).
    Uw {
        /// Index of the `weighting.log_var` parameter.
        log_var: usize,
    },
    /// Geometric loss strategy.
    Gls,
    /// FAMO with its learning rate and weight decay.
    Famo {
        /// Learning rate of the task logits.
        lr: f32,
        /// Their weight decay.
        weight_decay: f32,
    },
}

/// Per-task gradients at the shared representation `z`: each task's head writes its own
/// slot, so they can be weighted, combined or inspected (Gram matrix) before the trunk.
#[derive(Clone, Copy, Debug)]
pub struct TaskGradSpec {
    /// The shared representation (the trunk's output).
    pub z: NodeId,
    /// The first `shared_params` parameters are the trunk's.
    pub shared_params: usize,
    /// Where gradient methods take the per-task gradients.
    pub target: crate::mtl::weighting::Target,
    /// Loss weighting computed on the GPU.
    pub loss_weighting: GpuLossWeighting,
    /// Clip the norm of all gradients to this before each update (torch's clip_grad_norm_).
    pub max_grad_norm: Option<f32>,
}

struct TaskGrads {
    spec: TaskGradSpec,
    tasks: usize,
    head_bw: Vec<Dispatch>,
    trunk_bw: Vec<Dispatch>,
    post: Vec<Dispatch>,
    /// None when nothing shared learns (an empty trunk): no per-task slots then.
    slots: Option<Slots>,
    /// State a weighting keeps on the GPU between steps (FAMO's logits, Adam moments, losses).
    weighting_state: Option<Tensor>,
    _keep: Vec<Tensor>,
}

/// A [`Graph`] compiled for the GPU: buffers, forward, backward and optimizer dispatches.
pub struct GpuGraph {
    ctx: Arc<Context>,
    graph: Graph,
    params: Tensor,
    grads: Tensor,
    param_views: Vec<Tensor>,
    /// Where each parameter starts in the flat buffers (params, grads, optimizer state), in
    /// f32 elements: parameter order, except for the weights of a group of heads.
    param_offsets: Vec<usize>,
    /// How many groups of heads run as one product.
    head_groups: usize,
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
    tg: Option<TaskGrads>,
    /// Matmuls of the step that a larger block would run faster, not yet started.
    upgrades: Vec<UpgradeJob>,
    /// The thread compiling them, and the flag that stops it between two of them.
    upgrader: Option<(std::thread::JoinHandle<()>, Arc<std::sync::atomic::AtomicBool>)>,
}

/// A matmul of the step to build again with its long-run block ([`kernels::steady_register_tiles`])
/// on a background thread; `slot` is the step's dispatch's upgrade.
struct UpgradeJob {
    a: Tensor,
    b: Tensor,
    bias: Option<Tensor>,
    c: Tensor,
    spec: MatmulSpec,
    /// The activation gradient it applies: activation, saved tensor, from the output.
    grad: Option<(Activation, Tensor, bool)>,
    slot: Arc<std::sync::OnceLock<Dispatch>>,
}

/// [`kernels::matmul`] with the block its size gets at once, and, where a long run would
/// repay a larger block's compile time, an upgrade job for [`GpuGraph::start_upgrades`].
#[allow(clippy::too_many_arguments)]
fn matmul_upgradable(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
    grad: Option<kernels::ActGrad<'_>>,
    jobs: &mut Vec<UpgradeJob>,
) -> Result<Dispatch> {
    let mut d = kernels::matmul_with(ctx, a, b, bias, c, spec, grad)?;
    let variant = spec.variant.unwrap_or_else(|| ctx.matmul_variant());
    if let (None, MatmulVariant::Registers { wg_x, wg_y }) = (spec.tiles, variant) {
        let s = MatmulShape::infer(a.dims2(), b.dims2(), spec.trans_a, spec.trans_b)?;
        let wg = (wg_x * wg_y) as usize;
        let steady = kernels::steady_register_tiles(s.m, s.n, wg);
        if steady != kernels::register_tiles(s.m, s.n, s.k, wg) {
            let slot = Arc::new(std::sync::OnceLock::new());
            d.upgrade = Some(slot.clone());
            jobs.push(UpgradeJob {
                a: a.clone(),
                b: b.clone(),
                bias: bias.cloned(),
                c: c.clone(),
                spec: MatmulSpec { tiles: Some(steady), ..*spec },
                grad: grad.map(|g| (g.act, g.saved.clone(), g.from_output)),
                slot,
            });
        }
    }
    Ok(d)
}

fn node_len(g: &Graph, id: NodeId) -> usize {
    g.shape(id).iter().product()
}

/// Linear nodes that read the same input, each with a weight (and a bias, or none) of its
/// own, no activation, and feed only a loss: the linear heads of a multi-task model. Their
/// weights are laid out one after another in the flat buffer, so the heads run as one product
/// of all their outputs at once, split into each head's output (with its bias) after, and
/// their weight gradients come from one product too. Under llvmpipe a head's product with
/// one output costs nearly what one with ten does.
struct HeadGroup {
    /// The Linear nodes, in graph order.
    members: Vec<usize>,
    /// Their shared input.
    x: NodeId,
    /// Where each member's outputs start among the group's.
    cols: Vec<usize>,
    /// Outputs of all members together.
    width: usize,
    /// The members' weight parameters, in member order (laid out contiguously).
    weights: Vec<usize>,
}

/// The [`HeadGroup`]s of a graph, among parameters from `first_param` on (those before are
/// shared and keep their place at the start of the flat buffer).
fn head_groups(graph: &Graph, consumers: &[Vec<usize>], first_param: usize) -> Vec<HeadGroup> {
    let own_param = |id: NodeId, user: usize| -> Option<usize> {
        match graph.nodes[id.0].op {
            Op::Param(p) if p >= first_param && consumers[id.0] == [user] => Some(p),
            _ => None,
        }
    };
    // Keyed by (input, has a bias): the members as (node, weight parameter).
    type Members = Vec<(usize, usize)>;
    let mut groups: Vec<((NodeId, bool), Members)> = Vec::new();
    for (i, (node, users)) in graph.nodes.iter().zip(consumers).enumerate() {
        let Op::Linear { x, w, b, act: Activation::Identity } = node.op else { continue };
        let feeds_loss_only = matches!(users.as_slice(), [c] if matches!(graph.nodes[*c].op, Op::Loss { .. }));
        let Some(pw) = own_param(w, i) else { continue };
        if !feeds_loss_only || b.is_some_and(|b| own_param(b, i).is_none()) {
            continue;
        }
        let key = (x, b.is_some());
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push((i, pw)),
            None => groups.push((key, vec![(i, pw)])),
        }
    }
    groups
        .into_iter()
        .filter(|g| g.1.len() >= 2)
        .map(|((x, _), members)| {
            let mut cols = Vec::new();
            let mut width = 0;
            for &(i, _) in &members {
                cols.push(width);
                width += graph.nodes[i].shape[1];
            }
            HeadGroup {
                members: members.iter().map(|m| m.0).collect(),
                x,
                cols,
                width,
                weights: members.iter().map(|m| m.1).collect(),
            }
        })
        .collect()
}

/// Which of the compiler's passes run. Every combination computes the same values (up to
/// the summation order inside a product); the fusions only save dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Passes {
    /// Linear heads reading one representation run as one product.
    pub fuse_heads: bool,
    /// A product whose output is an activation's only gradient applies that activation's
    /// derivative in its epilogue (no separate activation-gradient dispatch).
    pub fuse_act_grad: bool,
    /// Compile the forward pass alone (inference).
    pub forward_only: bool,
}

impl Default for Passes {
    fn default() -> Self {
        Passes { fuse_heads: true, fuse_act_grad: true, forward_only: false }
    }
}

impl GpuGraph {
    /// Compiles `graph` with initial parameters `init` (in [`Graph::params`] order) and an
    /// optional optimizer. Every task weight starts at 1.
    pub fn new(ctx: Arc<Context>, graph: Graph, init: &[Vec<f32>], optimizer: Option<Optimizer>) -> Result<GpuGraph> {
        Self::build(ctx, graph, init, optimizer, None, Passes::default())
    }

    /// Like [`GpuGraph::new`] with some of the compiler's fusions turned off (for tests that
    /// show each fusion changes no result).
    pub fn with_passes(
        ctx: Arc<Context>,
        graph: Graph,
        init: &[Vec<f32>],
        optimizer: Option<Optimizer>,
        passes: Passes,
    ) -> Result<GpuGraph> {
        Self::build(ctx, graph, init, optimizer, None, passes)
    }

    /// Compiles `graph` for inference: the forward pass alone (no gradient buffers, no
    /// backward dispatches, so fewer pipelines to compile before the first result).
    pub fn forward_only(ctx: Arc<Context>, graph: Graph, init: &[Vec<f32>]) -> Result<GpuGraph> {
        Self::build(ctx, graph, init, None, None, Passes { forward_only: true, ..Passes::default() })
    }

    /// Like [`GpuGraph::new`], keeping per-task gradients at the shared representation.
    pub fn multi_task(
        ctx: Arc<Context>,
        graph: Graph,
        init: &[Vec<f32>],
        optimizer: Option<Optimizer>,
        spec: TaskGradSpec,
    ) -> Result<GpuGraph> {
        Self::build(ctx, graph, init, optimizer, Some(spec), Passes::default())
    }

    fn build(
        ctx: Arc<Context>,
        graph: Graph,
        init: &[Vec<f32>],
        optimizer: Option<Optimizer>,
        tspec: Option<TaskGradSpec>,
        passes: Passes,
    ) -> Result<GpuGraph> {
        let forward_only = passes.forward_only;
        if init.len() != graph.params.len() {
            return Err(Error::shape(
                "compile",
                format!("{} initial tensors for {} parameters", init.len(), graph.params.len()),
            ));
        }
        // (At least 4 values, so that the optimizer may work four at a time; see optimizer_dispatches.)
        let align = (ctx.adapter().storage_offset_alignment as usize / 4).max(4);
        let n = graph.nodes.len();
        let tasks = graph.tasks().max(1);

        // Parameters and gradients: one flat buffer each, in parameter order except that the
        // weights of a group of heads sit together (where the first of them would be).
        let lens: Vec<usize> = graph.params.iter().map(|p| p.shape.iter().product()).collect();
        let consumers = graph.consumers();
        let mut groups = head_groups(&graph, &consumers, tspec.map_or(0, |s| s.shared_params));
        if !passes.fuse_heads {
            groups.clear();
        }
        let mut order: Vec<usize> = Vec::with_capacity(lens.len());
        for p in 0..lens.len() {
            match groups.iter().find(|g| g.weights.contains(&p)) {
                Some(g) if g.weights[0] == p => order.extend(&g.weights),
                Some(_) => {}
                None => order.push(p),
            }
        }
        let (placed, total) = flat_layout(&order.iter().map(|&p| lens[p]).collect::<Vec<_>>(), align);
        let total = total.div_ceil(4) * 4;
        let mut offsets = vec![0; lens.len()];
        for (k, &p) in order.iter().enumerate() {
            offsets[p] = placed[k];
        }
        // Alignment may leave gaps between a group's weights: such a group runs head by head.
        groups.retain(|g| g.weights.windows(2).all(|w| offsets[w[1]] == offsets[w[0]] + lens[w[0]]));
        let mut host = crate::error::host_vec(total, 0f32, "the initial parameters")?;
        for (i, v) in init.iter().enumerate() {
            if v.len() != lens[i] {
                return Err(Error::shape(
                    "compile",
                    format!("parameter {} needs {} values, got {}", graph.params[i].name, lens[i], v.len()),
                ));
            }
            host[offsets[i]..offsets[i] + lens[i]].copy_from_slice(v);
        }
        // Node index -> (its group, its place in the group).
        let member_of: std::collections::HashMap<usize, (usize, usize)> = groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| g.members.iter().enumerate().map(move |(j, &m)| (m, (gi, j))))
            .collect();
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
        let need = if forward_only { vec![false; n] } else { graph.needs_grad() };
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

        // Per-task gradient slots at the shared representation.
        let t_count = graph.tasks();
        let ones = ctx.upload(&vec![1.0; tasks], &[tasks])?;
        let post_weighting = matches!(
            tspec.map(|s| s.loss_weighting),
            Some(GpuLossWeighting::Gls) | Some(GpuLossWeighting::Famo { .. })
        );
        // For each node after z: the task whose loss it feeds.
        let mut task_of: Vec<Option<usize>> = vec![None; n];
        if tspec.is_some() {
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
        }
        let (gz, gz_views, len_z, stride_z) = match tspec.filter(|sp| need[sp.z.0]) {
            Some(sp) => {
                let len_z = node_len(&graph, sp.z);
                let stride = len_z.div_ceil(align) * align;
                let flat = ctx.zeros(&[t_count.max(1) * stride])?;
                let views =
                    (0..t_count).map(|t| flat.view(t * stride, graph.shape(sp.z))).collect::<Result<Vec<_>>>()?;
                (Some(flat), views, len_z, stride)
            }
            None => (None, Vec::new(), 0, 0),
        };
        // With nothing shared to learn (no trunk), there is no gradient at z to split.
        let z_node = tspec.map(|s| s.z.0).filter(|&z| need[z]);

        // Forward.
        let mut upgrades = Vec::new();
        let mut forward = Vec::new();
        if let Some(GpuLossWeighting::Uw { log_var }) = tspec.map(|s| s.loss_weighting) {
            forward.push(kernels::uw_weights(&ctx, &param_views[log_var], &weights)?);
        }
        for i in 0..n {
            let id = NodeId(i);
            match graph.nodes[i].op {
                Op::Input | Op::Param(_) => {}
                Op::Linear { .. } if member_of.contains_key(&i) => {
                    let (gi, j) = member_of[&i];
                    if j == 0 {
                        let g = &groups[gi];
                        let y_all = ctx.empty(&[graph.shape(g.x)[0], g.width])?;
                        let in_features = graph.shape(g.x)[1];
                        let w_all = params.view(offsets[g.weights[0]], &[g.width, in_features])?;
                        let spec = MatmulSpec { trans_b: true, ..Default::default() };
                        forward.push(matmul_upgradable(
                            &ctx,
                            v(g.x)?,
                            &w_all,
                            None,
                            &y_all,
                            &spec,
                            None,
                            &mut upgrades,
                        )?);
                        for (k, &m) in g.members.iter().enumerate() {
                            let Op::Linear { b, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
                            let bias = match b {
                                Some(b) => Some(v(b)?),
                                None => None,
                            };
                            let out = v(NodeId(m))?;
                            forward.push(kernels::copy_columns(&ctx, &y_all, g.cols[k], out, 0, out.dims2().1, bias)?);
                        }
                    }
                }
                Op::Linear { x, w, b, act } => {
                    let bias = match b {
                        Some(b) => Some(v(b)?),
                        None => None,
                    };
                    if let Some(z) = &pre[i] {
                        let spec = MatmulSpec { trans_b: true, ..Default::default() };
                        forward.push(matmul_upgradable(&ctx, v(x)?, v(w)?, bias, z, &spec, None, &mut upgrades)?);
                        forward.push(kernels::act_forward(&ctx, act, z, v(id)?)?);
                    } else {
                        let spec = MatmulSpec { trans_b: true, act, ..Default::default() };
                        forward.push(matmul_upgradable(&ctx, v(x)?, v(w)?, bias, v(id)?, &spec, None, &mut upgrades)?);
                    }
                }
                Op::Act { x, act } => forward.push(kernels::act_forward(&ctx, act, v(x)?, v(id)?)?),
                Op::Add { a, b } => forward.push(kernels::add(&ctx, v(a)?, v(b)?, v(id)?)?),
                Op::Mul { a, b } => forward.push(kernels::mul(&ctx, v(a)?, v(b)?, v(id)?, false)?),
                Op::Loss { logits, labels, mask, kind, task } => {
                    // The fused kernel also writes the (weighted) gradient of the logits; when
                    // nothing upstream learns, it goes to a scratch buffer. Weightings computed
                    // from this step's losses scale it afterwards.
                    let scratch;
                    let grad = match &node_grads[logits.0] {
                        Some(g) => g,
                        None => {
                            scratch = ctx.empty(graph.shape(logits))?;
                            &scratch
                        }
                    };
                    let w = if post_weighting { &ones } else { &weights };
                    forward.push(kernels::task_loss(
                        &ctx,
                        kind,
                        v(logits)?,
                        v(labels)?,
                        v(mask)?,
                        w,
                        task,
                        grad,
                        &losses,
                    )?);
                }
            }
        }

        // Loss weightings that need this step's losses.
        let mut post = Vec::new();
        let mut keep = Vec::new();
        let mut weighting_state = None;
        if let Some(sp) = tspec {
            match sp.loss_weighting {
                GpuLossWeighting::Host => {}
                GpuLossWeighting::Uw { log_var } => {
                    post.push(kernels::uw_grad(&ctx, &param_views[log_var], &losses, &grad_views[log_var])?)
                }
                GpuLossWeighting::Gls => post.push(kernels::gls_weights(&ctx, &losses, &weights)?),
                GpuLossWeighting::Famo { lr, weight_decay } => {
                    let min_losses = ctx.zeros(&[tasks])?;
                    let state = ctx.zeros(&[4 * tasks + 1])?;
                    post.push(kernels::famo(&ctx, &min_losses, &losses, &weights, &state, lr, weight_decay)?);
                    keep.push(min_losses);
                    weighting_state = Some(state);
                }
            }
            if post_weighting {
                for node in &graph.nodes {
                    if let Op::Loss { logits, task, .. } = node.op {
                        if let Some(g) = &node_grads[logits.0] {
                            post.push(kernels::scale_task(&ctx, g, &weights, task)?);
                        }
                    }
                }
            }
        }

        // The gradient of a Linear node's activation, where the product that writes the
        // node's gradient as its only contribution can take it at once (no act_backward
        // pass after); its node then holds the gradient of its pre-activation.
        let act_grad_of = |o: NodeId, writers: &[usize]| -> Option<kernels::ActGrad<'_>> {
            let Op::Linear { act, .. } = graph.nodes[o.0].op else { return None };
            let mut readers = consumers[o.0].clone();
            readers.sort_unstable();
            let mut w = writers.to_vec();
            w.sort_unstable();
            if !passes.fuse_act_grad || act == Activation::Identity || member_of.contains_key(&o.0) || readers != w {
                return None;
            }
            Some(match &pre[o.0] {
                Some(z) => kernels::ActGrad { act, saved: z, from_output: false },
                None => kernels::ActGrad { act, saved: values[o.0].as_ref()?, from_output: true },
            })
        };
        let to_slot = |o: NodeId, i: usize| matches!((z_node, task_of[i]), (Some(z), Some(_)) if o.0 == z && i > z);
        let mut act_applied = vec![false; n];

        // Backward: the steps of the gradient rules (backward::derive), lowered in order. The
        // first contribution to a gradient overwrites, later ones add. A head's contribution to
        // z goes to its task's slot instead.
        let mut written = vec![false; n];
        let mut written_gz = vec![false; t_count];
        let mut backward = Vec::new();
        let mut head_end = None;
        let mut group_done = vec![false; groups.len()];
        // Gradients at Linear nodes' pre-activations, where they have their own buffer.
        let mut pre_grads: Vec<Option<Tensor>> = vec![None; n];
        // Where node i's gradient with respect to its operand o goes, and whether to add.
        let dest = |o: NodeId, i: usize, written: &[bool], written_gz: &[bool]| -> Result<(Tensor, bool)> {
            match (z_node, task_of[i]) {
                (Some(z), Some(t)) if o.0 == z && i > z => Ok((gz_views[t].clone(), written_gz[t])),
                _ => Ok((gr(o)?.clone(), written[o.0])),
            }
        };
        let mark = |o: NodeId, i: usize, written: &mut [bool], written_gz: &mut [bool]| match (z_node, task_of[i]) {
            (Some(z), Some(t)) if o.0 == z && i > z => written_gz[t] = true,
            _ => written[o.0] = true,
        };
        let steps = if forward_only { Vec::new() } else { backward::derive(&graph) };
        for step in steps {
            let i = match step {
                Step::PreGrad { of, .. } => of.0,
                Step::Add { from, .. } => from.0,
            };
            if z_node.is_some_and(|z| i <= z) && head_end.is_none() {
                // Everything after z is done: the heads. The combine dispatches write z's gradient.
                head_end = Some(backward.len());
                written[z_node.unwrap_or(i)] = true;
            }
            let read = |val: Val, pre_grads: &[Option<Tensor>]| -> Result<Tensor> {
                match val {
                    Val::Value(id) => Ok(v(id)?.clone()),
                    Val::Grad(id) => Ok(gr(id)?.clone()),
                    Val::PreGrad(id) => match &pre_grads[id.0] {
                        Some(t) => Ok(t.clone()),
                        None => Ok(gr(id)?.clone()),
                    },
                }
            };
            if let Some(&(gi, j)) = member_of.get(&i) {
                // The whole group at its last member (the first reached going backward): every
                // member's gradient is its loss's, written in the forward pass.
                let g = &groups[gi];
                if j + 1 == g.members.len() && !group_done[gi] && g.members.iter().all(|&m| need[m]) {
                    group_done[gi] = true;
                    let x = g.x;
                    let rows = graph.shape(x)[0];
                    let dy_all = ctx.empty(&[rows, g.width])?;
                    for (k, &m) in g.members.iter().enumerate() {
                        let dy = gr(NodeId(m))?;
                        backward.push(kernels::copy_columns(&ctx, dy, 0, &dy_all, g.cols[k], dy.dims2().1, None)?);
                    }
                    let in_features = graph.shape(x)[1];
                    let w_all = params.view(offsets[g.weights[0]], &[g.width, in_features])?;
                    let dw_all = grads.view(offsets[g.weights[0]], &[g.width, in_features])?;
                    let spec = MatmulSpec { trans_a: true, ..Default::default() };
                    backward.push(matmul_upgradable(&ctx, &dy_all, v(x)?, None, &dw_all, &spec, None, &mut upgrades)?);
                    for &m in &g.members {
                        let Op::Linear { w, b, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
                        written[w.0] = true;
                        if let Some(b) = b {
                            backward.push(kernels::col_sum(&ctx, gr(NodeId(m))?, gr(b)?, written[b.0])?);
                            written[b.0] = true;
                        }
                    }
                    if need[x.0] {
                        if g.members.iter().any(|&m| to_slot(x, m)) {
                            // Each task's gradient at the shared representation stays its own.
                            for &m in &g.members {
                                let Op::Linear { w, .. } = graph.nodes[m].op else { unreachable!("a head is Linear") };
                                let (dst, acc) = dest(x, m, &written, &written_gz)?;
                                let spec = MatmulSpec { accumulate: acc, ..Default::default() };
                                let dy = gr(NodeId(m))?;
                                backward.push(matmul_upgradable(
                                    &ctx,
                                    dy,
                                    v(w)?,
                                    None,
                                    &dst,
                                    &spec,
                                    None,
                                    &mut upgrades,
                                )?);
                                mark(x, m, &mut written, &mut written_gz);
                            }
                        } else {
                            let acc = written[x.0];
                            let spec = MatmulSpec { accumulate: acc, ..Default::default() };
                            let grad = if acc { None } else { act_grad_of(x, &g.members) };
                            act_applied[x.0] = grad.is_some();
                            let dx = gr(x)?;
                            backward.push(matmul_upgradable(
                                &ctx,
                                &dy_all,
                                &w_all,
                                None,
                                dx,
                                &spec,
                                grad,
                                &mut upgrades,
                            )?);
                            written[x.0] = true;
                        }
                    }
                }
                continue;
            }
            match step {
                Step::PreGrad { of, act } => {
                    if !act_applied[of.0] {
                        let dz = ctx.empty(graph.shape(of))?;
                        let (saved, from_output) = match &pre[of.0] {
                            Some(z) => (z, false),
                            None => (v(of)?, true),
                        };
                        backward.push(kernels::act_backward(&ctx, act, gr(of)?, saved, from_output, &dz, false)?);
                        pre_grads[of.0] = Some(dz);
                    }
                }
                Step::Add { dst, expr: Expr::LossGrad { .. }, .. } => {
                    // The fused loss kernel wrote it in the forward pass.
                    if written[dst.0] {
                        return Err(Error::invalid("graph", "logits that feed a loss must feed nothing else"));
                    }
                    written[dst.0] = true;
                }
                Step::Add { from, dst, expr } => {
                    let (out, acc) = dest(dst, i, &written, &written_gz)?;
                    let d = match expr {
                        Expr::Matmul { a, b, trans_a } => {
                            let spec = MatmulSpec { trans_a, accumulate: acc, ..Default::default() };
                            let grad = if acc || to_slot(dst, i) { None } else { act_grad_of(dst, &[i]) };
                            act_applied[dst.0] = grad.is_some();
                            let (a, b) = (read(a, &pre_grads)?, read(b, &pre_grads)?);
                            matmul_upgradable(&ctx, &a, &b, None, &out, &spec, grad, &mut upgrades)?
                        }
                        Expr::ColSum(x) => kernels::col_sum(&ctx, &read(x, &pre_grads)?, &out, acc)?,
                        Expr::ActGrad { act, dy, x } => {
                            let (dy, x) = (read(dy, &pre_grads)?, read(x, &pre_grads)?);
                            kernels::act_backward(&ctx, act, &dy, &x, false, &out, acc)?
                        }
                        Expr::Copy(x) if acc => kernels::axpy(&ctx, 1.0, &read(x, &pre_grads)?, &out)?,
                        Expr::Copy(x) => kernels::act_forward(&ctx, Activation::Identity, &read(x, &pre_grads)?, &out)?,
                        Expr::Mul(x, y) => kernels::mul(&ctx, &read(x, &pre_grads)?, &read(y, &pre_grads)?, &out, acc)?,
                        Expr::LossGrad { .. } => unreachable!("matched above"),
                    };
                    backward.push(d);
                    mark(dst, from.0, &mut written, &mut written_gz);
                }
            }
        }

        let tg = match (tspec, gz) {
            (Some(sp), None) => {
                // No shared parameters: only the loss weighting's own dispatches.
                let head_bw: Vec<Dispatch> = std::mem::take(&mut backward);
                Some(TaskGrads {
                    spec: sp,
                    tasks: t_count,
                    head_bw,
                    trunk_bw: Vec::new(),
                    post,
                    slots: None,
                    weighting_state,
                    _keep: keep,
                })
            }
            (Some(sp), Some(gz)) => {
                let head_end = head_end.unwrap_or(backward.len());
                let trunk_bw: Vec<Dispatch> = backward.drain(head_end..).collect();
                let head_bw: Vec<Dispatch> = std::mem::take(&mut backward);
                let t = t_count;
                let gz_grad = gr(sp.z)?.clone();
                let trunk_len = match sp.target {
                    crate::mtl::weighting::Target::Representation => None,
                    crate::mtl::weighting::Target::Params => {
                        let shared = sp.shared_params.min(graph.params.len());
                        if shared == 0 {
                            return Err(Error::invalid("weighting target", "params needs shared parameters"));
                        }
                        Some(offsets[shared - 1] + lens[shared - 1])
                    }
                };
                let (slots, ones_t) =
                    slots::program(&ctx, gz, &gz_views, (len_z, stride_z), &gz_grad, trunk_len, &grads, align)?;
                keep.push(ones_t);
                Some(TaskGrads {
                    spec: sp,
                    tasks: t,
                    head_bw,
                    trunk_bw,
                    post,
                    slots: Some(slots),
                    weighting_state,
                    _keep: keep,
                })
            }
            _ => None,
        };

        let max_norm = tspec.and_then(|t| t.max_grad_norm).filter(|m| *m > 0.0);
        let optim = match optimizer {
            None => None,
            Some(opt) => Some(update::program(&ctx, opt, max_norm, &params, &grads, total, &losses)?),
        };

        Ok(GpuGraph {
            ctx,
            graph,
            params,
            grads,
            param_views,
            param_offsets: offsets,
            head_groups: groups.len(),
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
            tg,
            upgrades,
            upgrader: None,
        })
    }

    /// Starts compiling, on a background thread, the larger-block form of each of the step's
    /// matmuls that has one ([`kernels::steady_register_tiles`]); each replaces its quick form
    /// in the step as soon as it is ready. Results do not change, bit for bit (every block
    /// size sums in the same order), only speed: under llvmpipe a 16×16 block runs a 256³
    /// product about twice as fast as a 4×4 one but takes 3–5 s to compile, which a short run
    /// should not wait for. Returns how many were started; a second call starts none.
    pub fn start_upgrades(&mut self) -> usize {
        let jobs = std::mem::take(&mut self.upgrades);
        let count = jobs.len();
        if count == 0 {
            return 0;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ctx, flag) = (self.ctx.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            for job in jobs {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                // A failure leaves the quick form in place: it computes the same values.
                let grad = job.grad.as_ref().map(|(act, saved, from_output)| kernels::ActGrad {
                    act: *act,
                    saved,
                    from_output: *from_output,
                });
                if let Ok(d) = kernels::matmul_with(&ctx, &job.a, &job.b, job.bias.as_ref(), &job.c, &job.spec, grad) {
                    let _ = job.slot.set(d);
                }
            }
        });
        self.upgrader = Some((handle, stop));
        count
    }

    /// Waits until every upgrade started by [`GpuGraph::start_upgrades`] is built.
    pub fn wait_upgrades(&mut self) {
        if let Some((handle, _)) = self.upgrader.take() {
            let _ = handle.join();
        }
    }

    /// (matmuls of the step with a larger-block form, how many of those are in use).
    pub fn upgrade_progress(&self) -> (usize, usize) {
        let all = self.forward.iter().chain(&self.backward).chain(self.tg.iter().flat_map(|t| t.trunk_bw.iter()));
        all.map(|d| d.upgrade_state()).fold((0, 0), |(n, u), (has, used)| (n + usize::from(has), u + usize::from(used)))
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

    /// The dispatches of forward + backward, in order (per-task slots summed at z).
    fn gradient_dispatches(&self) -> Vec<&Dispatch> {
        match &self.tg {
            None => self.forward.iter().chain(&self.backward).collect(),
            Some(tg) => self
                .forward
                .iter()
                .chain(&tg.post)
                .chain(&tg.head_bw)
                .chain(tg.slots.iter().map(|sl| &sl.combine_sum))
                .chain(&tg.trunk_bw)
                .collect(),
        }
    }

    /// Runs forward and backward (gradients, no update): one submit.
    pub fn forward_backward(&self) -> Result<()> {
        self.ctx.run(&self.gradient_dispatches())
    }

    fn optim_dispatch(&mut self) -> Result<()> {
        let Some(opt) = self.optim.as_mut() else {
            return Err(Error::invalid("step", "the graph was compiled without an optimizer"));
        };
        opt.step += 1;
        let f = opt.opt.uniform(opt.step);
        for d in &opt.dispatches {
            let len = d.elements;
            d.set_params(&self.ctx, [len, 0, 0, 0], f);
        }
        Ok(())
    }

    /// The update: clipping's norm (when on), the optimizer, the divergence guard.
    fn update(&self) -> Result<Vec<&Dispatch>> {
        let o = self.optim.as_ref().ok_or_else(|| Error::invalid("step", "no optimizer"))?;
        Ok(o.clip.iter().chain(&o.dispatches).chain(std::iter::once(&o.guard)).collect())
    }

    /// The first divergence the guard saw, as (step, task index or T for a parameter, value).
    pub fn divergence(&self) -> Result<Option<Divergence>> {
        let Some(o) = &self.optim else { return Ok(None) };
        Ok(Self::guard_of(&self.ctx.read(&o.guard_state)?))
    }

    fn guard_of(s: &[f32]) -> Option<Divergence> {
        (s[1] != 0.0).then(|| (s[2] as u64, s[3] as usize, s[4]))
    }

    /// Every parameter and the guard's verdict, in one readback.
    pub fn read_params_checked(&self) -> Result<(Vec<Vec<f32>>, Option<Divergence>)> {
        match &self.optim {
            None => Ok((self.read_params()?, None)),
            Some(o) => {
                let mut v = self.ctx.read_many(&[&self.params, &o.guard_state])?;
                let guard = v.pop().unwrap_or_default();
                let flat = v.pop().unwrap_or_default();
                Ok((self.split(&flat), Self::guard_of(&guard)))
            }
        }
    }

    /// One training step on the fed batch: forward, backward and the optimizer update in one
    /// submit, nothing read back. Task gradients at z are summed (loss weights are already in
    /// each task's gradient).
    pub fn step(&mut self) -> Result<()> {
        self.optim_dispatch()?;
        let mut d = self.gradient_dispatches();
        d.extend(self.update()?);
        self.ctx.run(&d)
    }

    /// Phase one of a gradient-method step: forward, the heads' backward, the per-task
    /// gradients of the target (for `params`, one trunk backward per task) and their Gram
    /// matrix. One submit; read M with [`GpuGraph::read_gram`], then call
    /// [`GpuGraph::apply_coefficients`] or [`GpuGraph::apply_graddrop`].
    pub fn gram_phase(&self) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        let mut d: Vec<&Dispatch> = self.forward.iter().chain(&tg.post).chain(&tg.head_bw).collect();
        if sl.gp.is_some() {
            for t in 0..tg.tasks {
                d.push(&sl.copy_in[t]);
                d.extend(&tg.trunk_bw);
                d.push(&sl.copy_out[t]);
            }
        }
        d.push(&sl.gram_target);
        self.ctx.run(&d)
    }

    /// Per-task gradient diagnostics at the shared representation, without updating anything:
    /// forward, heads' backward, Gram matrix. One submit.
    pub fn diagnostics_phase(&self) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        let d: Vec<&Dispatch> = self.forward.iter().chain(&tg.head_bw).chain(std::iter::once(&sl.gram_repr)).collect();
        self.ctx.run(&d)
    }

    /// The Gram matrix `[T×T]` and the task losses, in one readback.
    pub fn read_gram(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let (_, sl) = self.task_grads()?;
        let mut v = self.ctx.read_many(&[&sl.gram, &self.losses])?;
        let l = v.pop().unwrap_or_default();
        let m = v.pop().unwrap_or_default();
        Ok((m, l))
    }

    /// Phase two: d = Σ_t c_t g_t into the shared gradient (then, for the representation
    /// target, the trunk's backward) and the optimizer update. One upload, one submit.
    pub fn apply_coefficients(&mut self, c: &[f32]) -> Result<()> {
        let coef = self.task_grads()?.1.coef.clone();
        self.ctx.write(&coef, c)?;
        self.optim_dispatch()?;
        let (tg, sl) = self.task_grads()?;
        let mut d = vec![&sl.combine_coef];
        if sl.gp.is_none() {
            d.extend(&tg.trunk_bw);
        }
        d.extend(self.update()?);
        self.ctx.run(&d)
    }

    /// Phase two with GradDrop: the sign-purity drop of the per-task gradients, with this
    /// step's `seed`, then as [`GpuGraph::apply_coefficients`].
    pub fn apply_graddrop(&mut self, seed: u32) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        let (p, stride) = match sl.gp {
            Some(_) => (sl.len_p, sl.stride_p),
            None => (sl.len_z, sl.stride_z),
        };
        sl.graddrop.set_params(&self.ctx, [tg.tasks as u32, p as u32, stride as u32, seed], [0.0; 4]);
        self.optim_dispatch()?;
        let (tg, sl) = self.task_grads()?;
        let mut d = vec![&sl.graddrop];
        if sl.gp.is_none() {
            d.extend(&tg.trunk_bw);
        }
        d.extend(self.update()?);
        self.ctx.run(&d)
    }

    fn task_grads(&self) -> Result<(&TaskGrads, &Slots)> {
        let tg = self
            .tg
            .as_ref()
            .ok_or_else(|| Error::invalid("graph", "compiled without per-task gradients (GpuGraph::multi_task)"))?;
        let sl = tg.slots.as_ref().ok_or_else(|| {
            Error::invalid("graph", "the model shares no parameters (empty trunk): there are no shared gradients")
        })?;
        Ok((tg, sl))
    }

    /// Whether per-task gradients of shared parameters exist (a non-empty trunk).
    pub fn has_task_grads(&self) -> bool {
        self.tg.as_ref().is_some_and(|t| t.slots.is_some())
    }

    /// Reads the per-task gradients of the weighting target back, one row per task.
    pub fn read_task_grads(&self) -> Result<Vec<Vec<f32>>> {
        let (tg, sl) = self.task_grads()?;
        let (flat, p, stride) = match &sl.gp {
            Some(g) => (g, sl.len_p, sl.stride_p),
            None => (&sl.gz, sl.len_z, sl.stride_z),
        };
        let all = self.ctx.read(flat)?;
        Ok((0..tg.tasks).map(|t| all[t * stride..t * stride + p].to_vec()).collect())
    }

    /// The weighting spec this graph was compiled with.
    pub fn task_grad_spec(&self) -> Option<TaskGradSpec> {
        self.tg.as_ref().map(|t| t.spec)
    }

    /// The GPU-side state of the weighting (FAMO's), if it keeps one.
    pub fn read_weighting_state(&self) -> Result<Option<Vec<f32>>> {
        match self.tg.as_ref().and_then(|t| t.weighting_state.as_ref()) {
            Some(t) => Ok(Some(self.ctx.read(t)?)),
            None => Ok(None),
        }
    }

    /// Restores the GPU-side state of the weighting.
    pub fn write_weighting_state(&self, v: &[f32]) -> Result<()> {
        match self.tg.as_ref().and_then(|t| t.weighting_state.as_ref()) {
            Some(t) => self.ctx.write(t, v),
            None => Err(Error::invalid("weighting state", "this weighting keeps no GPU state")),
        }
    }

    /// Reads the task weights buffer (weightings computed on the GPU write it).
    pub fn read_task_weights(&self) -> Result<Vec<f32>> {
        self.ctx.read(&self.weights)
    }

    /// The optimizer's state tensors, each split per parameter (one readback each): SGD's
    /// momentum buffer, or Adam's exp_avg and exp_avg_sq. Empty without an optimizer.
    pub fn read_optim_state(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        let Some(o) = &self.optim else { return Ok(vec![]) };
        let n = o.opt.state_buffers();
        o.state[..n].iter().map(|t| Ok(self.split(&self.ctx.read(t)?))).collect()
    }

    /// Restores optimizer state (as [`GpuGraph::read_optim_state`] returns it) and the step count.
    pub fn write_optim_state(&mut self, state: &[Vec<Vec<f32>>], steps: u64) -> Result<()> {
        let offsets = self.param_offsets.clone();
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

    /// Freezes parameters (by index, in [`Graph::params`] order): from now on they get no
    /// update and their optimizer state stays zero. The update becomes one dispatch per
    /// contiguous run of trainable parameters.
    pub fn freeze(&mut self, frozen: &[bool]) -> Result<()> {
        if frozen.len() != self.param_views.len() {
            return Err(Error::shape(
                "freeze",
                format!("{} flags for {} parameters", frozen.len(), self.param_views.len()),
            ));
        }
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut open: Option<(usize, usize)> = None;
        // In buffer order, which is not quite parameter order (see `head_groups`).
        let mut by_place: Vec<usize> = (0..frozen.len()).collect();
        by_place.sort_by_key(|&i| self.param_offsets[i]);
        for i in by_place {
            let start = self.param_offsets[i];
            let end = start + self.param_views[i].len();
            if frozen[i] {
                ranges.extend(open.take());
            } else {
                open = Some(match open {
                    Some((s, _)) => (s, end),
                    None => (start, end),
                });
            }
        }
        ranges.extend(open);
        let ranges: Vec<(usize, usize)> = ranges.into_iter().map(|(s, e)| (s, e - s)).collect();
        let o = self.optim.as_mut().ok_or_else(|| Error::invalid("freeze", "the graph has no optimizer"))?;
        o.dispatches =
            optimizer_dispatches(&self.ctx, o.opt, &self.params, &self.grads, &o.state, &ranges, o.max_norm, &o.norm2)?;
        Ok(())
    }

    /// The GPU time of every dispatch of a training step (label, ms), without updating
    /// anything: forward, backward, and the update's dispatches timed on copies is not
    /// possible, so the update is timed too and its step count is not advanced. None
    /// without timestamp queries.
    pub fn profile_step(&self) -> Result<Option<Vec<(&'static str, f64)>>> {
        let mut d = self.gradient_dispatches();
        d.extend(self.update()?);
        Ok(self.ctx.profile(&d)?.map(|t| d.iter().zip(t).map(|(x, ms)| (x.active().label, ms)).collect()))
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.optim.as_ref().map_or(0, |o| o.step)
    }

    /// Dispatches in one training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.gradient_dispatches().len() + self.update().map_or(0, |u| u.len())
    }

    /// Operands the step's dispatches (in the forms now in use) read through texture copies,
    /// each refreshed by a copy before its dispatch (see [`crate::gpu::TexMirror`]).
    pub fn texture_operands(&self) -> usize {
        self.gradient_dispatches().iter().map(|d| d.texture_operands()).sum()
    }

    /// Reads the task losses back (one readback).
    pub fn losses(&self) -> Result<Vec<f32>> {
        self.ctx.read(&self.losses)
    }

    /// Reads every parameter back, in [`Graph::params`] order (one readback).
    pub fn read_params(&self) -> Result<Vec<Vec<f32>>> {
        Ok(self.split(&self.ctx.read(&self.params)?))
    }

    /// Reads every parameter gradient back, in [`Graph::params`] order (one readback).
    pub fn read_grads(&self) -> Result<Vec<Vec<f32>>> {
        Ok(self.split(&self.ctx.read(&self.grads)?))
    }

    /// A flat buffer's contents (params, grads or optimizer state) split per parameter.
    fn split(&self, flat: &[f32]) -> Vec<Vec<f32>> {
        self.param_views.iter().zip(&self.param_offsets).map(|(t, &off)| flat[off..off + t.len()].to_vec()).collect()
    }

    /// How many groups of linear heads run as one product (see the module's notes).
    pub fn fused_head_groups(&self) -> usize {
        self.head_groups
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

impl Drop for GpuGraph {
    /// Stops the upgrade thread after the matmul it is compiling, and waits for it.
    fn drop(&mut self) {
        if let Some((handle, stop)) = self.upgrader.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}
