//! Probe: the same 4x4-per-invocation matmul reading its operands from storage buffers or from
//! rgba32float textures, best of N wall-clock runs. `cargo run --release --example probe_texture_reads`
use std::time::Instant;

const WGSL: &str = r#"
struct Dims { m: u32, n: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var at: texture_2d<f32>;
@group(0) @binding(5) var bt: texture_2d<f32>;

fn store4(m: u32, n: u32, v: vec4<f32>) {
    let i = m * d.n + n;
    c[i] = v.x; c[i + 1u] = v.y; c[i + 2u] = v.z; c[i + 3u] = v.w;
}

@compute @workgroup_size(8, 8, 1)
fn mm_storage(@builtin(global_invocation_id) g: vec3<u32>) {
    let m0 = g.y * 4u; let n0 = g.x * 4u; let K = d.k; let N = d.n;
    if m0 >= d.m || n0 >= N { return; }
    var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < K; k += 4u) {
        let b0 = b4[(k * N + n0) >> 2u]; let b1 = b4[((k + 1u) * N + n0) >> 2u];
        let b2 = b4[((k + 2u) * N + n0) >> 2u]; let b3 = b4[((k + 3u) * N + n0) >> 2u];
        let a0 = a4[(m0 * K + k) >> 2u]; let a1 = a4[((m0 + 1u) * K + k) >> 2u];
        let a2 = a4[((m0 + 2u) * K + k) >> 2u]; let a3 = a4[((m0 + 3u) * K + k) >> 2u];
        c0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
        c1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
        c2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
        c3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
    }
    store4(m0, n0, c0); store4(m0 + 1u, n0, c1); store4(m0 + 2u, n0, c2); store4(m0 + 3u, n0, c3);
}

@compute @workgroup_size(8, 8, 1)
fn mm_texture(@builtin(global_invocation_id) g: vec3<u32>) {
    let m0 = g.y * 4u; let n0 = g.x * 4u; let K = d.k; let N = d.n;
    if m0 >= d.m || n0 >= N { return; }
    let nt = i32(n0 >> 2u); let mi = i32(m0);
    var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < K; k += 4u) {
        let ki = i32(k); let kt = i32(k >> 2u);
        let b0 = textureLoad(bt, vec2<i32>(nt, ki), 0); let b1 = textureLoad(bt, vec2<i32>(nt, ki + 1), 0);
        let b2 = textureLoad(bt, vec2<i32>(nt, ki + 2), 0); let b3 = textureLoad(bt, vec2<i32>(nt, ki + 3), 0);
        let a0 = textureLoad(at, vec2<i32>(kt, mi), 0); let a1 = textureLoad(at, vec2<i32>(kt, mi + 1), 0);
        let a2 = textureLoad(at, vec2<i32>(kt, mi + 2), 0); let a3 = textureLoad(at, vec2<i32>(kt, mi + 3), 0);
        c0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
        c1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
        c2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
        c3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
    }
    store4(m0, n0, c0); store4(m0 + 1u, n0, c1); store4(m0 + 2u, n0, c2); store4(m0 + 3u, n0, c3);
}
"#;

fn main() {
    use wgpu::util::DeviceExt;
    let instance = wgpu::Instance::default();
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("adapter");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("device");
    println!("adapter: {}", adapter.get_info().name);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(WGSL.into()),
    });
    for n in [256usize, 1024] {
        let (m, k) = (n, n);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0).collect();
        let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&[m as u32, n as u32, k as u32, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let ab = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&a),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let bb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&b),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let cb = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (m * n * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let tex = |w: usize, h: usize, data: &[f32]| {
            let t = device.create_texture(&wgpu::TextureDescriptor {
                label: None,
                size: wgpu::Extent3d { width: (w / 4) as u32, height: h as u32, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Float,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &t,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                bytemuck::cast_slice(data),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some((w * 4) as u32),
                    rows_per_image: Some(h as u32),
                },
                wgpu::Extent3d { width: (w / 4) as u32, height: h as u32, depth_or_array_layers: 1 },
            );
            t.create_view(&wgpu::TextureViewDescriptor::default())
        };
        let av = tex(k, m, &a);
        let bv = tex(n, k, &b);
        let mut want = vec![0f32; m * n];
        for i in 0..m {
            for kk in 0..k {
                let x = a[i * k + kk];
                for j in 0..n {
                    want[i * n + j] += x * b[kk * n + j];
                }
            }
        }
        for entry in ["mm_storage", "mm_texture"] {
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            let mut entries = vec![
                wgpu::BindGroupEntry { binding: 0, resource: dims.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: cb.as_entire_binding() },
            ];
            if entry == "mm_storage" {
                entries.push(wgpu::BindGroupEntry { binding: 1, resource: ab.as_entire_binding() });
                entries.push(wgpu::BindGroupEntry { binding: 2, resource: bb.as_entire_binding() });
            } else {
                entries.push(wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::TextureView(&av) });
                entries.push(wgpu::BindGroupEntry { binding: 5, resource: wgpu::BindingResource::TextureView(&bv) });
            }
            let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            });
            let run = || {
                let mut enc = device.create_command_encoder(&Default::default());
                {
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&pipeline);
                    pass.set_bind_group(0, &bg, &[]);
                    pass.dispatch_workgroups((n / 32) as u32, (m / 32) as u32, 1);
                }
                queue.submit(Some(enc.finish()));
                device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            };
            run();
            // Check the result.
            let rb = device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: (m * n * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&cb, 0, &rb, 0, (m * n * 4) as u64);
            queue.submit(Some(enc.finish()));
            rb.slice(..).map_async(wgpu::MapMode::Read, |_| {});
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            let got: Vec<f32> = bytemuck::cast_slice(&rb.slice(..).get_mapped_range().unwrap()).to_vec();
            let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs() / (1.0 + w.abs())).fold(0f32, f32::max);
            let mut best = f64::MAX;
            for _ in 0..if n >= 1024 { 8 } else { 40 } {
                let t = Instant::now();
                run();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{n}^3 {entry}: best {:.2} ms, {:.2} GFLOP/s, max rel err {err:.1e}",
                best * 1e3,
                2.0 * (m * n * k) as f64 / best / 1e9
            );
        }
    }
}
