//! Dispatches and plans: GPU work built once (pipeline, bind group, uniform, grid) and
//! replayed any number of times with one queue submit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::buffer::{BufferKind, GpuBuffer};
use super::context::{AtomicCounters, Context};
use super::pipeline::PipelineKey;
use super::texture::TexMirror;
use crate::error::Result;
use crate::gpu::Tensor;
use crate::shaders::Shader;

/// The parameter block every kernel takes at binding 0: four integers and four floats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    /// Integer parameters (sizes, counts).
    pub u: [u32; 4],
    /// Float parameters (scales, slopes).
    pub f: [f32; 4],
}

/// One recorded kernel launch: everything needed to replay it without allocation.
pub struct Dispatch {
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    pub(crate) bind_group: wgpu::BindGroup,
    pub(crate) groups: [u32; 3],
    /// Label (the entry point), for profiles and errors.
    pub label: &'static str,
    /// The element count it was built for (what per-step parameter rewrites keep).
    pub(crate) elements: u32,
    /// A replacement built later (a faster form of the same kernel, compiled in the
    /// background): encoding uses it once it is set. It must compute exactly the same values.
    pub(crate) upgrade: Option<Arc<std::sync::OnceLock<Dispatch>>>,
    /// Texture copies of operands, refreshed from their tensors just before each run.
    pub(crate) refresh: Vec<Arc<TexMirror>>,
    // Keeps the uniform block and the bound buffers alive as long as the dispatch.
    _uniform: GpuBuffer,
    _bound: Vec<Arc<GpuBuffer>>,
    _textures: Vec<Arc<TexMirror>>,
}

impl Dispatch {
    /// The dispatch that runs: the upgrade once it is ready, else this one.
    pub(crate) fn active(&self) -> &Dispatch {
        self.upgrade.as_ref().and_then(|u| u.get()).unwrap_or(self)
    }

    /// How many operands the dispatch (its upgrade, once ready) reads through texture copies
    /// (see [`TexMirror`]).
    pub fn texture_operands(&self) -> usize {
        self.active().refresh.len()
    }

    /// Whether an upgrade was planned for this dispatch, and whether it is in use.
    pub fn upgrade_state(&self) -> (bool, bool) {
        (self.upgrade.is_some(), self.upgrade.as_ref().is_some_and(|u| u.get().is_some()))
    }

    /// Rewrites the uniform parameters (ordered on the queue before the next submit); used
    /// for values that change per step, such as the optimizer's bias corrections.
    pub fn set_params(&self, ctx: &Context, u: [u32; 4], f: [f32; 4]) {
        ctx.queue.write_buffer(self._uniform.raw(), 0, bytemuck::bytes_of(&Params { u, f }));
        AtomicCounters::bump(&ctx.counters.uploads, 1);
    }
}

/// Builds a [`Dispatch`]: a kernel entry point with its override constants, parameters,
/// storage bindings (bindings 1, 2, … in order) and grid.
pub struct KernelCall<'a> {
    key: PipelineKey,
    params: Params,
    bindings: Vec<(u32, &'a Tensor)>,
    /// Texture bindings, and whether each is a copy to refresh before every run.
    textures: Vec<(u32, Arc<TexMirror>, bool)>,
    groups: [u32; 3],
}

impl<'a> KernelCall<'a> {
    /// A call of `entry` in `shader` with override `constants`.
    pub fn new(shader: Shader, entry: &'static str, constants: &[(&'static str, f64)]) -> Self {
        KernelCall {
            key: PipelineKey::new(shader, entry, constants),
            params: Params::default(),
            bindings: Vec::new(),
            textures: Vec::new(),
            groups: [1, 1, 1],
        }
    }
    /// Sets the uniform parameters.
    pub fn params(mut self, u: [u32; 4], f: [f32; 4]) -> Self {
        self.params = Params { u, f };
        self
    }
    /// Adds the next storage binding (1, 2, … in call order).
    pub fn bind(mut self, t: &'a Tensor) -> Self {
        let slot = self.bindings.last().map_or(1, |b| b.0 + 1);
        self.bindings.push((slot, t));
        self
    }
    /// Binds a tensor at an explicit binding number.
    pub fn bind_at(mut self, slot: u32, t: &'a Tensor) -> Self {
        self.bindings.push((slot, t));
        self
    }
    /// Binds a texture copy of an operand at `slot`, refreshed from its tensor before each run.
    pub(crate) fn bind_texture(mut self, slot: u32, m: Arc<TexMirror>) -> Self {
        self.textures.push((slot, m, true));
        self
    }
    /// Binds a placeholder texture at `slot`, never refreshed (the kernel does not read it).
    pub(crate) fn bind_texture_dummy(mut self, slot: u32, m: Arc<TexMirror>) -> Self {
        self.textures.push((slot, m, false));
        self
    }
    /// Sets the workgroup grid.
    pub fn groups(mut self, x: u32, y: u32, z: u32) -> Self {
        self.groups = [x, y, z];
        self
    }
    /// Compiles (or fetches) the pipeline and creates the bind group.
    pub fn build(self, ctx: &Context) -> Result<Dispatch> {
        let label = self.key.entry;
        let uniform = ctx.pool.get(BufferKind::Uniform, std::mem::size_of::<Params>() as u64)?;
        ctx.queue.write_buffer(uniform.raw(), 0, bytemuck::bytes_of(&self.params));
        AtomicCounters::bump(&ctx.counters.uploads, 1);
        let bindings = self.bindings;
        let textures = self.textures;
        let groups = self.groups;
        let key = self.key;
        let (pipeline, bind_group) = ctx.scoped(&format!("building kernel {label}"), || {
            let pipeline = ctx.pipelines.get(&key);
            let layout = pipeline.get_bind_group_layout(0);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: uniform.raw(),
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }];
            for (slot, t) in bindings.iter() {
                entries.push(wgpu::BindGroupEntry { binding: *slot, resource: t.binding() });
            }
            for (slot, m, _) in textures.iter() {
                entries.push(wgpu::BindGroupEntry {
                    binding: *slot,
                    resource: wgpu::BindingResource::TextureView(&m.view),
                });
            }
            let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &layout,
                entries: &entries,
            });
            (pipeline, bind_group)
        })?;
        let max = ctx.adapter().max_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(crate::Error::invalid(
                format!("kernel {label} grid"),
                format!("{groups:?} exceeds the adapter's {max} workgroups per dimension"),
            ));
        }
        Ok(Dispatch {
            pipeline,
            bind_group,
            groups,
            label,
            elements: 0,
            upgrade: None,
            refresh: textures.iter().filter(|t| t.2).map(|t| t.1.clone()).collect(),
            _uniform: uniform,
            _bound: bindings.iter().map(|(_, t)| t.buffer().clone()).collect(),
            _textures: textures.into_iter().map(|t| t.1).collect(),
        })
    }
}

/// Records dispatches in order, in as few compute passes as their texture refreshes allow:
/// a dispatch that reads texture copies starts a new pass after the copies.
pub(crate) fn encode(ctx: &Context, enc: &mut wgpu::CommandEncoder, dispatches: &[&Dispatch]) {
    let mut start = 0;
    while start < dispatches.len() {
        refresh(enc, dispatches[start]);
        let end = dispatches[start + 1..]
            .iter()
            .position(|d| !d.active().refresh.is_empty())
            .map_or(dispatches.len(), |i| start + 1 + i);
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        for d in &dispatches[start..end] {
            encode_one(&mut pass, d);
        }
        start = end;
    }
    ctx.counters.dispatches.fetch_add(dispatches.len() as u64, Ordering::Relaxed);
}

/// Records the copies that bring a dispatch's texture operands up to date (outside a pass).
pub(crate) fn refresh(enc: &mut wgpu::CommandEncoder, d: &Dispatch) {
    for m in &d.active().refresh {
        m.refresh(enc);
    }
}

/// Records one dispatch (its upgrade, once ready) into a pass.
pub(crate) fn encode_one(pass: &mut wgpu::ComputePass<'_>, d: &Dispatch) {
    let d = d.active();
    if d.groups.contains(&0) {
        return;
    }
    pass.set_pipeline(&d.pipeline);
    pass.set_bind_group(0, &d.bind_group, &[]);
    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
}

impl Context {
    /// Runs dispatches in order in one queue submit (no wait).
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        self.scoped("running kernels", || {
            let mut enc =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("hydra run") });
            encode(self, &mut enc, dispatches);
            self.submit(enc.finish());
        })
    }
}
