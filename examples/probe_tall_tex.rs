//! Probe: the tall 8x4 block (32x16 outputs per invocation) reading its operands from storage
//! buffers or from rgba32float textures, best and median of N wall-clock runs: how much the
//! texel-fetch path saves. `cargo run --release --example probe_tall_tex [m n k]`
use std::time::Instant;

const WGSL: &str = r#"
struct Dims { m: u32, n: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<uniform> d: Dims;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;
@group(0) @binding(4) var at: texture_2d<f32>;
@group(0) @binding(5) var bt: texture_2d<f32>;
override TEX: bool = false;
var<private> dims: vec3<u32>;

fn a_row4(m: u32, k: u32) -> vec4<f32> {
    if TEX { return textureLoad(at, vec2<u32>(k >> 2u, m), 0); }
    return a4[(m * dims.z + k) >> 2u];
}
fn b_row4(k: u32, n: u32) -> vec4<f32> {
    if TEX { return textureLoad(bt, vec2<u32>(n >> 2u, k), 0); }
    return b4[(k * dims.y + n) >> 2u];
}
fn a_tile(m: u32, k: u32) -> mat4x4<f32> {
    return mat4x4<f32>(a_row4(m, k), a_row4(m + 1u, k), a_row4(m + 2u, k), a_row4(m + 3u, k));
}
fn b_tile(k: u32, n: u32) -> mat4x4<f32> {
    return mat4x4<f32>(b_row4(k, n), b_row4(k + 1u, n), b_row4(k + 2u, n), b_row4(k + 3u, n));
}
fn mac(acc: ptr<function, array<mat4x4<f32>, 32>>, r: u32, a: mat4x4<f32>, b: array<mat4x4<f32>, 4>) {
    (*acc)[4u * r] += b[0] * a;
    (*acc)[4u * r + 1u] += b[1] * a;
    (*acc)[4u * r + 2u] += b[2] * a;
    (*acc)[4u * r + 3u] += b[3] * a;
}
fn store_tile(m: u32, n: u32, t: mat4x4<f32>) {
    for (var i = 0u; i < 4u; i++) {
        c4[((m + i) * dims.y + n) >> 2u] = t[i];
    }
}
@compute @workgroup_size(8, 4, 1)
fn tall(@builtin(global_invocation_id) gid: vec3<u32>) {
    dims = vec3<u32>(d.m, d.n, d.k);
    let m0 = gid.y * 32u;
    let n0 = gid.x * 16u;
    if m0 >= dims.x || n0 >= dims.y { return; }
    var acc: array<mat4x4<f32>, 32>;
    var bt: array<mat4x4<f32>, 4>;
    for (var k = 0u; k < dims.z; k += 4u) {
        bt[0] = b_tile(k, n0); bt[1] = b_tile(k, n0 + 4u); bt[2] = b_tile(k, n0 + 8u); bt[3] = b_tile(k, n0 + 12u);
        mac(&acc, 0u, a_tile(m0, k), bt);
        mac(&acc, 1u, a_tile(m0 + 4u, k), bt);
        mac(&acc, 2u, a_tile(m0 + 8u, k), bt);
        mac(&acc, 3u, a_tile(m0 + 12u, k), bt);
        mac(&acc, 4u, a_tile(m0 + 16u, k), bt);
        mac(&acc, 5u, a_tile(m0 + 20u, k), bt);
        mac(&acc, 6u, a_tile(m0 + 24u, k), bt);
        mac(&acc, 7u, a_tile(m0 + 28u, k), bt);
    }
    for (var r = 0u; r < 8u; r++) {
        store_tile(m0 + 4u * r, n0, acc[4u * r]);
        store_tile(m0 + 4u * r, n0 + 4u, acc[4u * r + 1u]);
        store_tile(m0 + 4u * r, n0 + 8u, acc[4u * r + 2u]);
        store_tile(m0 + 4u * r, n0 + 12u, acc[4u * r + 3u]);
    }
}
"#;

fn main() {
    use wgpu::util::DeviceExt;
    let instance = wgpu::Instance::default();
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("adapter");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("device");
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(WGSL.into()),
    });
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        vec![(args[0], args[1], args[2])]
    } else {
        vec![(256, 256, 256), (256, 256, 64), (1024, 1024, 1024)]
    };
    for (m, n, k) in shapes {
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
        for texflag in [0.0, 1.0] {
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some("tall"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[("TEX", texflag)],
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            let entries = vec![
                wgpu::BindGroupEntry { binding: 0, resource: dims.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: ab.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: bb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: cb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::TextureView(&av) },
                wgpu::BindGroupEntry { binding: 5, resource: wgpu::BindingResource::TextureView(&bv) },
            ];
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
                    pass.dispatch_workgroups((n / 16 / 8) as u32, (m / 32 / 4).max(1) as u32, 1);
                }
                queue.submit(Some(enc.finish()));
                device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            };
            run();
            let mut best = f64::MAX;
            let mut all = Vec::new();
            for _ in 0..if m >= 1024 { 6 } else { 40 } {
                let t = Instant::now();
                run();
                let e = t.elapsed().as_secs_f64();
                all.push(e);
                best = best.min(e);
            }
            all.sort_by(f64::total_cmp);
            println!(
                "{m}x{n}x{k} tex={texflag}: best {:.3} ms med {:.3} ms, {:.2} GFLOP/s",
                best * 1e3,
                all[all.len() / 2] * 1e3,
                2.0 * (m * n * k) as f64 / best / 1e9
            );
        }
    }
}
