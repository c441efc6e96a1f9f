//! Memory planning: every buffer a compiled graph uses, allocated once. Parameters and their
//! gradients live in flat buffers (a [`ParamStore`]), each tensor an aligned view, so that
//! zeroing, the optimizer and per-task gradient copies are single dispatches; the batch is
//! one flat buffer written with one upload; every other node gets its own value buffer, and
//! a gradient buffer where one is needed.

use super::fuse_heads::HeadGroup;
use crate::error::{host_vec, Error, Result};
use crate::gpu::{Context, Tensor};
use crate::ir::{Graph, NodeId, Op};

/// Offsets (in f32 elements) of tensors packed into one flat buffer, each aligned to `align`.
pub fn flat_layout(lens: &[usize], align: usize) -> (Vec<usize>, usize) {
    flat_layout_runs(lens, align, &vec![false; lens.len()])
}

/// [`flat_layout`], except that a tensor marked `tight` starts right where the one before it
/// ends (the members of a pack after its first).
fn flat_layout_runs(lens: &[usize], align: usize, tight: &[bool]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(lens.len());
    let mut at: usize = 0;
    for (&n, &t) in lens.iter().zip(tight) {
        if !t {
            at = at.div_ceil(align) * align;
        }
        offsets.push(at);
        at += n;
    }
    (offsets, at.max(1))
}

/// The parameters of a model and their gradients, in two flat buffers. Training and
/// evaluation graphs compiled against one store read the same parameters: evaluation needs no
/// copy of them.
#[derive(Clone, Debug)]
pub struct ParamStore {
    /// Every parameter, at `offsets`.
    pub params: Tensor,
    /// Their gradients, at the same offsets.
    pub grads: Tensor,
    /// Where each parameter starts, in f32 elements (parameter order, except that the weights
    /// of a group of fused heads sit together, and a pack's members back to back).
    pub offsets: Vec<usize>,
    /// Each parameter's shape.
    pub shapes: Vec<Vec<usize>>,
}

impl ParamStore {
    /// Values in both buffers: a whole number of four (the optimizer works four at a time).
    pub fn total(&self) -> usize {
        self.params.len()
    }

    /// Parameter `i`'s length.
    pub fn len_of(&self, i: usize) -> usize {
        self.shapes[i].iter().product()
    }

    /// The views of each parameter into `flat` (the parameters, their gradients, or a buffer
    /// of the same layout such as an optimizer state).
    pub fn views(&self, flat: &Tensor) -> Result<Vec<Tensor>> {
        (0..self.shapes.len()).map(|i| flat.view(self.offsets[i], &self.shapes[i])).collect()
    }

    /// A flat buffer's contents split per parameter.
    pub fn split(&self, flat: &[f32]) -> Vec<Vec<f32>> {
        (0..self.shapes.len()).map(|i| flat[self.offsets[i]..self.offsets[i] + self.len_of(i)].to_vec()).collect()
    }

    /// Per-parameter values packed into the flat layout (zeros between them).
    pub fn pack(&self, per_param: &[Vec<f32>], what: &'static str) -> Result<Vec<f32>> {
        let mut flat = host_vec(self.total(), 0f32, what)?;
        for (i, v) in per_param.iter().enumerate() {
            let len = self.len_of(i);
            if v.len() != len {
                return Err(Error::shape(what, format!("{} values for a parameter of {len}", v.len())));
            }
            flat[self.offsets[i]..self.offsets[i] + len].copy_from_slice(v);
        }
        Ok(flat)
    }
}

/// Where a compiled graph's parameters come from.
#[derive(Clone, Copy)]
pub enum ParamSource<'a> {
    /// Fresh buffers holding these values (in [`Graph::params`] order).
    Values(&'a [Vec<f32>]),
    /// An existing store whose first parameters are this graph's (same shapes, same order):
    /// the graph reads and updates them in place.
    Store(&'a ParamStore),
}

/// Every buffer of a compiled graph.
pub struct Memory {
    /// Alignment of views in the flat buffers, in f32 elements (at least 4).
    pub align: usize,
    /// The parameters and gradients.
    pub store: ParamStore,
    /// Each parameter's view into the store.
    pub param_views: Vec<Tensor>,
    /// Each parameter's gradient view.
    pub grad_views: Vec<Tensor>,
    /// The batch: every input, one flat buffer.
    pub batch: Tensor,
    /// Where each input starts in it ([`Graph::inputs`] order).
    pub input_offsets: Vec<usize>,
    /// Each node's output (none for losses).
    pub values: Vec<Option<Tensor>>,
    /// Pre-activations kept for the backward pass (Linear and Grouped nodes whose activation's derivative
    /// needs its input).
    pub pre: Vec<Option<Tensor>>,
    /// Each node's gradient, where one is needed.
    pub node_grads: Vec<Option<Tensor>>,
    /// The task losses.
    pub losses: Tensor,
    /// The task weights the loss kernels read.
    pub weights: Tensor,
    /// All ones, for loss kernels whose weighting comes after the loss.
    pub ones: Tensor,
    /// Per task, the labelled rows of the global batch the fed batch is a slice of, which the
    /// loss kernels divide by (zeros, the default: the fed batch's own count).
    pub counts: Tensor,
}

impl Memory {
    /// Node `id`'s output.
    pub fn value(&self, id: NodeId) -> Result<&Tensor> {
        self.values[id.0].as_ref().ok_or_else(|| Error::shape("compile", format!("node {} has no value", id.0)))
    }

    /// Node `id`'s gradient.
    pub fn grad(&self, id: NodeId) -> Result<&Tensor> {
        self.node_grads[id.0].as_ref().ok_or_else(|| Error::shape("compile", format!("node {} has no gradient", id.0)))
    }

    /// Values in the batch buffer.
    pub fn batch_len(&self) -> usize {
        self.batch.len()
    }
}

/// The order of parameters in a new store: parameter order, except that the weights of a
/// group of heads, and the members of a pack, sit together (where the first of them would
/// be). With each, whether it follows the one before with no alignment gap (a pack's members
/// after the first).
fn param_order(n: usize, groups: &[HeadGroup], packs: &[Vec<usize>]) -> (Vec<usize>, Vec<bool>) {
    let runs: Vec<(&[usize], bool)> = groups
        .iter()
        .map(|g| (g.weights.as_slice(), false))
        .chain(packs.iter().map(|p| (p.as_slice(), true)))
        .collect();
    let (mut order, mut tight) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for p in 0..n {
        match runs.iter().find(|r| r.0.contains(&p)) {
            Some(&(run, packed)) if run.iter().min() == Some(&p) => {
                order.extend(run);
                tight.extend((0..run.len()).map(|k| packed && k > 0));
            }
            Some(_) => {}
            None => {
                order.push(p);
                tight.push(false);
            }
        }
    }
    (order, tight)
}

/// Each pack's members, as parameter indices.
fn pack_params(graph: &Graph) -> Vec<Vec<usize>> {
    let param_of = |id: &NodeId| match graph.nodes[id.0].op {
        Op::Param(p) => p,
        _ => unreachable!("Graph::pack takes parameters only"),
    };
    graph.packs.iter().map(|members| members.iter().map(param_of).collect()).collect()
}

/// Checks that each pack's members lie back to back from an aligned start, and are read by
/// their pack alone (its gradient is theirs).
fn check_packs(graph: &Graph, store: &ParamStore, align: usize) -> Result<()> {
    let consumers = graph.consumers();
    for (k, members) in pack_params(graph).iter().enumerate() {
        let first = members[0];
        let mut at = store.offsets[first];
        let aligned = at % align == 0;
        for &p in members {
            let node = graph.params[p].node.0;
            if !matches!(consumers[node].as_slice(), [c] if graph.nodes[*c].op == Op::Pack(k)) {
                return Err(Error::invalid(
                    "graph",
                    format!("{} is packed, so nothing else may read it", graph.params[p].name),
                ));
            }
            if store.offsets[p] != at || !aligned {
                return Err(Error::shape(
                    "compile",
                    format!("the store does not lay out {}'s pack back to back", graph.params[p].name),
                ));
            }
            at += store.len_of(p);
        }
    }
    Ok(())
}

fn new_store(
    ctx: &Context,
    graph: &Graph,
    init: &[Vec<f32>],
    groups: &[HeadGroup],
    align: usize,
) -> Result<ParamStore> {
    if init.len() != graph.params.len() {
        return Err(Error::shape(
            "compile",
            format!("{} initial tensors for {} parameters", init.len(), graph.params.len()),
        ));
    }
    let lens: Vec<usize> = graph.params.iter().map(|p| p.shape.iter().product()).collect();
    let (order, tight) = param_order(lens.len(), groups, &pack_params(graph));
    let (placed, total) = flat_layout_runs(&order.iter().map(|&p| lens[p]).collect::<Vec<_>>(), align, &tight);
    let total = total.div_ceil(4) * 4;
    let mut offsets = vec![0; lens.len()];
    for (k, &p) in order.iter().enumerate() {
        offsets[p] = placed[k];
    }
    let mut host = host_vec(total, 0f32, "the initial parameters")?;
    for (i, v) in init.iter().enumerate() {
        if v.len() != lens[i] {
            return Err(Error::shape(
                "compile",
                format!("parameter {} needs {} values, got {}", graph.params[i].name, lens[i], v.len()),
            ));
        }
        host[offsets[i]..offsets[i] + lens[i]].copy_from_slice(v);
    }
    let shapes = graph.params.iter().map(|p| p.shape.clone()).collect();
    Ok(ParamStore { params: ctx.upload(&host, &[total])?, grads: ctx.zeros(&[total])?, offsets, shapes })
}

fn shared_store(graph: &Graph, store: &ParamStore) -> Result<ParamStore> {
    let n = graph.params.len();
    if n > store.shapes.len() || graph.params.iter().zip(&store.shapes).any(|(p, s)| &p.shape != s) {
        return Err(Error::shape("compile", "the parameter store does not hold this graph's parameters"));
    }
    Ok(ParamStore { offsets: store.offsets[..n].to_vec(), shapes: store.shapes[..n].to_vec(), ..store.clone() })
}

/// Node `i`, a pack: its view of `flat` (the parameters or their gradients), from its first
/// member on.
fn pack_view(graph: &Graph, store: &ParamStore, flat: &Tensor, i: usize) -> Result<Tensor> {
    let Op::Pack(k) = graph.nodes[i].op else { unreachable!("node {i} is a pack") };
    let Op::Param(first) = graph.nodes[graph.packs[k][0].0].op else { unreachable!("packs hold parameters") };
    flat.view(store.offsets[first], &graph.nodes[i].shape)
}

/// Plans and allocates every buffer of `graph`. Head groups whose weights the layout does not
/// place back to back (alignment gaps, or a shared store laid out otherwise) are dropped from
/// `groups`: they run head by head. `need` says which nodes get a gradient buffer.
pub fn plan(
    ctx: &Context,
    graph: &Graph,
    source: ParamSource<'_>,
    groups: &mut Vec<HeadGroup>,
    need: &[bool],
) -> Result<Memory> {
    // (At least 4 values, so that the optimizer may work four at a time.)
    let align = (ctx.adapter().storage_offset_alignment as usize / 4).max(4);
    let n = graph.nodes.len();
    let tasks = graph.tasks().max(1);
    let store = match source {
        ParamSource::Values(init) => new_store(ctx, graph, init, groups, align)?,
        ParamSource::Store(s) => shared_store(graph, s)?,
    };
    check_packs(graph, &store, align)?;
    let (offsets, lens) = (&store.offsets, (0..store.shapes.len()).map(|i| store.len_of(i)).collect::<Vec<_>>());
    groups.retain(|g| g.weights.windows(2).all(|w| offsets[w[1]] == offsets[w[0]] + lens[w[0]]));
    let param_views = store.views(&store.params)?;
    let grad_views = store.views(&store.grads)?;

    // Inputs: one flat batch buffer, written once per step.
    let inputs = graph.inputs();
    let in_lens: Vec<usize> = inputs.iter().map(|&id| graph.shape(id).iter().product()).collect();
    let (input_offsets, batch_total) = flat_layout(&in_lens, align);
    let batch = ctx.zeros(&[batch_total])?;
    let losses = ctx.zeros(&[tasks])?;
    let weights = ctx.upload(&vec![1.0; tasks], &[tasks])?;
    let ones = ctx.upload(&vec![1.0; tasks], &[tasks])?;
    let counts = ctx.zeros(&[tasks])?;

    let mut values: Vec<Option<Tensor>> = vec![None; n];
    let mut pre: Vec<Option<Tensor>> = vec![None; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        let shape = &node.shape;
        values[i] = match node.op {
            Op::Input => {
                let k = inputs.iter().position(|&id| id.0 == i).expect("input listed");
                Some(batch.view(input_offsets[k], shape)?)
            }
            Op::Param(p) => Some(param_views[p].clone()),
            Op::Pack(_) => Some(pack_view(graph, &store, &store.params, i)?),
            Op::Loss { .. } => None,
            Op::Linear { act, .. } | Op::Grouped { act, .. } => {
                if !act.grad_from_output() {
                    pre[i] = Some(ctx.empty(shape)?);
                }
                Some(ctx.empty(shape)?)
            }
            _ => Some(ctx.empty(shape)?),
        };
    }
    // Gradients: parameters into the flat buffer, other nodes their own.
    let mut node_grads: Vec<Option<Tensor>> = vec![None; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        if need[i] {
            node_grads[i] = Some(match node.op {
                Op::Param(p) => grad_views[p].clone(),
                Op::Pack(_) => pack_view(graph, &store, &store.grads, i)?,
                _ => ctx.empty(&node.shape)?,
            });
        }
    }
    Ok(Memory {
        align,
        store,
        param_views,
        grad_views,
        batch,
        input_offsets,
        values,
        pre,
        node_grads,
        losses,
        weights,
        ones,
        counts,
    })
}
