//! `hydra bench`: the kernels and the training step timed on this adapter, as a table or
//! JSON lines.

use crate::bench::{self, BenchRecord};
use crate::error::Result;
use crate::gpu::Context;
use crate::kernels::MatmulSpec;

/// Times the benchmarks `only` names (all by default) for `budget` seconds each.
pub fn run_bench(
    json: bool,
    only: Option<&str>,
    sizes: &[usize],
    budget: f64,
    tune: bool,
    scaling: bool,
) -> Result<()> {
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
            return Err(crate::Error::invalid(
                "--only",
                format!("{o:?} (expected matmul, act_forward, col_sum, sum, kernels or train_step)"),
            ));
        }
    }
    if !json {
        println!("adapter: {} ({})", ctx.adapter().name, ctx.adapter().backend);
        if let Ok(t) = std::env::var(crate::gpu::software::THREADS_VAR) {
            println!("{}={t}", crate::gpu::software::THREADS_VAR);
        }
        println!("{:<12} {:<40} {:>10} {:>10} {:>8}", "bench", "shape", "ms", "GFLOP/s", "GB/s");
    }
    let emit = |r: BenchRecord| -> Result<()> {
        if json {
            println!("{}", serde_json::to_string(&r).map_err(|e| crate::Error::invalid("json", e.to_string()))?);
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
        // The peer MMoE's second expert layer (8 experts, 64 → 32, batch 256) and its gradients.
        use crate::ir::GroupedLayout;
        for (layout, shape) in [
            (GroupedLayout::FORWARD, (256, 32, 64)),
            (GroupedLayout::GRAD_INPUT, (256, 64, 32)),
            (GroupedLayout::GRAD_WEIGHT, (32, 64, 256)),
        ] {
            for r in bench::bench_grouped(&ctx, 8, shape, layout, budget)? {
                emit(r)?;
            }
        }
    }
    if want("train_step") {
        emit(bench::bench_train_step(&ctx, &bench::peer_model(64, &[256, 256]), 256, 50, budget.max(1.0) * 5.0)?)?;
        emit(bench::bench_train_step(&ctx, &bench::peer_mmoe(64, 8, &[64, 32]), 256, 50, budget.max(1.0) * 5.0)?)?;
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
