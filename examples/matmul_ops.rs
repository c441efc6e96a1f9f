//! The matmul transpose variants at one size, in GFLOP/s (wall clock with a device sync).
//! `cargo run --release --example matmul_ops -- 256`
fn main() -> hydra::Result<()> {
    let ctx = hydra::Context::new()?;
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        for v in hydra::bench::MATMUL_CANDIDATES {
            let spec = hydra::kernels::MatmulSpec { trans_a: ta, trans_b: tb, variant: Some(*v), ..Default::default() };
            let r = hydra::bench::bench_matmul(&ctx, n, n, n, spec, 0.5)?;
            println!("{n} ta={ta:<5} tb={tb:<5} {v:?}: {:.2} GFLOP/s", r.gflops.unwrap_or(0.0));
        }
    }
    Ok(())
}
