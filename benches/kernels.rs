//! Criterion benchmarks of the kernels: matmul (GFLOP/s), an activation and a reduction (GB/s).
//! `cargo bench --bench kernels`. The same figures, as a table: `hydra bench`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hydra::cpu::Rng;
use hydra::kernels::{self, Activation, GroupedLayout, MatmulSpec};
use hydra::Context;

fn context() -> std::sync::Arc<Context> {
    // As the `hydra` command does (criterion runs the groups one after another on this thread).
    hydra::gpu::software::prefer_software_threads();
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

/// Gates and mixtures of experts: a row softmax over 8 experts and the mixture of 8 blocks of
/// 32 (forward and both gradients), 4096 rows.
fn mixture(c: &mut Criterion) {
    let ctx = context();
    let mut g = c.benchmark_group(format!("mixture [{}]", ctx.adapter().name));
    g.sample_size(20);
    let (rows, e, d) = (4096, 8, 32);
    let mut rng = Rng::new(4);
    let logits = ctx.upload(&rng.vec_f32(rows * e, -2.0, 2.0), &[rows, e]).unwrap();
    let gate = ctx.empty(&[rows, e]).unwrap();
    let blocks = ctx.upload(&rng.vec_f32(rows * e * d, -1.0, 1.0), &[rows, e * d]).unwrap();
    let (y, dy) = (ctx.empty(&[rows, d]).unwrap(), ctx.upload(&rng.vec_f32(rows * d, -1.0, 1.0), &[rows, d]).unwrap());
    let (dg, dx) = (ctx.empty(&[rows, e]).unwrap(), ctx.empty(&[rows, e * d]).unwrap());
    let runs = [
        ("softmax_rows 4096x8", kernels::softmax_rows(&ctx, &logits, &gate).unwrap()),
        ("mix 4096x8x32", kernels::mix(&ctx, &gate, &blocks, &y).unwrap()),
        ("mix_grad_gate 4096x8x32", kernels::mix_grad_gate(&ctx, &dy, &blocks, &dg, false).unwrap()),
        ("mix_grad_x 4096x8x32", kernels::mix_grad_x(&ctx, &dy, &gate, &dx, false).unwrap()),
    ];
    g.throughput(Throughput::Bytes(4 * (rows * e * d) as u64));
    for (name, k) in &runs {
        g.bench_function(*name, |bench| {
            bench.iter(|| {
                ctx.run(&[k]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    // The experts' deeper layer as one grouped product: 8 experts 64 → 32, batch 256, forward
    // and its two gradients.
    let (b, k, n) = (256, 64, 32);
    let s = |m, n, k| kernels::MatmulShape { m, n, k };
    let x = ctx.upload(&rng.vec_f32(b * e * k, -1.0, 1.0), &[b * e * k]).unwrap();
    let w = ctx.upload(&rng.vec_f32(e * n * k, -1.0, 1.0), &[e * n * k]).unwrap();
    let dz = ctx.upload(&rng.vec_f32(b * e * n, -1.0, 1.0), &[b * e * n]).unwrap();
    let (y, dx, dw) =
        (ctx.empty(&[b * e * n]).unwrap(), ctx.empty(&[b * e * k]).unwrap(), ctx.empty(&[e * n * k]).unwrap());
    let id = Activation::Identity;
    let grouped = [
        (
            "grouped forward 8x256x32x64",
            kernels::grouped_matmul(&ctx, &x, &w, None, &y, s(b, n, k), e, GroupedLayout::FORWARD, id, false).unwrap(),
        ),
        (
            "grouped grad_input 8x256x64x32",
            kernels::grouped_matmul(&ctx, &dz, &w, None, &dx, s(b, k, n), e, GroupedLayout::GRAD_INPUT, id, false)
                .unwrap(),
        ),
        (
            "grouped grad_weight 8x32x64x256",
            kernels::grouped_matmul(&ctx, &dz, &x, None, &dw, s(n, k, b), e, GroupedLayout::GRAD_WEIGHT, id, false)
                .unwrap(),
        ),
    ];
    g.throughput(Throughput::Elements(2 * (e * b * n * k) as u64));
    for (name, k) in &grouped {
        g.bench_function(*name, |bench| {
            bench.iter(|| {
                ctx.run(&[k]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    g.finish();
}

/// One whole training step of the PEERS.md model (64→256→256 trunk, heads 1/1/10, batch 256,
/// Adam): batch upload, forward, backward and update in one submit, then a device sync.
fn train_step(c: &mut Criterion) {
    use hydra::nn::MultiTaskModel;
    use hydra::GpuGraph;
    let ctx = context();
    let spec = hydra::bench::peer_model(64, &[256, 256]);
    let batch = 256;
    let model = MultiTaskModel::build(&spec, batch).unwrap();
    let init = model.graph.init_params(0).unwrap();
    let mut gg = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(hydra::Optimizer::adam(1e-3))).unwrap();
    // The steady state of a long run, as `hydra bench` measures it.
    gg.start_upgrades();
    gg.wait_upgrades();
    let inputs = hydra::bench::peer_inputs(&spec, batch, 5);
    let mut g = c.benchmark_group(format!("train_step [{}]", ctx.adapter().name));
    g.sample_size(20);
    g.bench_function("peer model, batch 256, adam", |bench| {
        bench.iter(|| {
            let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            gg.feed(&refs).unwrap();
            gg.step().unwrap();
            ctx.sync().unwrap();
        })
    });
    g.finish();
}

/// The other kernel families: fused losses, the optimizer over a flat buffer, the Gram matrix
/// of per-task gradients, an activation's backward, and the matmul transposes at 256.
fn losses_optimizer_gram(c: &mut Criterion) {
    use hydra::LossKind;
    let ctx = context();
    let mut g = c.benchmark_group(format!("kernels [{}]", ctx.adapter().name));
    g.sample_size(20);
    let mut rng = Rng::new(3);
    let b = 4096;
    for (kind, name) in [(LossKind::Mse, "mse"), (LossKind::CrossEntropy { classes: 10 }, "cross_entropy")] {
        let k = kind.outputs();
        let logits = ctx.upload(&rng.vec_f32(b * k, -2.0, 2.0), &[b, k]).unwrap();
        let labels = ctx.upload(&(0..b).map(|i| (i % k) as f32).collect::<Vec<_>>(), &[b]).unwrap();
        let mask = ctx.upload(&vec![1.0; b], &[b]).unwrap();
        let w = ctx.upload(&[1.0], &[1]).unwrap();
        let (grad, losses) = (ctx.empty(&[b, k]).unwrap(), ctx.empty(&[1]).unwrap());
        let d = kernels::task_loss(&ctx, kind, &logits, &labels, &mask, &w, 0, &grad, &losses).unwrap();
        g.throughput(Throughput::Bytes(12 * (b * k) as u64));
        g.bench_function(format!("task_loss {name} {b}x{k}"), |bench| {
            bench.iter(|| {
                ctx.run(&[&d]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    let p = 1 << 20;
    let (pt, gt, mt, vt) = (
        ctx.zeros(&[p]).unwrap(),
        ctx.upload(&rng.vec_f32(p, -1.0, 1.0), &[p]).unwrap(),
        ctx.zeros(&[p]).unwrap(),
        ctx.zeros(&[p]).unwrap(),
    );
    let d = kernels::adam(&ctx, &pt, &gt, &mt, &vt, (0.9, 0.999), false, [1e-3, 1.0, 0.0, 1e-8], None).unwrap();
    g.throughput(Throughput::Bytes(28 * p as u64));
    g.bench_function("adam 1M params", |bench| {
        bench.iter(|| {
            ctx.run(&[&d]).unwrap();
            ctx.sync().unwrap();
        })
    });
    let (t, len) = (3, 100_000);
    let gm = ctx.upload(&rng.vec_f32(t * len, -1.0, 1.0), &[t * len]).unwrap();
    let m = ctx.empty(&[t * t]).unwrap();
    let d = kernels::gram(&ctx, &gm, t, len, len, &m).unwrap();
    g.throughput(Throughput::Bytes(4 * (t * t * len) as u64));
    g.bench_function("gram 3x100k", |bench| {
        bench.iter(|| {
            ctx.run(&[&d]).unwrap();
            ctx.sync().unwrap();
        })
    });
    let n = 1 << 20;
    let (x, y, z) = (
        ctx.upload(&rng.vec_f32(n, -1.0, 1.0), &[n]).unwrap(),
        ctx.upload(&rng.vec_f32(n, -1.0, 1.0), &[n]).unwrap(),
        ctx.empty(&[n]).unwrap(),
    );
    let d = kernels::act_backward(&ctx, Activation::Gelu, &x, &y, false, &z, false).unwrap();
    g.throughput(Throughput::Bytes(12 * n as u64));
    g.bench_function("gelu backward 1M", |bench| {
        bench.iter(|| {
            ctx.run(&[&d]).unwrap();
            ctx.sync().unwrap();
        })
    });
    let (rows, width, cols) = (4096, 12, 10);
    let all = ctx.upload(&rng.vec_f32(rows * width, -1.0, 1.0), &[rows, width]).unwrap();
    let head = ctx.empty(&[rows, cols]).unwrap();
    let bias = ctx.upload(&rng.vec_f32(cols, -1.0, 1.0), &[cols]).unwrap();
    let d = kernels::copy_columns(&ctx, &all, 2, &head, 0, cols, Some(&bias)).unwrap();
    g.throughput(Throughput::Bytes(12 * (rows * cols) as u64));
    g.bench_function("copy_columns 4096 rows, 10 of 12 columns, bias", |bench| {
        bench.iter(|| {
            ctx.run(&[&d]).unwrap();
            ctx.sync().unwrap();
        })
    });
    let s = 256;
    let a = ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s]).unwrap();
    let bb = ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s]).unwrap();
    let out = ctx.empty(&[s, s]).unwrap();
    for (ta, tb) in [(false, true), (true, false), (true, true)] {
        let spec = MatmulSpec { trans_a: ta, trans_b: tb, ..Default::default() };
        let d = kernels::matmul(&ctx, &a, &bb, None, &out, &spec).unwrap();
        g.throughput(Throughput::Elements(2 * (s * s * s) as u64));
        g.bench_function(format!("matmul {s}^3 trans_a={ta} trans_b={tb}"), |bench| {
            bench.iter(|| {
                ctx.run(&[&d]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    // The long-run block (8x4 tiles) with its operands read through texture copies (the copies
    // included) and from storage buffers: what texture operands buy on this adapter.
    for textures in [true, false] {
        let spec = MatmulSpec { tiles: Some((8, 4)), textures: Some(textures), ..Default::default() };
        let d = kernels::matmul(&ctx, &a, &bb, None, &out, &spec).unwrap();
        g.throughput(Throughput::Elements(2 * (s * s * s) as u64));
        let from = if textures { "texture copies" } else { "storage buffers" };
        g.bench_function(format!("matmul {s}^3 in 32x16 blocks, operands from {from}"), |bench| {
            bench.iter(|| {
                ctx.run(&[&d]).unwrap();
                ctx.sync().unwrap();
            })
        });
    }
    // A backward product that takes relu's gradient in its epilogue (dz = (dy·W) ⊙ relu'(h)).
    let saved = ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s]).unwrap();
    let grad = kernels::ActGrad { act: Activation::Relu, saved: &saved, from_output: true };
    let d = kernels::matmul_act_grad(&ctx, &a, &bb, &out, &MatmulSpec::default(), grad).unwrap();
    g.throughput(Throughput::Elements(2 * (s * s * s) as u64));
    g.bench_function(format!("matmul {s}^3 then relu gradient"), |bench| {
        bench.iter(|| {
            ctx.run(&[&d]).unwrap();
            ctx.sync().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, matmul, activation_and_reduction, mixture, losses_optimizer_gram, train_step);
criterion_main!(benches);
