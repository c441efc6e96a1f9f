//! The `hydra` command: train, info and bench. A thin layer over the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hydra::bench::{self, BenchRecord};
use hydra::config::Config;
use hydra::cpu::{self, Rng};
use hydra::data::{Dataset, Table};
use hydra::kernels::{self, Activation, MatmulShape, MatmulSpec};
use hydra::train::{Evaluator, Scaling};
use hydra::{experiment, Context};

#[derive(Parser)]
#[command(name = "hydra", version, about = "Multi-task training on the GPU, in Rust and WGSL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a multi-task model from a config (default: the built-in energy example, with
    /// single-task baselines and the multi-task gain).
    Train {
        /// The TOML config (default: examples/energy.toml, compiled in).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also train one single-task model per task and report Δm% (on by default without --config).
        #[arg(long)]
        baselines: bool,
        /// Write the final metrics as JSON.
        #[arg(long)]
        metrics_json: Option<PathBuf>,
        /// Write one JSON line per evaluation.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Draw per-task training/validation curves and task weights as SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print nothing but the final table.
        #[arg(long, short)]
        quiet: bool,
        /// Start from this checkpoint's parameters (heads of new tasks start fresh).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Save the trained model here (safetensors, written atomically).
        #[arg(long)]
        save: Option<PathBuf>,
        /// With --save: also write the whole training state there every N steps.
        #[arg(long, requires = "save")]
        checkpoint_every: Option<u64>,
        /// Continue the run saved in this checkpoint exactly, to the end of the configured run.
        #[arg(long, conflicts_with = "init")]
        resume: Option<PathBuf>,
    },
    /// Evaluate a checkpoint on a split of the config's data.
    Eval {
        /// The TOML config whose data to use.
        #[arg(long)]
        config: PathBuf,
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// train, val or test.
        #[arg(long, default_value = "test")]
        split: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Predict every task for the rows of a CSV file (one output column per task).
    Predict {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// CSV with (at least) the feature columns the model was trained on.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the predictions.
        #[arg(long)]
        output: PathBuf,
    },
    /// Train the config once per weighting method (and the single-task baselines once) and
    /// print a Markdown table: per-task test metrics, Δm%, seconds per epoch.
    Compare {
        /// The TOML config (its `[weighting]` section is replaced by each method in turn).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Methods to compare (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// Where gradient methods take gradients: params or representation.
        #[arg(long, default_value = "params")]
        target: String,
    },
    /// Show the adapter, backend, driver and limits, and run a matmul self-check.
    Info,
    /// Benchmark the kernels on this adapter and print a table (or JSON lines).
    Bench {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only this benchmark: matmul, act_forward, col_sum, sum, kernels (the other
        /// kernel families and the dispatch overhead), train_step.
        #[arg(long)]
        only: Option<String>,
        /// Square matmul sizes, comma-separated (e.g. 256,1024).
        #[arg(long, value_delimiter = ',', default_values_t = [128usize, 256, 512, 1024])]
        sizes: Vec<usize>,
        /// Seconds spent on each figure (at least 3 runs each).
        #[arg(long, default_value_t = 2.0)]
        budget: f64,
        /// Autotune the matmul form for this adapter first (cached on disk for later runs).
        #[arg(long)]
        tune: bool,
        /// Also measure the training step at batch 64…4096 and trunk width 64…1024.
        #[arg(long)]
        scaling: bool,
    },
}

fn main() -> ExitCode {
    // Before anything starts a thread or the driver (see the function's notes).
    hydra::gpu::software::prefer_software_threads();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train { config, baselines, metrics_json, log, plot, quiet, init, save, checkpoint_every, resume } => {
            let opts = experiment::RunOptions {
                init,
                resume,
                checkpoint: match (&save, checkpoint_every) {
                    (Some(p), Some(n)) if n > 0 => Some((p.clone(), n)),
                    _ => None,
                },
                baselines,
            };
            train(config, opts, metrics_json, log, plot, quiet, save)
        }
        Command::Eval { config, checkpoint, split, json } => eval(&config, &checkpoint, &split, json),
        Command::Predict { checkpoint, input, output } => predict(&checkpoint, &input, &output),
        Command::Compare { config, methods, target } => compare(config, &methods, &target),
        Command::Info => info(),
        Command::Bench { json, only, sizes, budget, tune, scaling } => {
            run_bench(json, only.as_deref(), &sizes, budget, tune, scaling)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hydra: {e}");
            ExitCode::FAILURE
        }
    }
}

const DEFAULT_CONFIG: &str = include_str!("../../examples/energy.toml");

fn train(
    config: Option<PathBuf>,
    mut opts: experiment::RunOptions,
    metrics_json: Option<PathBuf>,
    log: Option<PathBuf>,
    plot: Option<PathBuf>,
    quiet: bool,
    save: Option<PathBuf>,
) -> hydra::Result<()> {
    let cfg = match &config {
        Some(p) => Config::load(p)?,
        None => {
            opts.baselines = true;
            Config::parse("<built-in examples/energy.toml>", DEFAULT_CONFIG, PathBuf::from("."))?
        }
    };
    // Every input is read and checked before the GPU is touched.
    let prepared = experiment::prepare(&cfg)?;
    let ctx = Context::new()?;
    let names: Vec<String> = cfg.tasks.iter().map(|t| t.name.clone()).collect();
    if !quiet {
        eprintln!(
            "hydra: {} on {} | {} train / {} val / {} test rows | adapter {}",
            cfg.file,
            names.join(", "),
            prepared.splits.train.rows(),
            prepared.splits.val.rows(),
            prepared.splits.test.rows(),
            ctx.adapter().name
        );
    }
    let mut log_file = match &log {
        Some(p) => Some(std::fs::File::create(p).map_err(|source| hydra::Error::Io { path: p.clone(), source })?),
        None => None,
    };
    let start = std::time::Instant::now();
    let mut log_err = None;
    let per_epoch = prepared.splits.train.rows().div_ceil(cfg.train.batch_size.max(1));
    let total = cfg.train.steps.unwrap_or(per_epoch * cfg.train.epochs) as u64;
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut history: Vec<hydra::train::EvalRecord> = Vec::new();
    let mut on_eval = |r: &hydra::train::EvalRecord| {
        if plot.is_some() {
            history.push(r.clone());
        }
        bar.set_position(r.step);
        let losses: Vec<String> = names.iter().zip(&r.train_loss).map(|(n, l)| format!("{n} {l:.4}")).collect();
        bar.set_message(format!("epoch {} | train loss {}", r.epoch, losses.join(", ")));
        if let Some(f) = log_file.as_mut() {
            let line = hydra::report::jsonl::record(&names, r);
            if let Err(e) = writeln!(f, "{line}") {
                log_err.get_or_insert(e);
            }
        }
        if !quiet && (r.epoch % 10 == 0 || r.epoch == 1) {
            let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(" ");
            bar.println(format!(
                "epoch {:>4} step {:>6}  train loss [{}]  val loss [{}]",
                r.epoch,
                r.step,
                fmt(&r.train_loss),
                fmt(&r.val_loss)
            ));
        }
    };
    let mut on_note = |n: &str| eprintln!("hydra: {n}");
    let (out, trainer) = experiment::run(&ctx, &cfg, &prepared, &opts, &mut on_eval, &mut on_note)?;
    bar.finish_and_clear();
    if let Some(p) = &plot {
        hydra::plot::write_svg(p, &names, &history)?;
    }
    if let Some(p) = &save {
        experiment::snapshot_checkpoint(&cfg, &prepared, &trainer)?.save(p)?;
        if !quiet {
            eprintln!("hydra: saved {}", p.display());
        }
    }
    if let (Some(e), Some(p)) = (log_err, &log) {
        return Err(hydra::Error::Io { path: p.clone(), source: e });
    }
    let secs = start.elapsed().as_secs_f64();
    let rep = &out.report;
    println!("trained {} steps in {secs:.1} s; kept the parameters of epoch {}", rep.steps, rep.best_epoch);
    let split = prepared.splits.reported();
    print!("{}", hydra::report::table::results(&cfg.tasks, &out, split));
    if let Some(p) = &metrics_json {
        let doc = hydra::report::metrics_json::document(&cfg.tasks, &out, split, secs);
        hydra::report::write_text(p, &format!("{doc:#}\n"))?;
    }
    Ok(())
}

fn compare(config: Option<PathBuf>, methods: &[String], target: &str) -> hydra::Result<()> {
    let mut cfg = match &config {
        Some(p) => Config::load(p)?,
        None => Config::parse("<built-in examples/energy.toml>", DEFAULT_CONFIG, PathBuf::from("."))?,
    };
    cfg.target = match target {
        "params" => hydra::mtl::weighting::Target::Params,
        "representation" => hydra::mtl::weighting::Target::Representation,
        other => {
            return Err(hydra::Error::invalid("--target", format!("{other:?} (expected params or representation)")))
        }
    };
    let names: Vec<String> = if methods.is_empty() {
        hydra::mtl::weighting::registry::names().iter().map(|s| s.to_string()).collect()
    } else {
        methods.to_vec()
    };
    let prepared = experiment::prepare(&cfg)?;
    let ctx = Context::new()?;
    let split = prepared.splits.reported();
    let spec = experiment::model_spec(&cfg, prepared.splits.train.width());
    let t0 = std::time::Instant::now();
    let base =
        hydra::train::single_task_baselines(&ctx, &spec, &cfg.tasks, &cfg.train, &prepared.scaling, &prepared.splits)?;
    eprintln!("hydra: single-task baselines in {:.1} s", t0.elapsed().as_secs_f64());
    let table = hydra::report::table::CompareTable::new(&cfg.tasks, split);
    println!("{}", table.head());
    println!("{}", table.row("single-task", &base, None, None, None));
    for name in &names {
        cfg.weighting = hydra::mtl::weighting::Method::by_name(name)?;
        let start = std::time::Instant::now();
        let (out, _) = experiment::run(&ctx, &cfg, &prepared, &Default::default(), &mut |_| {}, &mut |_| {})?;
        let secs = start.elapsed().as_secs_f64();
        let epochs = out.report.history.len();
        let per: Vec<f64> = cfg
            .tasks
            .iter()
            .enumerate()
            .map(|(t, task)| hydra::mtl::metrics::task_delta(task.kind, &out.report.metrics[t][split], &base[t][split]))
            .collect();
        let dm = hydra::mtl::metrics::delta_m(&per);
        println!("{}", table.row(name, &out.report.metrics, Some(dm), Some(secs / epochs.max(1) as f64), Some(epochs)));
    }
    Ok(())
}

fn eval(config: &Path, checkpoint: &Path, split: &str, json: bool) -> hydra::Result<()> {
    let s = hydra::data::Split::parse(split, "--split")?;
    let cfg = Config::load(config)?;
    let prepared = experiment::prepare(&cfg)?;
    let (info, params) = experiment::load_model(checkpoint)?;
    if info.features != prepared.splits.train.feature_names {
        return Err(hydra::Error::invalid(
            "--checkpoint",
            format!(
                "trained on features {:?}, the config gives {:?}",
                info.features, prepared.splits.train.feature_names
            ),
        ));
    }
    let ctx = Context::new()?;
    let mut ev = Evaluator::new(ctx, &info.spec, &info.tasks, info.scaling.clone());
    let mut data = prepared.raw[s].clone();
    // The checkpoint's own scaling, applied to the raw split.
    data = Scaling::apply(&info.scaling, &data);
    if data.labels.len() != info.tasks.len() {
        return Err(hydra::Error::invalid("--config", "its tasks differ from the checkpoint's"));
    }
    let (losses, mets) = ev.evaluate(hydra::train::Params::Host(&params), &data)?;
    if json {
        let tasks: serde_json::Map<String, serde_json::Value> =
            info.tasks.iter().zip(&mets).map(|(t, m)| (t.name.clone(), serde_json::json!({ split: m }))).collect();
        println!("{}", serde_json::json!({ "tasks": tasks, "losses": losses }));
    } else {
        for ((t, m), l) in info.tasks.iter().zip(&mets).zip(&losses) {
            let ms = m.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join("  ");
            println!("{:<12} {split}: loss {l:.4}  {ms}", t.name);
        }
    }
    Ok(())
}

fn predict(checkpoint: &Path, input: &Path, output: &Path) -> hydra::Result<()> {
    let (info, params) = experiment::load_model(checkpoint)?;
    let table = Table::read(input)?;
    let data = Dataset::from_table(&table, Some(&info.features), &[], &[], None)?;
    let ctx = Context::new()?;
    let mut ev = Evaluator::new(ctx, &info.spec, &info.tasks, info.scaling.clone());
    let preds = ev.predict(&params, &data)?;
    let mut text = info.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(",");
    text.push('\n');
    for r in 0..data.rows() {
        let row: Vec<String> = preds
            .iter()
            .zip(&info.tasks)
            .map(|(p, t)| match t.kind {
                hydra::mtl::TaskKind::Multiclass => format!("{}", p[r] as usize),
                _ => format!("{}", p[r]),
            })
            .collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    hydra::report::write_text(output, &text)
}

fn info() -> hydra::Result<()> {
    let ctx = Context::new()?;
    let a = ctx.adapter();
    println!("adapter   {}", a.name);
    println!("backend   {}", a.backend);
    println!("driver    {} {}", a.driver, a.driver_info);
    println!("kind      {:?}", a.kind);
    println!(
        "limits    storage binding {} MiB, buffer {} MiB, {} storage buffers/stage,",
        a.max_storage_binding >> 20,
        a.max_buffer >> 20,
        a.max_storage_buffers_per_stage
    );
    println!(
        "          {} B workgroup memory, {} invocations/workgroup, offset alignment {} B",
        a.max_workgroup_storage, a.max_invocations_per_workgroup, a.storage_offset_alignment
    );
    println!("features  timestamp queries: {}", if a.timestamps { "yes" } else { "no" });
    println!(
        "matmul    {:?}, operands through texture copies: {}",
        ctx.matmul_variant(),
        if ctx.texture_operands() { "yes (larger blocks)" } else { "no" }
    );
    if a.kind == hydra::DeviceKind::Cpu {
        let threads = std::env::var(hydra::gpu::software::THREADS_VAR).unwrap_or_else(|_| "default".into());
        println!("llvmpipe  {} worker threads ({})", threads, hydra::gpu::software::THREADS_VAR);
    }
    // Self-check: a product with bias and ReLU against the CPU reference.
    let (m, n, k) = (65, 63, 17);
    let mut rng = Rng::new(42);
    let (av, bv, biasv) = (rng.vec_f32(m * k, -1.0, 1.0), rng.vec_f32(n * k, -1.0, 1.0), rng.vec_f32(n, -1.0, 1.0));
    let spec = MatmulSpec { trans_b: true, act: Activation::Relu, ..Default::default() };
    let (ga, gb, gbias, gc) =
        (ctx.upload(&av, &[m, k])?, ctx.upload(&bv, &[n, k])?, ctx.upload(&biasv, &[n])?, ctx.empty(&[m, n])?);
    ctx.run(&[&kernels::matmul(&ctx, &ga, &gb, Some(&gbias), &gc, &spec)?])?;
    let got = ctx.read(&gc)?;
    let mut want = vec![0f32; m * n];
    cpu::matmul(&av, &bv, Some(&biasv), &mut want, MatmulShape { m, n, k }, false, true, Activation::Relu, false);
    let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    if err > 1e-4 {
        return Err(hydra::Error::invalid("self-check", format!("matmul 65x63x17 differs from the CPU by {err}")));
    }
    println!("self-check matmul {m}x{n}x{k} + bias + relu: max |GPU - CPU| = {err:.2e}  ok");
    Ok(())
}

fn run_bench(
    json: bool,
    only: Option<&str>,
    sizes: &[usize],
    budget: f64,
    tune: bool,
    scaling: bool,
) -> hydra::Result<()> {
    let ctx = Context::new()?;
    if tune {
        for (v, g) in bench::tune_and_cache(&ctx, budget.min(1.0))? {
            eprintln!("tune: {v:?} {g:.2} GFLOP/s at 256^3");
        }
    } else if let Some(v) = bench::apply_cached_tune(&ctx) {
        eprintln!("using the cached matmul form {v:?}");
    }
    let want = |name: &str| only.is_none_or(|o| o == name);
    if let Some(o) = only {
        if !["matmul", "act_forward", "col_sum", "sum", "kernels", "train_step"].contains(&o) {
            return Err(hydra::Error::invalid(
                "--only",
                format!("{o:?} (expected matmul, act_forward, col_sum, sum, kernels or train_step)"),
            ));
        }
    }
    if !json {
        println!("adapter: {} ({})", ctx.adapter().name, ctx.adapter().backend);
        if let Ok(t) = std::env::var(hydra::gpu::software::THREADS_VAR) {
            println!("{}={t}", hydra::gpu::software::THREADS_VAR);
        }
        println!("{:<12} {:<40} {:>10} {:>10} {:>8}", "bench", "shape", "ms", "GFLOP/s", "GB/s");
    }
    let emit = |r: BenchRecord| -> hydra::Result<()> {
        if json {
            println!("{}", serde_json::to_string(&r).map_err(|e| hydra::Error::invalid("json", e.to_string()))?);
        } else {
            let shape = r
                .dims
                .iter()
                .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
                .collect::<Vec<_>>()
                .join(" ");
            let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
            println!(
                "{:<12} {:<40} {:>10.3} {:>10} {:>8}",
                r.bench,
                shape.chars().take(40).collect::<String>(),
                r.ms,
                f(r.gflops),
                f(r.gbps)
            );
        }
        Ok(())
    };
    if want("matmul") {
        for &s in sizes {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                // Every transpose form at the first size; the plain product at every size.
                if (ta || tb) && s != sizes[0] && s != 1024 {
                    continue;
                }
                let spec = MatmulSpec { trans_a: ta, trans_b: tb, ..Default::default() };
                emit(bench::bench_matmul(&ctx, s, s, s, spec, budget)?)?;
            }
        }
    }
    if want("act_forward") {
        emit(bench::bench_activation(&ctx, 1 << 22, budget)?)?;
    }
    if want("col_sum") {
        emit(bench::bench_col_sum(&ctx, 256, 1024, budget)?)?;
    }
    if want("sum") {
        emit(bench::bench_sum(&ctx, 1 << 20, budget)?)?;
    }
    if want("kernels") {
        for r in bench::bench_other_kernels(&ctx, budget)? {
            emit(r)?;
        }
        emit(bench::bench_dispatch_overhead(&ctx, 100, budget)?)?;
    }
    if want("train_step") {
        emit(bench::bench_train_step(&ctx, &bench::peer_model(64, &[256, 256]), 256, 50, budget.max(1.0) * 5.0)?)?;
    }
    if scaling {
        for batch in [64, 256, 1024, 4096] {
            emit(bench::bench_train_step(&ctx, &bench::peer_model(64, &[256, 256]), batch, 20, budget)?)?;
        }
        for width in [64, 256, 1024] {
            emit(bench::bench_train_step(&ctx, &bench::peer_model(64, &[width, width]), 256, 20, budget)?)?;
        }
    }
    Ok(())
}
