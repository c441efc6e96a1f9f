//! The runtime: a compiled graph ([`crate::compile`]) with its recorded program (named
//! [`Segment`]s of dispatches), its parameter store and its background block upgrades
//! ([`Upgrader`]), replayed step after step. A training step is one queue submit with no
//! readback; nothing is allocated after compilation.

mod affinity;
mod distributed;
mod phases;
pub use affinity::AffinityReadback;
pub use distributed::Partials;
pub use phases::GramReadback;
mod program;
mod state;
mod upgrader;

use std::sync::Arc;

pub use program::Segment;
pub use upgrader::Upgrader;

use crate::compile::{self, Compiled, Memory, Options, ParamSource, ParamStore, Passes};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch};
use crate::ir::{Graph, NodeId, Op};
use crate::mtl::gpu::{task_step, TaskGradSpec};
use crate::optim::Optimizer;
use program::Program;

/// What the divergence guard saw first: (step, task index or T for a parameter, value).
pub type Divergence = (u64, usize, f32);

/// A [`Graph`] compiled for the GPU: its buffers and its program.
pub struct GpuGraph {
    ctx: Arc<Context>,
    graph: Graph,
    mem: Memory,
    head_groups: usize,
    staging: Vec<f32>,
    program: Program,
    upgrader: Upgrader,
}

impl GpuGraph {
    /// Compiles `graph` with initial parameters `init` (in [`Graph::params`] order) and an
    /// optional optimizer. Every task weight starts at 1.
    pub fn new(ctx: Arc<Context>, graph: Graph, init: &[Vec<f32>], optimizer: Option<Optimizer>) -> Result<GpuGraph> {
        Self::with_passes(ctx, graph, init, optimizer, Passes::default())
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
        let opts = Options { passes, ..Options::default() };
        let c = compile::compile(&ctx, graph, ParamSource::Values(init), opts)?;
        Self::assemble(ctx, c, optimizer, None)
    }

    /// Compiles `graph` for inference: the forward pass alone (no gradient buffers, no
    /// backward dispatches, so fewer pipelines to compile before the first result).
    pub fn forward_only(ctx: Arc<Context>, graph: Graph, init: &[Vec<f32>]) -> Result<GpuGraph> {
        Self::inference(ctx, graph, ParamSource::Values(init))
    }

    /// Compiles `graph` for inference on the parameters of `store` (another graph's, such as
    /// a trainer's): evaluation reads the trained parameters where they are, with no copy.
    pub fn forward_only_on(ctx: Arc<Context>, graph: Graph, store: &ParamStore) -> Result<GpuGraph> {
        Self::inference(ctx, graph, ParamSource::Store(store))
    }

    fn inference(ctx: Arc<Context>, graph: Graph, source: ParamSource<'_>) -> Result<GpuGraph> {
        let passes = Passes { forward_only: true, ..Passes::default() };
        let c = compile::compile(&ctx, graph, source, Options { passes, ..Options::default() })?;
        Self::assemble(ctx, c, None, None)
    }

    /// Like [`GpuGraph::new`], keeping per-task gradients at the shared representation, with
    /// the weighting's segments ([`crate::mtl::gpu`]).
    pub fn multi_task(
        ctx: Arc<Context>,
        graph: Graph,
        init: &[Vec<f32>],
        optimizer: Option<Optimizer>,
        spec: TaskGradSpec,
    ) -> Result<GpuGraph> {
        let opts = Options {
            passes: Passes::default(),
            split_at: Some(spec.z),
            shared_params: spec.shared_params,
            weights_after_loss: spec.loss_weighting.after_loss(),
        };
        let c = compile::compile(&ctx, graph, ParamSource::Values(init), opts)?;
        Self::assemble(ctx, c, optimizer, Some(spec))
    }

    fn assemble(
        ctx: Arc<Context>,
        mut c: Compiled,
        optimizer: Option<Optimizer>,
        spec: Option<TaskGradSpec>,
    ) -> Result<GpuGraph> {
        let task = match spec {
            Some(s) => Some(task_step(&ctx, &mut c, s)?),
            None => None,
        };
        let max_norm = spec.and_then(|t| t.max_grad_norm).filter(|m| *m > 0.0);
        let store = &c.mem.store;
        let update = match optimizer {
            None => None,
            Some(opt) => Some(crate::optim::gpu::program(
                &ctx,
                opt,
                max_norm,
                &store.params,
                &store.grads,
                store.total(),
                &c.mem.losses,
            )?),
        };
        let program = Program { forward: c.forward, backward: c.backward, task, update };
        Ok(GpuGraph {
            staging: vec![0.0; c.mem.batch_len()],
            ctx,
            graph: c.graph,
            mem: c.mem,
            head_groups: c.head_groups,
            program,
            upgrader: Upgrader::new(c.upgrades),
        })
    }

    /// Starts compiling, on a background thread, the larger-block form of each of the step's
    /// matmuls that has one ([`crate::kernels::steady_register_tiles`]); each replaces its
    /// quick form in the step as soon as it is ready. Results do not change, bit for bit
    /// (every block size sums in the same order), only speed: under llvmpipe a 16×16 block
    /// runs a 256³ product about twice as fast as a 4×4 one but takes 3–5 s to compile, which
    /// a short run should not wait for. Returns how many were started; a second call starts
    /// none.
    pub fn start_upgrades(&mut self) -> usize {
        self.upgrader.start(&self.ctx)
    }

    /// Waits until every upgrade started by [`GpuGraph::start_upgrades`] is built.
    pub fn wait_upgrades(&mut self) {
        self.upgrader.wait();
    }

    /// (matmuls of the step with a larger-block form, how many of those are in use).
    pub fn upgrade_progress(&self) -> (usize, usize) {
        let all = self.program.all();
        all.iter()
            .map(|d| d.upgrade_state())
            .fold((0, 0), |(n, u), (has, used)| (n + usize::from(has), u + usize::from(used)))
    }

    /// The graph this was compiled from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The parameter store (to compile an evaluation graph on the same parameters).
    pub fn store(&self) -> &ParamStore {
        &self.mem.store
    }

    /// Writes one batch: every input in [`Graph::inputs`] order, with one upload.
    pub fn feed(&mut self, inputs: &[&[f32]]) -> Result<()> {
        let ids = self.graph.inputs();
        if inputs.len() != ids.len() {
            return Err(Error::shape("feed", format!("{} inputs for {} input nodes", inputs.len(), ids.len())));
        }
        for (k, id) in ids.iter().enumerate() {
            let len: usize = self.graph.shape(*id).iter().product();
            if inputs[k].len() != len {
                let name = &self.graph.nodes[id.0].name;
                return Err(Error::shape("feed", format!("input {name} needs {len} values, got {}", inputs[k].len())));
            }
            let at = self.mem.input_offsets[k];
            self.staging[at..at + len].copy_from_slice(inputs[k]);
        }
        self.ctx.write(&self.mem.batch, &self.staging)
    }

    /// Sets the task weights w_t of Σ_t w_t·L_t (read by the loss kernels on the GPU).
    pub fn set_task_weights(&self, w: &[f32]) -> Result<()> {
        self.ctx.write(&self.mem.weights, w)
    }

    /// Runs these segments of the program, in order, in one submit.
    pub fn run(&self, segments: &[Segment]) -> Result<()> {
        self.ctx.run(&self.program.segments(segments))
    }

    /// Runs the forward pass (losses included): one submit.
    pub fn forward(&self) -> Result<()> {
        self.run(&[Segment::Forward])
    }

    /// Runs forward and backward (gradients, no update): one submit.
    pub fn forward_backward(&self) -> Result<()> {
        self.run(&Program::GRADIENT)
    }

    /// Advances the optimizer's step count and writes its per-step values.
    fn next_update(&mut self) -> Result<()> {
        let o = self.program.update.as_mut().ok_or_else(|| Error::invalid("step", "no optimizer"))?;
        o.next_step(&self.ctx);
        Ok(())
    }

    /// One training step on the fed batch: forward, backward and the optimizer update in one
    /// submit, nothing read back. Task gradients at z are summed (loss weights are already in
    /// each task's gradient).
    pub fn step(&mut self) -> Result<()> {
        self.next_update()?;
        let mut d = self.program.segments(&Program::GRADIENT);
        d.extend(self.program.update()?);
        self.ctx.run(&d)
    }

    /// The GPU time of every dispatch of a training step (label, ms). The update runs too
    /// (timing it on copies is not possible), but its step count does not advance. None
    /// without timestamp queries.
    pub fn profile_step(&self) -> Result<Option<Vec<(&'static str, f64)>>> {
        let mut d = self.program.segments(&Program::GRADIENT);
        d.extend(self.program.update()?);
        Ok(self.ctx.profile(&d)?.map(|t| d.iter().zip(t).map(|(x, ms)| (x.active().label, ms)).collect()))
    }

    /// Dispatches in one training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.program.segments(&Program::GRADIENT).len() + self.program.update().map_or(0, |u| u.len())
    }

    /// Operands the step's dispatches (in the forms now in use) read through texture copies,
    /// each refreshed by a copy before its dispatch (see [`crate::gpu::TexMirror`]).
    pub fn texture_operands(&self) -> usize {
        self.program.segments(&Program::GRADIENT).iter().map(|d| d.texture_operands()).sum()
    }

    /// How many groups of linear heads run as one product.
    pub fn fused_head_groups(&self) -> usize {
        self.head_groups
    }

    /// Reads the task losses back (one readback).
    pub fn losses(&self) -> Result<Vec<f32>> {
        self.ctx.read(&self.mem.losses)
    }

    /// Reads the task weights buffer (weightings computed on the GPU write it).
    pub fn read_task_weights(&self) -> Result<Vec<f32>> {
        crate::gpu::wait::block("reading the graph back", self.read_task_weights_async())
    }

    /// [`GpuGraph::read_task_weights`] as a future: the form a browser page uses.
    pub async fn read_task_weights_async(&self) -> Result<Vec<f32>> {
        self.ctx.read_async(&self.mem.weights).await
    }

    /// Reads several nodes' outputs back in one readback (losses are not nodes with values).
    pub fn read_values(&self, ids: &[NodeId]) -> Result<Vec<Vec<f32>>> {
        crate::gpu::wait::block("reading the graph back", self.read_values_async(ids))
    }

    /// [`GpuGraph::read_values`] as a future: the form a browser page uses.
    pub async fn read_values_async(&self, ids: &[NodeId]) -> Result<Vec<Vec<f32>>> {
        let ts = ids.iter().map(|&id| self.mem.value(id)).collect::<Result<Vec<_>>>()?;
        self.ctx.read_many_async(&ts).await
    }

    /// Reads a node's output back.
    pub fn read_value(&self, id: NodeId) -> Result<Vec<f32>> {
        match &self.mem.values[id.0] {
            Some(t) => self.ctx.read(t),
            None => {
                let task = match self.graph.nodes[id.0].op {
                    Op::Loss { task, .. } => task,
                    _ => 0,
                };
                Ok(vec![self.losses()?[task]])
            }
        }
    }

    /// Reads a node's gradient back (None where the node needs none).
    pub fn read_grad(&self, id: NodeId) -> Result<Option<Vec<f32>>> {
        match &self.mem.node_grads[id.0] {
            Some(t) => Ok(Some(self.ctx.read(t)?)),
            None => Ok(None),
        }
    }

    /// The dispatches of a step, for the phases of a gradient method.
    fn dispatches(&self, segments: &[Segment]) -> Vec<&Dispatch> {
        self.program.segments(segments)
    }
}
