//! The context: adapter choice and its errors, the buffer pool, the counters.

mod common;

use common::ctx;
use hydra::{kernels, Context, Error};

#[test]
fn no_matching_adapter_is_an_error_with_the_install_hint() {
    let err = Context::with_filter(Some("no-such-adapter-xyz")).err().expect("must fail");
    assert!(matches!(err, Error::NoAdapter { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("apt-get install -y mesa-vulkan-drivers"), "{msg}");
    assert!(msg.contains("no-such-adapter-xyz"), "{msg}");
}

/// Ranks of data-parallel training open the adapters as good as the best one round robin by
/// their local rank (here there is one such adapter: every rank gets it), and the name filter
/// still applies.
#[test]
fn local_ranks_open_the_best_adapters_round_robin_under_the_filter() {
    let best = ctx().adapter().clone();
    for local_rank in 0..3 {
        let c = Context::for_local_rank(None, local_rank).expect("an adapter for every rank");
        assert_eq!((c.adapter().kind, &c.adapter().backend), (best.kind, &best.backend), "rank {local_rank}");
    }
    let err = Context::for_local_rank(Some("no-such-adapter-xyz"), 1).err().expect("must fail");
    assert!(matches!(err, Error::NoAdapter { .. }), "{err:?}");
}

#[test]
fn context_reports_adapter_and_limits() {
    let ctx = ctx();
    let a = ctx.adapter();
    assert!(!a.name.is_empty());
    assert!(!a.backend.is_empty());
    assert!(a.max_storage_binding >= 128 << 20, "{a:?}");
    assert!(a.storage_offset_alignment.is_power_of_two());
}

#[test]
fn buffer_pool_reuses_freed_buffers_and_tracks_peak() {
    // A context of its own: other tests allocate on the shared one in parallel.
    let ctx = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    // A size no other test uses, so the free list is ours.
    let shape = [12_345];
    let before = ctx.counters().allocations;
    let t = ctx.empty(&shape).unwrap();
    let after_first = ctx.counters().allocations;
    assert_eq!(after_first, before + 1);
    let (_, peak) = ctx.memory();
    assert!(peak >= 12_345 * 4);
    drop(t);
    let again = ctx.empty(&shape).unwrap();
    assert_eq!(ctx.counters().allocations, after_first, "a freed buffer of the same class must be reused");
    drop(again);
    // The peak restarts from what is in use, for measuring one phase.
    let (in_use, _) = ctx.memory();
    ctx.reset_memory_peak();
    assert_eq!(ctx.memory(), (in_use, in_use));
    let big = ctx.empty(&[1 << 20]).unwrap();
    assert!(ctx.memory().1 >= in_use + (4 << 20));
    drop(big);
}

#[test]
fn oversized_tensor_is_refused_with_the_limit() {
    let ctx = ctx();
    let limit = ctx.adapter().max_storage_binding;
    let n = (limit / 4 + 1) as usize;
    let err = ctx.empty(&[n]).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("max_storage_buffer_binding_size"), "{msg}");
    assert!(msg.contains(&limit.to_string()), "{msg}");
}

#[test]
fn one_run_is_one_submit_and_pipelines_are_cached() {
    // A context of its own: other tests submit on the shared one in parallel.
    let ctx = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let x = ctx.zeros(&[100]).unwrap();
    let d1 = kernels::fill(&ctx, &x, 1.0).unwrap();
    let d2 = kernels::scale(&ctx, &x, 2.0).unwrap();
    let n_pipes = ctx.pipelines_compiled();
    let _again = kernels::fill(&ctx, &x, 3.0).unwrap();
    assert_eq!(ctx.pipelines_compiled(), n_pipes, "same entry and constants must reuse the pipeline");
    let s0 = ctx.counters().submits;
    ctx.run(&[&d1, &d2]).unwrap();
    assert_eq!(ctx.counters().submits, s0 + 1);
    assert_eq!(ctx.read(&x).unwrap(), vec![2.0; 100]);
}

#[test]
fn matmul_autotune_is_cached_per_adapter_and_never_changes_results() {
    use hydra::cpu::{self, Rng};
    use hydra::kernels::{MatmulShape, MatmulSpec};
    // The cache file is passed explicitly: setting HYDRA_CACHE_DIR here would race with
    // the other tests' threads reading the environment.
    let dir = std::env::temp_dir().join(format!("hydra-tune-{}", std::process::id()));
    let cache = dir.join("matmul-tune.json");
    let ctx = ctx();
    let results = hydra::bench::tune_and_cache_at(&ctx, 0.05, Some(&cache)).unwrap();
    assert_eq!(results.len(), hydra::bench::MATMUL_CANDIDATES.len());
    let best = results[0].0;
    assert_eq!(ctx.matmul_variant(), best);
    // A new context on the same adapter picks the cached choice.
    let fresh = Context::new().unwrap();
    assert_eq!(hydra::bench::apply_cached_tune_from(&fresh, &cache), Some(best));
    assert_eq!(fresh.matmul_variant(), best);
    // Every candidate computes the same product (up to rounding).
    let (m, n, k) = (33, 65, 64);
    let mut rng = Rng::new(1);
    let (a, b) = (rng.vec_f32(m * k, -1.0, 1.0), rng.vec_f32(k * n, -1.0, 1.0));
    let mut want = vec![0f32; m * n];
    cpu::matmul(&a, &b, None, &mut want, MatmulShape { m, n, k }, false, false, hydra::Activation::Identity, false);
    for &v in hydra::bench::MATMUL_CANDIDATES {
        let (ga, gb, gc) =
            (fresh.upload(&a, &[m, k]).unwrap(), fresh.upload(&b, &[k, n]).unwrap(), fresh.empty(&[m, n]).unwrap());
        let d = kernels::matmul(&fresh, &ga, &gb, None, &gc, &MatmulSpec { variant: Some(v), ..Default::default() })
            .unwrap();
        fresh.run(&[&d]).unwrap();
        let got = fresh.read(&gc).unwrap();
        let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "{v:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Resident memory of this process in MB (Linux).
#[cfg(target_os = "linux")]
fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
    s.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).expect("resident pages") * 4096.0 / 1e6
}

#[cfg(target_os = "linux")]
#[test]
fn repeated_steps_and_transposed_products_do_not_grow_host_memory() {
    use hydra::kernels::MatmulSpec;
    use hydra::GpuGraph;
    // A context of its own; lavapipe leaked ~360 KB per dispatch of the register-blocked
    // transposed-A product, and unpolled submissions piled up before flow control.
    let own = Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let (a, b, c) = (own.zeros(&[64, 64]).unwrap(), own.zeros(&[64, 64]).unwrap(), own.zeros(&[64, 64]).unwrap());
    let d = kernels::matmul(&own, &a, &b, None, &c, &MatmulSpec { trans_a: true, ..Default::default() }).unwrap();
    let spec = hydra::bench::peer_model(8, &[64, 64]);
    let m = hydra::nn::MultiTaskModel::build(&spec, 64).unwrap();
    let mut g = GpuGraph::new(
        own.clone(),
        m.graph.clone(),
        &m.graph.init_params(0).unwrap(),
        Some(hydra::Optimizer::adam(1e-3)),
    )
    .unwrap();
    for _ in 0..50 {
        own.run(&[&d]).unwrap();
        g.step().unwrap();
    }
    own.sync().unwrap();
    let before = rss_mb();
    for _ in 0..600 {
        own.run(&[&d]).unwrap();
        g.step().unwrap();
    }
    own.sync().unwrap();
    let grew = rss_mb() - before;
    assert!(grew < 64.0, "host memory grew by {grew:.1} MB over 600 steps");
}

/// A wgpu validation error (here a storage view bound at an offset the adapter's alignment
/// does not allow) is a hydra::Error, not a panic.
#[test]
fn a_wgpu_validation_error_is_an_error_not_a_panic() {
    let ctx = ctx();
    let align = ctx.adapter().storage_offset_alignment as usize / 4;
    assert!(align > 1, "the adapter aligns storage views to more than one float");
    let x = ctx.zeros(&[64]).unwrap();
    let misaligned = x.view(1, &[8]).unwrap();
    let y = ctx.zeros(&[8]).unwrap();
    let result = kernels::act_forward(&ctx, hydra::Activation::Relu, &misaligned, &y).and_then(|d| ctx.run(&[&d]));
    let err = result.expect_err("a misaligned binding must be refused");
    assert!(matches!(err, hydra::Error::Validation { .. }), "{err}");
    assert!(err.to_string().contains("act_forward"), "the message names the kernel: {err}");
}
