//! Texture copies of matrix operands: an rgba32float texture holding a row-major tensor four
//! columns to a texel, refreshed by a copy before each dispatch that reads it.
//!
//! Why: lavapipe (Mesa 22.3) reads a storage buffer one SIMD lane at a time, a loop with a
//! branch per lane, while it fetches texels for all lanes at once. A register-blocked matmul is
//! bound by those reads, so on CPU adapters its operands read through a texture run the
//! product 1.25–2.4× faster at 256³ (`examples/probe_tall_tex.rs`), for the price of a copy
//! (a memcpy under lavapipe) per operand per dispatch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::buffer::MemoryHold;
use super::context::Context;
use crate::error::Result;
use crate::gpu::Tensor;

/// Live texture copies by the tensor they copy: (buffer, byte offset, rows, columns).
pub(crate) type MirrorCache = Mutex<HashMap<(usize, u64, usize, usize), Weak<TexMirror>>>;

/// Bytes per row a buffer-to-texture copy needs a multiple of (WebGPU's rule): 64 floats.
const ROW_ALIGN_FLOATS: usize = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize / 4;

/// A texture copy of a 2-D tensor (see the module's notes): texel (c / 4, r) holds columns
/// c..c+3 of row r.
pub struct TexMirror {
    src: Tensor,
    texture: wgpu::Texture,
    pub(crate) view: wgpu::TextureView,
    rows: u32,
    texels_per_row: u32,
    _hold: MemoryHold,
}

impl TexMirror {
    /// Records the copy that brings the texture up to date with its tensor.
    pub(crate) fn refresh(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: self.src.buffer().raw(),
                layout: wgpu::TexelCopyBufferLayout {
                    offset: self.src.offset_bytes(),
                    bytes_per_row: Some(self.texels_per_row * 16),
                    rows_per_image: Some(self.rows),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d { width: self.texels_per_row, height: self.rows, depth_or_array_layers: 1 },
        );
    }
}

impl Context {
    /// Whether a matmul operand `t` can be read through a texture copy: a 2-D tensor whose
    /// rows are a whole number of 64 floats (a copy's row alignment), starting 16-byte
    /// aligned, within the adapter's texture size.
    pub fn tex_mirrorable(&self, t: &Tensor) -> bool {
        let (rows, cols) = t.dims2();
        let max = self.adapter().max_texture_2d as usize;
        rows >= 1
            && cols % ROW_ALIGN_FLOATS == 0
            && cols > 0
            && cols / 4 <= max
            && rows <= max
            && t.offset_bytes() % 16 == 0
    }

    /// A texture copy of `t` (contents undefined until its first refresh), or `None` where
    /// [`Context::tex_mirrorable`] says no. Dispatches that read the same tensor share one
    /// texture while any of them lives: each refreshes it just before it runs, so sharing
    /// saves memory and changes nothing else.
    pub(crate) fn tex_mirror(&self, t: &Tensor) -> Result<Option<Arc<TexMirror>>> {
        if !self.tex_mirrorable(t) {
            return Ok(None);
        }
        let (rows, cols) = t.dims2();
        let key = (Arc::as_ptr(t.buffer()) as usize, t.offset_bytes(), rows, cols);
        let mut shared = self.mirrors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = shared.get(&key).and_then(Weak::upgrade) {
            return Ok(Some(m));
        }
        shared.retain(|_, w| w.strong_count() > 0);
        let size = wgpu::Extent3d { width: (cols / 4) as u32, height: rows as u32, depth_or_array_layers: 1 };
        let hold = self.pool.hold(t.bytes());
        let texture = self.operand_texture(size, "an operand texture")?;
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let m = Arc::new(TexMirror {
            src: t.clone(),
            texture,
            view,
            rows: size.height,
            texels_per_row: size.width,
            _hold: hold,
        });
        shared.insert(key, Arc::downgrade(&m));
        Ok(Some(m))
    }

    /// An rgba32float texture of `size` texels that copies fill and kernels read.
    fn operand_texture(&self, size: wgpu::Extent3d, what: &str) -> Result<wgpu::Texture> {
        self.scoped(&format!("creating {what}"), || {
            self.device.create_texture(&wgpu::TextureDescriptor {
                label: Some("hydra operand"),
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Float,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        })
    }

    /// A 1×1 texture bound where a kernel's optional texture operand is absent.
    pub(crate) fn dummy_texture(&self) -> Result<Arc<TexMirror>> {
        if let Some(t) = self.dummy_texture.get() {
            return Ok(t.clone());
        }
        let src = self.dummy()?;
        let one = wgpu::Extent3d { width: 1, height: 1, depth_or_array_layers: 1 };
        let texture = self.operand_texture(one, "a dummy texture")?;
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let t = Arc::new(TexMirror { src, texture, view, rows: 1, texels_per_row: 1, _hold: self.pool.hold(16) });
        Ok(self.dummy_texture.get_or_init(|| t).clone())
    }
}
