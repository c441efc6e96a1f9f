//! Kernel benchmarks shared by `hydra bench` and the criterion benches: each runs a kernel
//! on the GPU with a device sync around it and reports the median time.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::MatmulVariant;
use crate::gpu::{Context, Dispatch};
use crate::ir::Activation;
use crate::kernels::{self, MatmulSpec};
use crate::rng::Rng;

mod architectures;
use architectures::bench_categorical_kernels;
pub use architectures::bench_grouped;

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
    /// "gpu" (timestamp queries) or "wall" (wall clock around a device sync).
    pub timer: &'static str,
    /// The adapter's name.
    pub adapter: String,
}

/// Median milliseconds of `dispatches` and the timer used: GPU timestamps (summed over the
/// dispatches) where the adapter has them and no dispatch refreshes texture operands, else
/// wall clock around run + sync; after one
/// warm-up run, repeated until `budget_s` seconds or `max_reps` runs (at least 3).
pub fn time_kernels(
    ctx: &Context,
    dispatches: &[&Dispatch],
    budget_s: f64,
    max_reps: usize,
) -> Result<(f64, &'static str)> {
    // Timestamps bracket compute passes, so they would leave out the copies that refresh
    // texture operands: such dispatches are timed by the wall clock.
    let copies = dispatches.iter().any(|d| d.texture_operands() > 0);
    if ctx.adapter().timestamps && !copies && !wall_clock_asked() {
        ctx.profile(dispatches)?;
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < 3 || (times.len() < max_reps && start.elapsed().as_secs_f64() < budget_s) {
            match ctx.profile(dispatches)? {
                Some(t) => times.push(t.iter().sum::<f64>()),
                None => break,
            }
        }
        if !times.is_empty() {
            return Ok((median(&mut times), "gpu"));
        }
    }
    Ok((time_dispatches(ctx, dispatches, budget_s, max_reps)?, "wall"))
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
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 50)?;
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
    dm.insert("textures".into(), d.texture_operands().into());
    Ok(BenchRecord {
        bench: "matmul".into(),
        dims: dm,
        ms,
        gflops: Some(2.0 * (m * n * k) as f64 / (ms * 1e6)),
        gbps: None,
        timer,
        adapter: ctx.adapter().name.clone(),
    })
}

/// ReLU forward over n values (reads and writes 4 bytes each).
pub fn bench_activation(ctx: &Context, n: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(2).vec_f32(n, -1.0, 1.0), &[n])?;
    let y = ctx.empty(&[n])?;
    let d = kernels::act_forward(ctx, Activation::Relu, &x, &y)?;
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "act_forward".into(),
        dims: dims(&[("n", n)]),
        ms,
        gflops: None,
        gbps: Some(8.0 * n as f64 / (ms * 1e6)),
        timer,
        adapter: ctx.adapter().name.clone(),
    })
}

/// Column sums of a rows×cols matrix (bias gradients; reads 4 bytes per value).
pub fn bench_col_sum(ctx: &Context, rows: usize, cols: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(3).vec_f32(rows * cols, -1.0, 1.0), &[rows, cols])?;
    let out = ctx.empty(&[cols])?;
    let d = kernels::col_sum(ctx, &x, &out, false)?;
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "col_sum".into(),
        dims: dims(&[("rows", rows), ("cols", cols)]),
        ms,
        gflops: None,
        gbps: Some(4.0 * (rows * cols) as f64 / (ms * 1e6)),
        timer,
        adapter: ctx.adapter().name.clone(),
    })
}

/// Sum of n values in one workgroup (reads 4 bytes per value).
pub fn bench_sum(ctx: &Context, n: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.upload(&Rng::new(4).vec_f32(n, -1.0, 1.0), &[n])?;
    let out = ctx.empty(&[1])?;
    let d = kernels::sum(ctx, &x, &out, false)?;
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 100)?;
    Ok(BenchRecord {
        bench: "sum".into(),
        dims: dims(&[("n", n)]),
        ms,
        gflops: None,
        gbps: Some(4.0 * n as f64 / (ms * 1e6)),
        timer,
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

/// A random batch for a model's step, in `GpuGraph::feed` order: the inputs in [-1, 1], then
/// per task its labels (a class, or a value in [-1, 1]) and a mask of ones.
pub fn peer_inputs(spec: &crate::nn::ModelSpec, batch: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    let mut inputs = vec![rng.vec_f32(batch * spec.inputs, -1.0, 1.0)];
    for t in &spec.tasks {
        let k = t.loss.outputs();
        inputs
            .push((0..batch).map(|_| if k > 1 { rng.below(k) as f32 } else { rng.range(-1.0, 1.0) as f32 }).collect());
        inputs.push(vec![1.0; batch]);
    }
    inputs
}

/// The peer model's three tasks on an MMoE of `experts` experts of hidden sizes `expert`
/// (the architecture issue's benchmark: 8 experts of [64, 32]).
pub fn peer_mmoe(inputs: usize, experts: usize, expert: &[usize]) -> crate::nn::ModelSpec {
    let mut s = peer_model(inputs, &[]);
    s.arch = crate::nn::Arch::Mmoe;
    s.experts = experts;
    s.expert = expert.to_vec();
    s
}

/// The peer model of ../shared/PEERS.md: `inputs → trunk (ReLU) → heads 1 (MSE), 1 (MSE),
/// 10 (cross-entropy)`.
pub fn peer_model(inputs: usize, trunk: &[usize]) -> crate::nn::ModelSpec {
    use crate::ir::LossKind;
    use crate::nn::{ModelSpec, TaskSpec};
    let task = |name: &str, loss| TaskSpec { name: name.into(), loss };
    let tasks =
        vec![task("a", LossKind::Mse), task("b", LossKind::Mse), task("c", LossKind::CrossEntropy { classes: 10 })];
    ModelSpec::hard_sharing(inputs, trunk, &[], Activation::Relu, tasks)
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
    use crate::nn::MultiTaskModel;
    use crate::optim::Optimizer;
    use crate::runtime::GpuGraph;
    // The peak of this configuration alone (a scaling run measures several in one context).
    ctx.reset_memory_peak();
    let model = MultiTaskModel::build(spec, batch)?;
    let init = model.graph.init_params(0)?;
    let mut gg = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(Optimizer::adam(1e-3)))?;
    // The steady state of a long run: the step's matmuls in the larger blocks a run of
    // `train::UPGRADE_AFTER_STEPS` or more switches to (compiled here before timing).
    gg.start_upgrades();
    gg.wait_upgrades();
    let inputs = peer_inputs(spec, batch, 5);
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
    dm.insert("arch".into(), serde_json::Value::from(spec.arch.name()));
    if spec.arch.has_experts() {
        dm.insert("experts".into(), serde_json::Value::from(spec.experts.max(spec.shared_experts)));
        dm.insert("expert".into(), serde_json::Value::from(spec.expert.clone()));
    }
    dm.insert("peak_mib".into(), serde_json::Value::from((peak0 as f64 / (1 << 20) as f64 * 100.0).round() / 100.0));
    Ok(BenchRecord {
        bench: "train_step".into(),
        dims: dm,
        ms,
        gflops: None,
        gbps: None,
        timer: "wall",
        adapter: ctx.adapter().name.clone(),
    })
}

/// One kernel's record from a measured time.
fn record(
    ctx: &Context,
    bench: &str,
    d: serde_json::Map<String, serde_json::Value>,
    t: (f64, &'static str),
    bytes: f64,
) -> BenchRecord {
    BenchRecord {
        bench: bench.into(),
        dims: d,
        ms: t.0,
        gflops: None,
        gbps: Some(bytes / (t.0 * 1e6)),
        timer: t.1,
        adapter: ctx.adapter().name.clone(),
    }
}

/// The rest of the kernel families: an activation's backward, the norm and dot reductions,
/// the fused losses, the optimizer over a flat buffer, and the Gram matrix of per-task gradients.
pub fn bench_other_kernels(ctx: &Context, budget_s: f64) -> Result<Vec<BenchRecord>> {
    use crate::ir::LossKind;
    let mut out = Vec::new();
    let mut rng = Rng::new(6);
    let n = 1 << 20;
    let x = ctx.upload(&rng.vec_f32(n, -1.0, 1.0), &[n])?;
    let y = ctx.upload(&rng.vec_f32(n, -1.0, 1.0), &[n])?;
    let z = ctx.empty(&[n])?;
    let one = ctx.empty(&[1])?;
    let d = kernels::act_backward(ctx, Activation::Gelu, &x, &y, false, &z, false)?;
    out.push(record(ctx, "act_backward", dims(&[("n", n)]), time_kernels(ctx, &[&d], budget_s, 100)?, 12.0 * n as f64));
    let d = kernels::sq_norm(ctx, &x, &one, false)?;
    out.push(record(ctx, "sq_norm", dims(&[("n", n)]), time_kernels(ctx, &[&d], budget_s, 100)?, 4.0 * n as f64));
    let d = kernels::dot(ctx, &x, &y, &one, false)?;
    out.push(record(ctx, "dot", dims(&[("n", n)]), time_kernels(ctx, &[&d], budget_s, 100)?, 8.0 * n as f64));
    for (kind, name) in
        [(LossKind::Mse, "mse"), (LossKind::Bce, "bce"), (LossKind::CrossEntropy { classes: 10 }, "cross_entropy")]
    {
        let b = 4096;
        let c = kind.outputs();
        let logits = ctx.upload(&rng.vec_f32(b * c, -2.0, 2.0), &[b, c])?;
        let labels = ctx.upload(&(0..b).map(|i| (i % c.max(2)) as f32 % 2.0).collect::<Vec<_>>(), &[b])?;
        let mask = ctx.upload(&vec![1.0; b], &[b])?;
        let w = ctx.upload(&[1.0], &[1])?;
        let (grad, losses) = (ctx.empty(&[b, c])?, ctx.empty(&[1])?);
        let d = kernels::task_loss(ctx, kind, &logits, &labels, &mask, &w, 0, &grad, &losses)?;
        let mut dm = dims(&[("batch", b), ("outputs", c)]);
        dm.insert("loss".into(), name.into());
        out.push(record(ctx, "task_loss", dm, time_kernels(ctx, &[&d], budget_s, 100)?, 12.0 * (b * c) as f64));
    }
    // Gates and mixtures of experts: 4096 rows, 8 experts of 32.
    let (rows, e, dd) = (4096, 8, 32);
    let logits = ctx.upload(&rng.vec_f32(rows * e, -2.0, 2.0), &[rows, e])?;
    let gate = ctx.empty(&[rows, e])?;
    let blocks = ctx.upload(&rng.vec_f32(rows * e * dd, -1.0, 1.0), &[rows, e * dd])?;
    let (mixed, dmix) = (ctx.empty(&[rows, dd])?, ctx.upload(&rng.vec_f32(rows * dd, -1.0, 1.0), &[rows, dd])?);
    let (dgate, dblocks) = (ctx.empty(&[rows, e])?, ctx.empty(&[rows, e * dd])?);
    let dm = || dims(&[("rows", rows), ("experts", e), ("width", dd)]);
    let d = kernels::softmax_rows(ctx, &logits, &gate)?;
    out.push(record(ctx, "softmax_rows", dm(), time_kernels(ctx, &[&d], budget_s, 100)?, 8.0 * (rows * e) as f64));
    let d = kernels::softmax_rows_backward(ctx, &gate, &logits, &dgate, false)?;
    out.push(record(
        ctx,
        "softmax_rows_backward",
        dm(),
        time_kernels(ctx, &[&d], budget_s, 100)?,
        12.0 * (rows * e) as f64,
    ));
    let mix_bytes = 4.0 * (rows * e * dd + rows * e + rows * dd) as f64;
    let d = kernels::mix(ctx, &gate, &blocks, &mixed)?;
    out.push(record(ctx, "mix", dm(), time_kernels(ctx, &[&d], budget_s, 100)?, mix_bytes));
    let d = kernels::mix_grad_gate(ctx, &dmix, &blocks, &dgate, false)?;
    out.push(record(ctx, "mix_grad_gate", dm(), time_kernels(ctx, &[&d], budget_s, 100)?, mix_bytes));
    let d = kernels::mix_grad_x(ctx, &dmix, &gate, &dblocks, false)?;
    out.push(record(ctx, "mix_grad_x", dm(), time_kernels(ctx, &[&d], budget_s, 100)?, mix_bytes));
    out.extend(bench_categorical_kernels(ctx, &mut rng, budget_s)?);
    let p = 1 << 20;
    let (pt, gt, mt, vt) =
        (ctx.zeros(&[p])?, ctx.upload(&rng.vec_f32(p, -1.0, 1.0), &[p])?, ctx.zeros(&[p])?, ctx.zeros(&[p])?);
    let opt = crate::optim::Optimizer::adam(1e-3);
    let d = kernels::adam(ctx, &pt, &gt, &mt, &vt, (0.9, 0.999), false, opt.uniform(1), None)?;
    out.push(record(ctx, "adam", dims(&[("params", p)]), time_kernels(ctx, &[&d], budget_s, 100)?, 28.0 * p as f64));
    // Splitting a product of several heads into one head's output (with its bias): 10 of 12
    // columns of 4096 rows, read and written once each, the bias read per value.
    let (rows, width, cols) = (4096, 12, 10);
    let all = ctx.upload(&rng.vec_f32(rows * width, -1.0, 1.0), &[rows, width])?;
    let (head, bias) = (ctx.empty(&[rows, cols])?, ctx.upload(&rng.vec_f32(cols, -1.0, 1.0), &[cols])?);
    let d = kernels::copy_columns(ctx, &all, 2, &head, 0, cols, Some(&bias))?;
    out.push(record(
        ctx,
        "copy_columns",
        dims(&[("rows", rows), ("of", width), ("columns", cols)]),
        time_kernels(ctx, &[&d], budget_s, 100)?,
        12.0 * (rows * cols) as f64,
    ));
    // A backward product taking relu's gradient in its epilogue, 256³.
    let s = 256;
    let (a, b) =
        (ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s])?, ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s])?);
    let (saved, c) = (ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s])?, ctx.empty(&[s, s])?);
    let grad = kernels::ActGrad { act: Activation::Relu, saved: &saved, from_output: true };
    let d = kernels::matmul_act_grad(ctx, &a, &b, &c, &MatmulSpec::default(), grad)?;
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 50)?;
    out.push(BenchRecord {
        bench: "matmul_act_grad".into(),
        dims: dims(&[("m", s), ("n", s), ("k", s)]),
        ms,
        gflops: Some(2.0 * (s * s * s) as f64 / (ms * 1e6)),
        gbps: None,
        timer,
        adapter: ctx.adapter().name.clone(),
    });
    let (t, len) = (3, 100_000);
    let g = ctx.upload(&rng.vec_f32(t * len, -1.0, 1.0), &[t * len])?;
    let m = ctx.empty(&[t * t])?;
    let d = kernels::gram(ctx, &g, t, len, len, &m)?;
    out.push(record(
        ctx,
        "gram",
        dims(&[("tasks", t), ("length", len)]),
        time_kernels(ctx, &[&d], budget_s, 100)?,
        4.0 * (t * len) as f64 * t as f64,
    ));
    Ok(out)
}

/// Whether `HYDRA_WALL_CLOCK` asks for wall-clock timing: `1` (or any value but `0` and
/// the empty string).
fn wall_clock_asked() -> bool {
    std::env::var("HYDRA_WALL_CLOCK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Where the matmul autotune result is cached on disk: `$HYDRA_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hydra`, else `~/.cache/hydra`.
pub fn tune_cache_path() -> Option<std::path::PathBuf> {
    if let Ok(d) = std::env::var("HYDRA_CACHE_DIR") {
        return Some(std::path::PathBuf::from(d).join("matmul-tune.json"));
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var("HOME").ok().map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("hydra").join("matmul-tune.json"))
}

/// The cache key: the adapter, its driver, and a fingerprint of the matmul source, so that a
/// changed kernel is tuned afresh rather than judged by its predecessor's timings.
fn adapter_key(ctx: &Context) -> String {
    let a = ctx.adapter();
    // FNV-1a over the kernel source.
    let source = crate::shaders::Shader::Matmul.source();
    let hash = source.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{} | {} | {} | matmul {hash:016x}", a.name, a.backend, a.driver_info)
}

/// Autotunes the matmul form for this adapter ([`autotune_matmul`] at n = 256), sets it on the
/// context and stores it in the on-disk cache (best effort). Returns the timings.
pub fn tune_and_cache(ctx: &Context, budget_s: f64) -> Result<Vec<(MatmulVariant, f64)>> {
    tune_and_cache_at(ctx, budget_s, tune_cache_path().as_deref())
}

/// [`tune_and_cache`] with the cache file given (None: no cache), for callers that must not
/// read the environment.
pub fn tune_and_cache_at(
    ctx: &Context,
    budget_s: f64,
    cache: Option<&std::path::Path>,
) -> Result<Vec<(MatmulVariant, f64)>> {
    let results = autotune_matmul(ctx, 256, budget_s)?;
    if let Some((best, _)) = results.first() {
        ctx.set_matmul_variant(*best);
        if let Some(path) = cache {
            let mut all: std::collections::BTreeMap<String, String> =
                std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
            all.insert(adapter_key(ctx), format!("{best:?}"));
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(text) = serde_json::to_string_pretty(&all) {
                let tmp = path.with_extension("json.tmp");
                let _ = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
            }
        }
    }
    Ok(results)
}

/// Applies a cached autotune result for this adapter, if there is one; returns it.
pub fn apply_cached_tune(ctx: &Context) -> Option<MatmulVariant> {
    apply_cached_tune_from(ctx, &tune_cache_path()?)
}

/// [`apply_cached_tune`] from the cache file `path`.
pub fn apply_cached_tune_from(ctx: &Context, path: &std::path::Path) -> Option<MatmulVariant> {
    let all: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let v = all.get(&adapter_key(ctx))?;
    let found = MATMUL_CANDIDATES.iter().find(|c| format!("{c:?}") == *v).copied()?;
    ctx.set_matmul_variant(found);
    Some(found)
}

/// The fixed cost of one dispatch: `count` one-element kernels recorded into one submit,
/// wall clock per dispatch (the submit and sync shared among them).
pub fn bench_dispatch_overhead(ctx: &Context, count: usize, budget_s: f64) -> Result<BenchRecord> {
    let x = ctx.zeros(&[1])?;
    let ds: Vec<Dispatch> = (0..count).map(|i| kernels::fill(ctx, &x, i as f32)).collect::<Result<_>>()?;
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let ms = time_dispatches(ctx, &refs, budget_s, 50)? / count as f64;
    Ok(BenchRecord {
        bench: "dispatch".into(),
        dims: dims(&[("dispatches_per_submit", count)]),
        ms,
        gflops: None,
        gbps: None,
        timer: "wall",
        adapter: ctx.adapter().name.clone(),
    })
}
