//! The `hydra` command: info and kernel benchmarks (training commands come with the trainer).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hydra::bench::{self, BenchRecord};
use hydra::cpu::{self, Rng};
use hydra::kernels::{self, Activation, MatmulShape, MatmulSpec};
use hydra::Context;

#[derive(Parser)]
#[command(
    name = "hydra",
    version,
    about = "Multi-task training on the GPU, in Rust and WGSL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the adapter, backend, driver and limits, and run a matmul self-check.
    Info,
    /// Benchmark the kernels on this adapter and print a table (or JSON lines).
    Bench {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only this benchmark: matmul, act_forward, col_sum, sum, train_step.
        #[arg(long)]
        only: Option<String>,
        /// Square matmul sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [128usize, 256, 512, 1024])]
        sizes: Vec<usize>,
        /// Seconds spent on each figure (at least 3 runs each).
        #[arg(long, default_value_t = 2.0)]
        budget: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Bench {
            json,
            only,
            sizes,
            budget,
        } => run_bench(json, only.as_deref(), &sizes, budget),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hydra: {e}");
            ExitCode::FAILURE
        }
    }
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
    println!(
        "features  timestamp queries: {}",
        if a.timestamps { "yes" } else { "no" }
    );
    println!("matmul    {:?}", ctx.matmul_variant());
    // Self-check: a product with bias and ReLU against the CPU reference.
    let (m, n, k) = (65, 63, 17);
    let mut rng = Rng::new(42);
    let (av, bv, biasv) = (
        rng.vec_f32(m * k, -1.0, 1.0),
        rng.vec_f32(n * k, -1.0, 1.0),
        rng.vec_f32(n, -1.0, 1.0),
    );
    let spec = MatmulSpec {
        trans_b: true,
        act: Activation::Relu,
        ..Default::default()
    };
    let (ga, gb, gbias, gc) = (
        ctx.upload(&av, &[m, k])?,
        ctx.upload(&bv, &[n, k])?,
        ctx.upload(&biasv, &[n])?,
        ctx.empty(&[m, n])?,
    );
    ctx.run(&[&kernels::matmul(&ctx, &ga, &gb, Some(&gbias), &gc, &spec)?])?;
    let got = ctx.read(&gc)?;
    let mut want = vec![0f32; m * n];
    cpu::matmul(
        &av,
        &bv,
        Some(&biasv),
        &mut want,
        MatmulShape { m, n, k },
        false,
        true,
        Activation::Relu,
        false,
    );
    let err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    if err > 1e-4 {
        return Err(hydra::Error::invalid(
            "self-check",
            format!("matmul 65x63x17 differs from the CPU by {err}"),
        ));
    }
    println!("self-check matmul {m}x{n}x{k} + bias + relu: max |GPU - CPU| = {err:.2e}  ok");
    Ok(())
}

fn run_bench(json: bool, only: Option<&str>, sizes: &[usize], budget: f64) -> hydra::Result<()> {
    let ctx = Context::new()?;
    let want = |name: &str| only.is_none_or(|o| o == name);
    if let Some(o) = only {
        if !["matmul", "act_forward", "col_sum", "sum", "train_step"].contains(&o) {
            return Err(hydra::Error::invalid(
                "--only",
                format!("{o:?} (expected matmul, act_forward, col_sum, sum or train_step)"),
            ));
        }
    }
    if !json {
        println!(
            "adapter: {} ({})",
            ctx.adapter().name,
            ctx.adapter().backend
        );
        println!(
            "{:<12} {:<40} {:>10} {:>10} {:>8}",
            "bench", "shape", "ms", "GFLOP/s", "GB/s"
        );
    }
    let emit = |r: BenchRecord| -> hydra::Result<()> {
        if json {
            println!(
                "{}",
                serde_json::to_string(&r)
                    .map_err(|e| hydra::Error::invalid("json", e.to_string()))?
            );
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
            emit(bench::bench_matmul(
                &ctx,
                s,
                s,
                s,
                MatmulSpec::default(),
                budget,
            )?)?;
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
    if want("train_step") {
        emit(bench::bench_train_step(
            &ctx,
            &bench::peer_model(64, &[256, 256]),
            256,
            50,
            budget.max(1.0) * 5.0,
        )?)?;
    }
    Ok(())
}
