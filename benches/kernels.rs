//! Criterion benchmarks of the kernels: matmul (GFLOP/s), an activation and a reduction (GB/s).
//! `cargo bench --bench kernels`. The same figures, as a table: `hydra bench`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hydra::cpu::Rng;
use hydra::kernels::{self, Activation, MatmulSpec};
use hydra::Context;

fn context() -> std::sync::Arc<Context> {
    match Context::new() {
        Ok(c) => c,
        Err(e) => panic!("benchmarks need an adapter: {e}"),
    }
}

fn matmul(c: &mut Criterion) {
    let ctx = context();
    let mut g = c.benchmark_group(format!("matmul [{}]", ctx.adapter().name));
    g.sample_size(10);
    for n in [128usize, 256, 512, 1024] {
        let mut rng = Rng::new(1);
        let a = ctx.upload(&rng.vec_f32(n * n, -1.0, 1.0), &[n, n]).unwrap();
        let b = ctx.upload(&rng.vec_f32(n * n, -1.0, 1.0), &[n, n]).unwrap();
        let out = ctx.empty(&[n, n]).unwrap();
        let d = kernels::matmul(&ctx, &a, &b, None, &out, &MatmulSpec::default()).unwrap();
        // Throughput in "elements" = floating-point operations, so criterion prints Gelem/s = GFLOP/s.
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_function(format!("{n}x{n}x{n}"), |bench| {
            bench.iter(|| {
                ctx.run(&[&d]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    g.finish();
}

fn activation_and_reduction(c: &mut Criterion) {
    let ctx = context();
    let mut g = c.benchmark_group(format!("memory-bound [{}]", ctx.adapter().name));
    g.sample_size(20);
    let n = 1 << 22;
    let x = ctx.upload(&Rng::new(2).vec_f32(n, -1.0, 1.0), &[n]).unwrap();
    let y = ctx.empty(&[n]).unwrap();
    let relu = kernels::act_forward(&ctx, Activation::Relu, &x, &y).unwrap();
    g.throughput(Throughput::Bytes(8 * n as u64));
    g.bench_function("relu 4M", |bench| {
        bench.iter(|| {
            ctx.run(&[&relu]).unwrap();
            ctx.sync().unwrap();
        })
    });
    let m = x.reshape(&[4096, 1024]).unwrap();
    let out = ctx.empty(&[1024]).unwrap();
    let cs = kernels::col_sum(&ctx, &m, &out, false).unwrap();
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.bench_function("col_sum 4096x1024", |bench| {
        bench.iter(|| {
            ctx.run(&[&cs]).unwrap();
            ctx.sync().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, matmul, activation_and_reduction);
criterion_main!(benches);
