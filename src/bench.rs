//! Kernel benchmarks shared by `hydra bench` and the criterion benches: each runs a kernel
//! on the GPU with a device sync around it and reports the median time.

use std::time::Instant;

use crate::cpu::Rng;
use crate::error::Result;
use crate::gpu::{Context, Dispatch};
use crate::kernels::{self, Activation, MatmulSpec, MatmulVariant};

/// One measured figure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRecord {
    /// What was measured: "matmul", "act_forward", "sum", …
    pub bench: String,
    /// Shape or size parameters, in the order they are printed.
    #[serde(flatten)]
    pub dims: serde_json::Map<String, serde_json::Value>,
    /// Median milliseconds per run.
    pub ms: f64,
    /// Arithmetic rate, when the kernel is compute-bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
    /// Memory rate, when the kernel is bandwidth-bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// The adapter's name.
    pub adapter: String,
}

/// Median wall-clock milliseconds of `dispatches` run and synced, after one warm-up run,
/// repeated until `budget_s` seconds or `max_reps` runs (at least 3).
pub fn time_dispatches(ctx: &Context, dispatches: &[&Dispatch], budget_s: f64, max_reps: usize) -> Result<f64> {
    ctx.run(dispatches)?;
    ctx.sync()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (times.len() < max_reps && start.elapsed().as_secs_f64() < budget_s) {
        let t = Instant::now();
        ctx.run(dispatches)?;
        ctx.sync()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&mut times))
}

/// The median of a non-empty list (sorts it).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn dims(pairs: &[(&str, usize)]) -> serde_json::Map<String, serde_json::Value> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v))).collect()
}

/// `C = A·B` (or with transposes) of m×k by k×n, with the given variant (None: the adapter's).
pub fn bench_matmul(
    ctx: &Context,
    m: usize,
    n: usize,
    k: usize,
    spec: MatmulSpec,
    budget_s: f64,
) -> Result<BenchRecord> {
    let mut rng = Rng::new(1);
    let a = ctx.upload(&rng.vec_f32(m * k, -1.0, 1.0), &if spec.trans_a { [k, m] } else { [m, k] })?;
    let b = ctx.upload(&rng.vec_f32(k * n, -1.0, 1.0), &if spec.trans_b { [n, k] } else { [k, n] })?;
    let c = ctx.empty(&[m, n])?;
    let d = kernels::matmul(ctx, &a, &b, None, &c, &spec)?;
    let ms = time_dispatches(ctx, &[&d], budget_s, 50)?;
    let mut dm = dims(&[("m", m), ("n", n), ("k", k)]);
    let v = spec.variant.unwrap_or_else(|| ctx.matmul_variant());
    let op = match (spec.trans_a, spec.trans_b) {
        (false, false) => "nn",
        (true, false) => "tn",
        (false, true) => "nt",
        (true, true) => "tt",
    };
    dm.insert("op".into(), op.into());
    dm.insert("variant".into(), format!("{v:?}").into());
    Ok(BenchRecord {
        bench: "matmul".into(),
        dims: dm,
        ms,
        gflops: Some(2.0 * (m * n * k) as f64 / (ms * 1e6)),
        gbps: None,
        adapter: ctx.adapter().name.clone(),
    })
}

/// ReLU forward over n values (reads and writes 4 bytes each).
pub fn bench_activation(ctx: &Context, n: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(2).vec_f32(n, -1.0, 1.0), &[n])?;
    let y = ctx.empty(&[n])?;
    let d = kernels::act_forward(ctx, Activation::Relu, &x, &y)?;
    let ms = time_dispatches(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "act_forward".into(),
        dims: dims(&[("n", n)]),
        ms,
        gflops: None,
        gbps: Some(8.0 * n as f64 / (ms * 1e6)),
        adapter: ctx.adapter().name.clone(),
    })
}

/// Column sums of a rows×cols matrix (bias gradients; reads 4 bytes per value).
pub fn bench_col_sum(ctx: &Context, rows: usize, cols: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(3).vec_f32(rows * cols, -1.0, 1.0), &[rows, cols])?;
    let out = ctx.empty(&[cols])?;
    let d = kernels::col_sum(ctx, &x, &out, false)?;
    let ms = time_dispatches(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "col_sum".into(),
        dims: dims(&[("rows", rows), ("cols", cols)]),
        ms,
        gflops: None,
        gbps: Some(4.0 * (rows * cols) as f64 / (ms * 1e6)),
        adapter: ctx.adapter().name.clone(),
    })
}

/// Sum of n values in one workgroup (reads 4 bytes per value).
pub fn bench_sum(ctx: &Context, n: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(4).vec_f32(n, -1.0, 1.0), &[n])?;
    let out = ctx.empty(&[1])?;
    let d = kernels::sum(ctx, &x, &out, false)?;
    let ms = time_dispatches(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "sum".into(),
        dims: dims(&[("n", n)]),
        ms,
        gflops: None,
        gbps: Some(4.0 * n as f64 / (ms * 1e6)),
        adapter: ctx.adapter().name.clone(),
    })
}

/// Matmul variants tried by [`autotune_matmul`].
pub const MATMUL_CANDIDATES: &[MatmulVariant] = &[
    MatmulVariant::Registers { wg_x: 8, wg_y: 8 },
    MatmulVariant::Registers { wg_x: 16, wg_y: 4 },
    MatmulVariant::Registers { wg_x: 4, wg_y: 16 },
    MatmulVariant::Registers { wg_x: 16, wg_y: 16 },
    MatmulVariant::Tiled { wg_x: 8, wg_y: 8 },
    MatmulVariant::Tiled { wg_x: 16, wg_y: 16 },
];

/// Times every candidate of [`MATMUL_CANDIDATES`] on an n×n×n product and returns them
/// fastest first. Results never depend on the choice: every variant computes the same sums.
pub fn autotune_matmul(ctx: &Context, n: usize, budget_s: f64) -> Result<Vec<(MatmulVariant, f64)>> {
    let mut out = Vec::new();
    for &v in MATMUL_CANDIDATES {
        let spec = MatmulSpec { variant: Some(v), ..Default::default() };
        let r = bench_matmul(ctx, n, n, n, spec, budget_s)?;
        out.push((v, r.gflops.unwrap_or(0.0)));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out)
}

/// The peer model of ../shared/PEERS.md: `inputs → trunk (ReLU) → heads 1 (MSE), 1 (MSE),
/// 10 (cross-entropy)`.
pub fn peer_model(inputs: usize, trunk: &[usize]) -> crate::nn::ModelSpec {
    use crate::kernels::LossKind;
    use crate::nn::{ModelSpec, TaskSpec};
    let task = |name: &str, loss| TaskSpec { name: name.into(), loss };
    ModelSpec {
        inputs,
        trunk: trunk.to_vec(),
        head: vec![],
        activation: Activation::Relu,
        tasks: vec![
            task("a", LossKind::Mse),
            task("b", LossKind::Mse),
            task("c", LossKind::CrossEntropy { classes: 10 }),
        ],
    }
}

/// One training step (upload a batch, forward, backward, Adam; one submit) of `spec` at
/// `batch`, with a device sync before the clock stops: 10 warm-up steps, then the median of
/// up to `reps` steps within `budget_s`.
pub fn bench_train_step(
    ctx: &std::sync::Arc<Context>,
    spec: &crate::nn::ModelSpec,
    batch: usize,
    reps: usize,
    budget_s: f64,
) -> Result<BenchRecord> {
    use crate::autograd::GpuGraph;
    use crate::nn::MultiTaskModel;
    use crate::optim::Optimizer;
    let model = MultiTaskModel::build(spec, batch)?;
    let init = model.graph.init_params(0);
    let mut gg = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(Optimizer::adam(1e-3)))?;
    let mut rng = Rng::new(5);
    let mut inputs: Vec<Vec<f32>> = vec![rng.vec_f32(batch * spec.inputs, -1.0, 1.0)];
    for t in &spec.tasks {
        let k = t.loss.outputs();
        inputs
            .push((0..batch).map(|_| if k > 1 { rng.below(k) as f32 } else { rng.range(-1.0, 1.0) as f32 }).collect());
        inputs.push(vec![1.0; batch]);
    }
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    for _ in 0..10 {
        gg.feed(&refs)?;
        gg.step()?;
    }
    ctx.sync()?;
    let (_, peak0) = ctx.memory();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (times.len() < reps && start.elapsed().as_secs_f64() < budget_s) {
        let t = Instant::now();
        gg.feed(&refs)?;
        gg.step()?;
        ctx.sync()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ms = median(&mut times);
    let mut dm = dims(&[("batch", batch), ("inputs", spec.inputs), ("dispatches", gg.dispatches_per_step())]);
    dm.insert("trunk".into(), serde_json::Value::from(spec.trunk.clone()));
    dm.insert("peak_mib".into(), serde_json::Value::from((peak0 as f64 / (1 << 20) as f64 * 100.0).round() / 100.0));
    Ok(BenchRecord {
        bench: "train_step".into(),
        dims: dm,
        ms,
        gflops: None,
        gbps: None,
        adapter: ctx.adapter().name.clone(),
    })
}
