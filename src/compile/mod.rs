//! The compiler: a graph becomes buffers and dispatches, built once and replayed by the
//! runtime. Small passes, each in its own module and each testable alone:
//!
//! 1. [`fuse_heads`]: linear heads reading one representation become one product
//!    (switch: [`Passes::fuse_heads`]);
//! 2. [`memory`]: the memory plan (flat parameter and gradient buffers, aligned views, the
//!    batch buffer, values and gradients);
//! 3. [`lower_forward`]: the forward dispatches;
//! 4. [`lower_backward`]: the backward steps of [`crate::autograd::backward::derive()`] as
//!    dispatches, with [`fuse_act_grad`] folding activation gradients into products
//!    (switch: [`Passes::fuse_act_grad`]) and an optional per-task [`lower_backward::Split`].
//!
//! Products a long run would repay compiling with a larger block are recorded as
//! [`upgrade::UpgradeJob`]s. What the compiler knows of multi-task learning is only that
//! split: the machinery that weights and combines the per-task gradients is in
//! [`crate::mtl::gpu`], the optimizer's update in [`crate::optim::gpu`].

pub mod fuse_act_grad;
pub mod fuse_heads;
pub mod lower_backward;
pub mod lower_forward;
pub mod memory;
pub mod upgrade;

use crate::error::Result;
use crate::gpu::{Context, Dispatch, Tensor};
use crate::ir::{Graph, NodeId};
pub use memory::{flat_layout, Memory, ParamSource, ParamStore};
use upgrade::UpgradeJob;

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

/// How to compile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// The passes.
    pub passes: Passes,
    /// Keep each task's gradient contributions at this node apart (one slot per task).
    pub split_at: Option<NodeId>,
    /// Parameters before this index are shared (fused heads are looked for after them).
    pub shared_params: usize,
    /// The loss kernels scale their gradients by one; a weighting computed from this step's
    /// losses scales them afterwards.
    pub weights_after_loss: bool,
}

/// The per-task slots of a split.
pub struct SplitSlots {
    /// All slots, `[T, stride]`.
    pub flat: Tensor,
    /// Each task's slot, shaped like the split node.
    pub views: Vec<Tensor>,
    /// Values in a slot.
    pub len: usize,
    /// Distance between slots (aligned).
    pub stride: usize,
    /// The split node.
    pub z: NodeId,
}

/// A compiled graph: its buffers and its dispatches.
pub struct Compiled {
    /// The graph.
    pub graph: Graph,
    /// Every buffer.
    pub mem: Memory,
    /// Groups of heads that run as one product.
    pub head_groups: usize,
    /// The forward pass.
    pub forward: Vec<Dispatch>,
    /// The backward pass (empty for a forward-only compilation).
    pub backward: Vec<Dispatch>,
    /// With a split: where the heads' part of `backward` ends.
    pub head_end: Option<usize>,
    /// With a split whose node needs a gradient: the slots.
    pub split: Option<SplitSlots>,
    /// Larger-block forms of the step's products, to build in the background.
    pub upgrades: Vec<UpgradeJob>,
}

/// Compiles `graph` with parameters from `source`.
pub fn compile(ctx: &Context, graph: Graph, source: ParamSource<'_>, opts: Options) -> Result<Compiled> {
    graph.check_sizes()?;
    let n = graph.nodes.len();
    let consumers = graph.consumers();
    let mut groups = if opts.passes.fuse_heads {
        fuse_heads::head_groups(&graph, &consumers, opts.shared_params)
    } else {
        Vec::new()
    };
    let need = if opts.passes.forward_only { vec![false; n] } else { graph.needs_grad() };
    let mem = memory::plan(ctx, &graph, source, &mut groups, &need)?;
    let member_of = fuse_heads::member_of(&groups);

    let mut upgrades = Vec::new();
    let forward = lower_forward::lower(ctx, &graph, &mem, &groups, &member_of, opts.weights_after_loss, &mut upgrades)?;

    // With nothing shared to learn (no trunk), there is no gradient at the split node to keep apart.
    let split = match opts.split_at.filter(|z| need[z.0]) {
        Some(z) => {
            let len: usize = graph.shape(z).iter().product();
            let stride = len.div_ceil(mem.align) * mem.align;
            let tasks = graph.tasks();
            let flat = ctx.zeros(&[tasks.max(1) * stride])?;
            let views = (0..tasks).map(|t| flat.view(t * stride, graph.shape(z))).collect::<Result<Vec<_>>>()?;
            Some(SplitSlots { flat, views, len, stride, z })
        }
        None => None,
    };
    let (backward, head_end) = if opts.passes.forward_only {
        (Vec::new(), None)
    } else {
        let inputs = lower_backward::Inputs {
            graph: &graph,
            mem: &mem,
            groups: &groups,
            member_of: &member_of,
            need: &need,
            fusion: fuse_act_grad::ActGradFusion {
                enabled: opts.passes.fuse_act_grad,
                graph: &graph,
                consumers: &consumers,
                member_of: &member_of,
                mem: &mem,
            },
            split: split.as_ref().map(|s| lower_backward::Split {
                z: s.z.0,
                task_of: lower_backward::Split::tasks_of(&graph, &consumers),
                slots: &s.views,
            }),
        };
        let b = lower_backward::lower(ctx, inputs, &mut upgrades)?;
        (b.dispatches, b.head_end)
    };
    Ok(Compiled { head_groups: groups.len(), graph, mem, forward, backward, head_end, split, upgrades })
}
