//! Tensors: a shape and a view into a (possibly shared, flat) GPU buffer of f32.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::buffer::{BufferKind, GpuBuffer};
use crate::gpu::context::{AtomicCounters, Context};
use crate::gpu::wait;

/// A row-major f32 tensor on the GPU: a shape and a byte offset into a pooled buffer.
/// Cloning shares the storage.
#[derive(Clone)]
pub struct Tensor {
    buf: Arc<GpuBuffer>,
    offset: u64,
    shape: Vec<usize>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}@{}", self.shape, self.offset)
    }
}

impl Tensor {
    /// The shape, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.len() as u64 * 4
    }
    /// Rows and columns of a 2-D tensor (a 1-D tensor is one row).
    pub fn dims2(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            s => (s[..s.len() - 1].iter().product(), s[s.len() - 1]),
        }
    }
    /// Whether two tensors are views of the same buffer.
    pub fn shares_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }
    /// The same storage seen with another shape of the same length.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != self.len() {
            return Err(Error::shape("reshape", format!("{:?} into {shape:?}", self.shape)));
        }
        Ok(Tensor { buf: self.buf.clone(), offset: self.offset, shape: shape.to_vec() })
    }
    /// A view of `shape` starting `offset` elements into this tensor's storage. The byte offset
    /// must meet the adapter's storage-offset alignment when the view is bound to a kernel.
    pub fn view(&self, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let n = crate::error::elements(shape, || format!("a view of shape {shape:?}"))?;
        if offset.checked_add(n).is_none_or(|end| end > self.len()) {
            return Err(Error::shape("view", format!("{offset}+{n} elements past {:?}", self.shape)));
        }
        Ok(Tensor { buf: self.buf.clone(), offset: self.offset + offset as u64 * 4, shape: shape.to_vec() })
    }
    pub(crate) fn buffer(&self) -> &Arc<GpuBuffer> {
        &self.buf
    }
    /// Byte offset into the underlying buffer.
    pub fn offset_bytes(&self) -> u64 {
        self.offset
    }
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buf.raw(),
            offset: self.offset,
            size: wgpu::BufferSize::new(self.bytes().max(4)),
        })
    }
}

impl Context {
    /// A tensor of `shape` whose contents are unspecified (a reused buffer keeps old values).
    pub fn empty(&self, shape: &[usize]) -> Result<Tensor> {
        let n = crate::error::elements(shape, || format!("a tensor of shape {shape:?}"))?;
        if n == 0 {
            return Err(Error::shape("tensor", format!("{shape:?} has no elements")));
        }
        let bytes = n as u64 * 4;
        let limit = self.adapter().max_storage_binding;
        if bytes > limit {
            return Err(Error::Limit {
                what: format!("a tensor of shape {shape:?}"),
                needed: bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        let buf = self.pool.get(BufferKind::Storage, bytes)?;
        Ok(Tensor { buf: Arc::new(buf), offset: 0, shape: shape.to_vec() })
    }

    /// A tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let t = self.empty(shape)?;
        self.write(&t, &crate::error::host_vec(t.len(), 0.0, &format!("zeros for a tensor of shape {shape:?}"))?)?;
        Ok(t)
    }

    /// A tensor holding `data` (row-major), which must have `shape`'s length.
    pub fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let t = self.empty(shape)?;
        self.write(&t, data)?;
        Ok(t)
    }

    /// Overwrites a tensor's contents. Ordered on the queue: lands before any later submit.
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if data.len() != t.len() {
            return Err(Error::shape("write", format!("{} values into {:?}", data.len(), t.shape)));
        }
        self.queue.write_buffer(t.buf.raw(), t.offset, bytemuck::cast_slice(data));
        AtomicCounters::bump(&self.counters.uploads, 1);
        Ok(())
    }

    /// Copies several tensors back to the host in one readback (one copy each into one staging
    /// buffer, one map), waiting for all submitted work first. Blocks: in a browser use
    /// [`Context::read_many_async`].
    pub fn read_many(&self, ts: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        wait::block("reading tensors back", self.read_many_async(ts))
    }

    /// [`Context::read_many`] as a future: the form that works in a browser, where the
    /// page's event loop runs while the GPU finishes.
    pub async fn read_many_async(&self, ts: &[&Tensor]) -> Result<Vec<Vec<f32>>> {
        let total: u64 = ts.iter().map(|t| t.bytes()).sum();
        if total == 0 {
            return Ok(ts.iter().map(|_| Vec::new()).collect());
        }
        let staging = self.pool.get(BufferKind::Readback, total)?;
        self.scoped("reading tensors back", || {
            let mut enc =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
            let mut at = 0;
            for t in ts {
                enc.copy_buffer_to_buffer(t.buf.raw(), t.offset, staging.raw(), at, t.bytes());
                at += t.bytes();
            }
            self.submit(enc.finish());
        })?;
        AtomicCounters::bump(&self.counters.readbacks, 1);
        let bytes = self.map_bytes_async(staging.raw(), total).await?;
        let all: Vec<f32> = bytemuck::pod_collect_to_vec::<u8, f32>(&bytes);
        let mut out = Vec::with_capacity(ts.len());
        let mut at = 0;
        for t in ts {
            out.push(all[at..at + t.len()].to_vec());
            at += t.len();
        }
        Ok(out)
    }

    /// Waits for the queue, maps the first `bytes` of a MAP_READ buffer and copies them out.
    pub(crate) fn map_bytes(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        wait::block("reading a buffer back", self.map_bytes_async(buffer, bytes))
    }

    /// [`Context::map_bytes`] as a future.
    pub(crate) async fn map_bytes_async(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let slice = buffer.slice(0..bytes);
        let (tx, rx) = wait::oneshot();
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        // Natively this runs the callback; in a browser the device polls itself.
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::DeviceLost(e.to_string()))?;
        match rx.await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::DeviceLost(format!("mapping a readback buffer: {e}"))),
            None => return Err(Error::DeviceLost("readback callback never ran".into())),
        }
        self.check_fault()?;
        let out = slice.get_mapped_range().map_err(|e| Error::DeviceLost(format!("mapped range: {e:?}")))?.to_vec();
        buffer.unmap();
        Ok(out)
    }

    /// Copies a tensor back to the host, waiting for all submitted work first.
    pub fn read(&self, t: &Tensor) -> Result<Vec<f32>> {
        wait::block("reading a tensor back", self.read_async(t))
    }

    /// [`Context::read`] as a future.
    pub async fn read_async(&self, t: &Tensor) -> Result<Vec<f32>> {
        Ok(self.read_many_async(&[t]).await?.pop().unwrap_or_default())
    }
}
