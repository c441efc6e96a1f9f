//! The buffer pool: GPU buffers reused by size class, with bytes in use and peak reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::context::AtomicCounters;
use super::wait;

/// What a pooled buffer is for; buffers of different kinds never share a free list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufferKind {
    /// Read/write storage (tensors, parameters, gradients).
    Storage,
    /// Small blocks of kernel parameters, bound as uniform (most kernels) or read-only storage
    /// (matmul: see shaders/matmul.wgsl).
    Uniform,
    /// Host-mappable staging buffers for readback.
    Readback,
}

impl BufferKind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            BufferKind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            BufferKind::Uniform => U::UNIFORM | U::STORAGE | U::COPY_DST,
            BufferKind::Readback => U::MAP_READ | U::COPY_DST,
        }
    }
}

/// Rounds a size up to its class: powers of two up to 4 KiB, then quarter steps of the
/// enclosing power of two (so a class wastes at most 25% above 4 KiB).
pub fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    let p = bytes.next_power_of_two();
    if p <= 4096 {
        return p;
    }
    let step = p / 8;
    bytes.div_ceil(step) * step
}

struct PoolState {
    free: HashMap<(BufferKind, u64), Vec<wgpu::Buffer>>,
    in_use: u64,
    peak: u64,
}

pub(crate) struct PoolShared {
    device: wgpu::Device,
    state: Mutex<PoolState>,
    counters: Arc<AtomicCounters>,
}

/// Reuses GPU buffers by (kind, size class). A [`GpuBuffer`] goes back to its free list when
/// dropped, so steady-state training allocates nothing.
pub struct BufferPool {
    shared: Arc<PoolShared>,
    max_buffer: u64,
}

/// A GPU buffer on loan from the pool; returned to the pool on drop.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    kind: BufferKind,
    class: u64,
    pool: Arc<PoolShared>,
}

impl GpuBuffer {
    /// The wgpu buffer.
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        // Invariant: `buffer` is only taken in Drop.
        self.buffer.as_ref().expect("buffer present until drop")
    }
    /// Usable size in bytes (the size class; at least what was asked).
    pub fn capacity(&self) -> u64 {
        self.class
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            if let Ok(mut st) = self.pool.state.lock() {
                st.in_use = st.in_use.saturating_sub(self.class);
                st.free.entry((self.kind, self.class)).or_default().push(b);
            }
        }
    }
}

/// Device memory held outside the pool but counted in its usage; see [`BufferPool::hold`].
pub(crate) struct MemoryHold {
    bytes: u64,
    pool: Arc<PoolShared>,
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        if let Ok(mut st) = self.pool.state.lock() {
            st.in_use = st.in_use.saturating_sub(self.bytes);
        }
    }
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device, counters: Arc<AtomicCounters>, max_buffer: u64) -> Self {
        let state = PoolState { free: HashMap::new(), in_use: 0, peak: 0 };
        BufferPool { shared: Arc::new(PoolShared { device, state: Mutex::new(state), counters }), max_buffer }
    }

    /// Takes a buffer of at least `bytes` from the free list, or creates one.
    /// Contents of a reused buffer are whatever it held before.
    pub(crate) fn get(&self, kind: BufferKind, bytes: u64) -> crate::Result<GpuBuffer> {
        let class = size_class(bytes);
        if class > self.max_buffer {
            return Err(crate::Error::Limit {
                what: format!("a {kind:?} buffer"),
                needed: bytes,
                limit_name: "max_buffer_size",
                limit: self.max_buffer,
            });
        }
        let sh = &self.shared;
        let mut st = sh.state.lock().map_err(|_| crate::Error::DeviceLost("pool lock poisoned".into()))?;
        let reused = st.free.get_mut(&(kind, class)).and_then(Vec::pop);
        let buffer = match reused {
            Some(b) => b,
            None => {
                AtomicCounters::bump(&sh.counters.allocations, 1);
                // An allocation the device cannot satisfy is reported here, by name and size,
                // not later as an anonymous fault.
                // A browser cannot wait for a scope: there a failed allocation arrives as an
                // uncaptured error and fails the next readback.
                let oom =
                    (!cfg!(target_arch = "wasm32")).then(|| sh.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory));
                let buffer = sh.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("hydra"),
                    size: class,
                    usage: kind.usage(),
                    mapped_at_creation: false,
                });
                let failed = match oom {
                    Some(scope) => wait::block("allocating a buffer", async { Ok(scope.pop().await) })?.is_some(),
                    None => false,
                };
                if failed {
                    return Err(crate::Error::OutOfMemory {
                        context: format!(
                            "allocating a {kind:?} buffer of {class} bytes with {} bytes already in use",
                            st.in_use
                        ),
                    });
                }
                buffer
            }
        };
        st.in_use += class;
        st.peak = st.peak.max(st.in_use);
        Ok(GpuBuffer { buffer: Some(buffer), kind, class, pool: sh.clone() })
    }

    /// Counts `bytes` of device memory held outside the pool (a texture) in [`BufferPool::usage`]
    /// until the returned guard drops.
    pub(crate) fn hold(&self, bytes: u64) -> MemoryHold {
        if let Ok(mut st) = self.shared.state.lock() {
            st.in_use += bytes;
            st.peak = st.peak.max(st.in_use);
        }
        MemoryHold { bytes, pool: self.shared.clone() }
    }

    /// Restarts the peak from the bytes in use now.
    pub fn reset_peak(&self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.peak = st.in_use;
        }
    }

    /// (bytes held by live buffers, peak of that).
    pub fn usage(&self) -> (u64, u64) {
        match self.shared.state.lock() {
            Ok(st) => (st.in_use, st.peak),
            Err(_) => (0, 0),
        }
    }

    /// Frees every idle buffer (returns the bytes released).
    pub fn trim(&self) -> u64 {
        let Ok(mut st) = self.shared.state.lock() else {
            return 0;
        };
        let mut freed = 0;
        for ((_, class), list) in st.free.drain() {
            freed += class * list.len() as u64;
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_and_waste_at_most_a_quarter() {
        for bytes in [1u64, 15, 16, 17, 100, 4096, 4097, 5000, 65_536, 70_000, 1 << 20, 3_000_001] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            if bytes > 4096 {
                assert!((c - bytes) * 4 <= c, "{bytes} -> {c} wastes too much");
            }
        }
        assert_eq!(size_class(4097), 5120);
    }
}
