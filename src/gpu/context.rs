//! The GPU context: adapter choice, device limits, error capture and the engine's counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::buffer::BufferPool;
use super::pipeline::PipelineCache;
use super::wait;
use super::MatmulVariant;
use crate::error::{Error, Result};
use crate::gpu::Tensor;

/// What kind of device an adapter is, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    /// A discrete GPU.
    Discrete,
    /// A GPU integrated with the CPU.
    Integrated,
    /// A virtual GPU (a VM's).
    Virtual,
    /// A software rasterizer on the CPU (lavapipe, llvmpipe, WARP).
    Cpu,
    /// Anything else.
    Other,
}

/// Facts about the adapter Hydra runs on.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// The backend: "vulkan", "metal", "dx12", "gl".
    pub backend: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version text.
    pub driver_info: String,
    /// Device kind.
    pub kind: DeviceKind,
    /// Largest storage buffer binding, bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers_per_stage: u32,
    /// Workgroup memory per workgroup, bytes.
    pub max_workgroup_storage: u32,
    /// Invocations per workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Alignment of storage buffer binding offsets, bytes.
    pub storage_offset_alignment: u32,
    /// Workgroups per grid dimension.
    pub max_workgroups_per_dimension: u32,
    /// Whether GPU timestamp queries are available.
    pub timestamps: bool,
    /// Texels along each side of a 2-D texture.
    pub max_texture_2d: u32,
}

/// Counters that let tests prove what the engine did (submits, readbacks, allocations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `queue.submit` calls.
    pub submits: u64,
    /// Buffers read back to the host.
    pub readbacks: u64,
    /// GPU buffers created (pool misses); reused buffers do not count.
    pub allocations: u64,
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Host-to-device uploads (`write_buffer`).
    pub uploads: u64,
}

#[derive(Default)]
pub(crate) struct AtomicCounters {
    pub submits: AtomicU64,
    pub readbacks: AtomicU64,
    pub allocations: AtomicU64,
    pub dispatches: AtomicU64,
    pub uploads: AtomicU64,
}

impl AtomicCounters {
    pub fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The GPU device Hydra runs on, with its pipeline cache, buffer pool and counters.
///
/// Cheap to share: clone the `Arc` returned by [`Context::new`].
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    summary: AdapterSummary,
    pub(crate) pipelines: PipelineCache,
    pub(crate) pool: BufferPool,
    pub(crate) counters: Arc<AtomicCounters>,
    fault: Arc<Mutex<Option<Error>>>,
    matmul_variant: Mutex<Option<MatmulVariant>>,
    texture_operands: std::sync::atomic::AtomicBool,
    dummy: OnceLock<Tensor>,
    dummy_out: OnceLock<Tensor>,
    pub(crate) dummy_texture: OnceLock<Arc<super::texture::TexMirror>>,
    pub(crate) mirrors: super::texture::MirrorCache,
    /// Submissions not yet known to be finished, oldest first (flow control).
    in_flight: Mutex<std::collections::VecDeque<wgpu::SubmissionIndex>>,
}

/// Submissions allowed in flight before `submit` waits for the oldest: enough to keep the
/// device busy while the host records the next step, few enough that finished work (command
/// buffers, upload staging memory) is reclaimed promptly instead of piling up.
const MAX_IN_FLIGHT: usize = 2;

fn kind_of(t: wgpu::DeviceType) -> DeviceKind {
    match t {
        wgpu::DeviceType::DiscreteGpu => DeviceKind::Discrete,
        wgpu::DeviceType::IntegratedGpu => DeviceKind::Integrated,
        wgpu::DeviceType::VirtualGpu => DeviceKind::Virtual,
        wgpu::DeviceType::Cpu => DeviceKind::Cpu,
        wgpu::DeviceType::Other => DeviceKind::Other,
    }
}

fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    }
}

impl Context {
    /// Opens the best adapter: discrete > integrated > virtual > CPU, Vulkan/Metal/DX12 before GL.
    ///
    /// `HYDRA_ADAPTER=<part of the name>` restricts the choice; wgpu's `WGPU_BACKEND` restricts
    /// the backends. Without any adapter the error says how to install the software driver.
    /// On the software driver, a program gets more speed by calling
    /// [`crate::gpu::software::prefer_software_threads`] first in `main`, as `hydra` does.
    pub fn new() -> Result<Arc<Context>> {
        wait::block("opening the GPU", Self::new_async())
    }

    /// [`Context::new`] as a future: the form a browser page uses (WebGPU hands out its
    /// adapter and device asynchronously).
    pub async fn new_async() -> Result<Arc<Context>> {
        let filter = std::env::var("HYDRA_ADAPTER").ok().filter(|s| !s.is_empty());
        Self::with_filter_async(filter.as_deref()).await
    }

    /// Like [`Context::new`] with an explicit adapter-name filter (case-insensitive substring).
    pub fn with_filter(filter: Option<&str>) -> Result<Arc<Context>> {
        wait::block("opening the GPU", Self::with_filter_async(filter))
    }

    /// [`Context::with_filter`] as a future.
    pub async fn with_filter_async(filter: Option<&str>) -> Result<Arc<Context>> {
        Self::nth_best_async(filter, 0).await
    }

    /// For one of several processes on a machine (ranks of data-parallel training): the
    /// `local_rank`-th adapter, round robin, among those as good as the best one (same kind
    /// and backend), so ranks spread over a machine's GPUs; `filter` as in
    /// [`Context::with_filter`].
    pub fn for_local_rank(filter: Option<&str>, local_rank: usize) -> Result<Arc<Context>> {
        wait::block("opening the GPU", Self::nth_best_async(filter, local_rank))
    }

    async fn nth_best_async(filter: Option<&str>, nth: usize) -> Result<Arc<Context>> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = instance.enumerate_adapters(backends).await;
        let seen: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| match filter {
                Some(f) => a.get_info().name.to_lowercase().contains(&f.to_lowercase()),
                None => true,
            })
            .collect();
        let rank_of = |a: &wgpu::Adapter| {
            let i = a.get_info();
            (kind_of(i.device_type), backend_rank(i.backend))
        };
        candidates.sort_by_key(rank_of);
        let best = candidates.first().map(rank_of);
        candidates.retain(|a| Some(rank_of(a)) == best);
        let count = candidates.len().max(1);
        let Some(adapter) = candidates.into_iter().nth(nth % count) else {
            let detail = match filter {
                Some(f) if !seen.is_empty() => {
                    format!(" matching HYDRA_ADAPTER={f:?} (seen: {})", seen.join(", "))
                }
                Some(f) => format!(" matching HYDRA_ADAPTER={f:?}"),
                None => String::new(),
            };
            return Err(Error::NoAdapter { detail });
        };
        Self::from_adapter_async(adapter).await
    }

    /// A context on an adapter you chose yourself (the one place Hydra's API takes a wgpu type).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Arc<Context>> {
        wait::block("opening the GPU", Self::from_adapter_async(adapter))
    }

    /// [`Context::from_adapter`] as a future.
    pub async fn from_adapter_async(adapter: wgpu::Adapter) -> Result<Arc<Context>> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let mut features = wgpu::Features::empty();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("hydra"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| Error::RequestDevice { adapter: info.name.clone(), message: e.to_string() })?;
        let fault: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        {
            let fault = fault.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let err = convert_error("a GPU operation", e);
                if let Ok(mut slot) = fault.lock() {
                    slot.get_or_insert(err);
                }
            }));
        }
        {
            let fault = fault.clone();
            device.set_device_lost_callback(move |reason, message| {
                if let Ok(mut slot) = fault.lock() {
                    slot.get_or_insert(Error::DeviceLost(format!("{reason:?}: {message}")));
                }
            });
        }
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            kind: kind_of(info.device_type),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            storage_offset_alignment: limits.min_storage_buffer_offset_alignment,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            timestamps,
            max_texture_2d: limits.max_texture_dimension_2d,
        };
        let textures = summary.kind == DeviceKind::Cpu && std::env::var("HYDRA_TEXTURE_OPERANDS").as_deref() != Ok("0");
        let counters = Arc::new(AtomicCounters::default());
        let pool = BufferPool::new(device.clone(), counters.clone(), summary.max_buffer);
        Ok(Arc::new(Context {
            pipelines: PipelineCache::new(device.clone()),
            device,
            queue,
            summary,
            pool,
            counters,
            fault,
            matmul_variant: Mutex::new(None),
            texture_operands: std::sync::atomic::AtomicBool::new(textures),
            dummy: OnceLock::new(),
            dummy_out: OnceLock::new(),
            dummy_texture: OnceLock::new(),
            mirrors: Default::default(),
            in_flight: Mutex::new(std::collections::VecDeque::new()),
        }))
    }

    /// The adapter's name, backend, driver and limits.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The matmul form used when a call does not name one: the tuned choice if
    /// [`Context::set_matmul_variant`] was called, else the adapter's default.
    pub fn matmul_variant(&self) -> MatmulVariant {
        let chosen = self.matmul_variant.lock().map(|v| *v).unwrap_or(None);
        chosen.unwrap_or_else(|| MatmulVariant::default_for(self.summary.kind))
    }

    /// Sets the matmul form used from now on (dispatches built earlier keep theirs).
    pub fn set_matmul_variant(&self, v: MatmulVariant) {
        if let Ok(mut slot) = self.matmul_variant.lock() {
            *slot = Some(v);
        }
    }

    /// Whether matmuls read their operands through texture copies unless told
    /// ([`crate::kernels::MatmulSpec::textures`]): by default on CPU adapters, where texel
    /// fetches beat storage reads; `HYDRA_TEXTURE_OPERANDS=0` turns it off at start.
    pub fn texture_operands(&self) -> bool {
        self.texture_operands.load(Ordering::Relaxed)
    }

    /// Sets [`Context::texture_operands`] for dispatches built from now on.
    pub fn set_texture_operands(&self, on: bool) {
        self.texture_operands.store(on, Ordering::Relaxed);
    }

    /// A one-element tensor bound where a kernel's optional input is absent.
    pub(crate) fn dummy(&self) -> Result<Tensor> {
        if let Some(t) = self.dummy.get() {
            return Ok(t.clone());
        }
        let t = self.zeros(&[4])?;
        Ok(self.dummy.get_or_init(|| t).clone())
    }

    /// Like [`Context::dummy`], for an absent optional output: a buffer of its own, since one
    /// dispatch may not bind the same buffer both read-only and writable.
    pub(crate) fn dummy_out(&self) -> Result<Tensor> {
        if let Some(t) = self.dummy_out.get() {
            return Ok(t.clone());
        }
        let t = self.zeros(&[4])?;
        Ok(self.dummy_out.get_or_init(|| t).clone())
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later operation
    /// fails with an error. For testing how a program handles a lost device.
    pub fn simulate_device_loss(&self) {
        self.device.destroy();
    }

    /// How many distinct pipelines have been compiled.
    pub fn pipelines_compiled(&self) -> usize {
        self.pipelines.len()
    }

    /// A snapshot of the engine's counters.
    pub fn counters(&self) -> Counters {
        let c = &self.counters;
        Counters {
            submits: c.submits.load(Ordering::Relaxed),
            readbacks: c.readbacks.load(Ordering::Relaxed),
            allocations: c.allocations.load(Ordering::Relaxed),
            dispatches: c.dispatches.load(Ordering::Relaxed),
            uploads: c.uploads.load(Ordering::Relaxed),
        }
    }

    /// Bytes of GPU memory held by live buffers now, and the most ever held at once (since the
    /// context was made or [`Context::reset_memory_peak`]).
    pub fn memory(&self) -> (u64, u64) {
        self.pool.usage()
    }

    /// Restarts the peak of [`Context::memory`] from what is in use now, to measure one phase.
    pub fn reset_memory_peak(&self) {
        self.pool.reset_peak();
    }

    /// Runs `f` inside validation and out-of-memory error scopes, turning any captured error
    /// into a [`Error`] that names `context`.
    ///
    /// In a browser an error scope can only be read asynchronously, so there `f` runs without
    /// one: its errors arrive as uncaptured errors and fail the next readback or check.
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        if cfg!(target_arch = "wasm32") {
            let out = f();
            self.check_fault()?;
            return Ok(out);
        }
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let (v, o) = wait::block("checking for GPU errors", async { Ok((val.pop().await, oom.pop().await)) })?;
        if let Some(e) = o.or(v) {
            return Err(convert_error(context, e));
        }
        self.check_fault()?;
        Ok(out)
    }

    /// Returns an error reported outside any scope (or a lost device) since the last check.
    pub(crate) fn check_fault(&self) -> Result<()> {
        let mut slot = self.fault.lock().map_err(|_| Error::DeviceLost("fault lock poisoned".into()))?;
        match slot.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Blocks until every submitted command has finished.
    pub fn sync(&self) -> Result<()> {
        wait::block("waiting for the GPU", self.sync_async())
    }

    /// [`Context::sync`] as a future.
    pub async fn sync_async(&self) -> Result<()> {
        let (tx, rx) = wait::oneshot();
        self.queue.on_submitted_work_done(move || tx.send(()));
        // Natively this runs the callback; in a browser the device polls itself.
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::DeviceLost(e.to_string()))?;
        if rx.await.is_none() {
            return Err(Error::DeviceLost("the queue's completion callback never ran".into()));
        }
        self.check_fault()
    }

    pub(crate) fn submit(&self, cmd: wgpu::CommandBuffer) -> wgpu::SubmissionIndex {
        AtomicCounters::bump(&self.counters.submits, 1);
        let index = self.queue.submit(Some(cmd));
        // Flow control, not a readback: reclaim what has finished, and never let more than
        // MAX_IN_FLIGHT submissions queue up behind a slower device.
        let _ = self.device.poll(wgpu::PollType::Poll);
        if let Ok(mut q) = self.in_flight.lock() {
            q.push_back(index.clone());
            while q.len() > MAX_IN_FLIGHT {
                if let Some(oldest) = q.pop_front() {
                    let _ = self.device.poll(wgpu::PollType::Wait { submission_index: Some(oldest), timeout: None });
                }
            }
        }
        index
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Vulkan drivers can crash at exit if the device goes while work is pending (wgpu#2949).
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }
}

pub(crate) fn convert_error(context: &str, e: wgpu::Error) -> Error {
    match e {
        wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory { context: context.to_string() },
        wgpu::Error::Validation { description, .. } => {
            Error::Validation { context: context.to_string(), message: description }
        }
        wgpu::Error::Internal { description, .. } => {
            Error::Validation { context: context.to_string(), message: description }
        }
    }
}
