//! Dispatches and plans: GPU work built once (pipeline, bind group, uniform, grid) and
//! replayed any number of times with one queue submit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::buffer::{BufferKind, GpuBuffer};
use super::context::{AtomicCounters, Context};
use super::pipeline::PipelineKey;
use crate::error::Result;
use crate::shaders::Shader;
use crate::tensor::Tensor;

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
    // Keeps the uniform block and the bound buffers alive as long as the dispatch.
    _uniform: GpuBuffer,
    _bound: Vec<Arc<GpuBuffer>>,
}

impl Dispatch {
    /// The dispatch that runs: the upgrade once it is ready, else this one.
    pub(crate) fn active(&self) -> &Dispatch {
        self.upgrade.as_ref().and_then(|u| u.get()).unwrap_or(self)
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
    groups: [u32; 3],
}

impl<'a> KernelCall<'a> {
    /// A call of `entry` in `shader` with override `constants`.
    pub fn new(shader: Shader, entry: &'static str, constants: &[(&'static str, f64)]) -> Self {
        KernelCall {
            key: PipelineKey::new(shader, entry, constants),
            params: Params::default(),
            bindings: Vec::new(),
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
            _uniform: uniform,
            _bound: bindings.iter().map(|(_, t)| t.buffer().clone()).collect(),
        })
    }
}

/// Records dispatches into a compute pass, in order.
pub(crate) fn encode(ctx: &Context, pass: &mut wgpu::ComputePass<'_>, dispatches: &[&Dispatch]) {
    for d in dispatches {
        let d = d.active();
        if d.groups.contains(&0) {
            continue;
        }
        pass.set_pipeline(&d.pipeline);
        pass.set_bind_group(0, &d.bind_group, &[]);
        pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
    }
    ctx.counters.dispatches.fetch_add(dispatches.len() as u64, Ordering::Relaxed);
}

impl Context {
    /// Runs dispatches in order in one compute pass and one queue submit (no wait).
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        self.scoped("running kernels", || {
            let mut enc =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("hydra run") });
            {
                let mut pass =
                    enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                encode(self, &mut pass, dispatches);
            }
            self.submit(enc.finish());
        })
    }
}
