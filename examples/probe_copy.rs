//! Probe: what a buffer-to-texture copy costs under this adapter (wall clock, 100 copies in one
//! submit), for 256x256, 256x64 and 1024x1024 f32 matrices. `cargo run --release --example probe_copy`
use std::time::Instant;
fn main() {
    let instance = wgpu::Instance::default();
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("adapter");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("device");
    for (rows, cols) in [(256usize, 256usize), (256, 64), (1024, 1024)] {
        let buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (rows * cols * 4) as u64,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let size = wgpu::Extent3d { width: (cols / 4) as u32, height: rows as u32, depth_or_array_layers: 1 };
        let tex = device.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let n = 100;
        for round in 0..3 {
            let t = Instant::now();
            let mut enc = device.create_command_encoder(&Default::default());
            for _ in 0..n {
                enc.copy_buffer_to_texture(
                    wgpu::TexelCopyBufferInfo {
                        buffer: &buf,
                        layout: wgpu::TexelCopyBufferLayout {
                            offset: 0,
                            bytes_per_row: Some((cols * 4) as u32),
                            rows_per_image: Some(rows as u32),
                        },
                    },
                    wgpu::TexelCopyTextureInfo {
                        texture: &tex,
                        mip_level: 0,
                        origin: wgpu::Origin3d::ZERO,
                        aspect: wgpu::TextureAspect::All,
                    },
                    size,
                );
            }
            queue.submit(Some(enc.finish()));
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            println!("{rows}x{cols} round {round}: {:.1} us per copy", t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
}
