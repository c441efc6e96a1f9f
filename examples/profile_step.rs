//! Where a training step's time goes: the GPU time of each of its dispatches (timestamp
//! queries), for the peer model of the benchmarks, with the matmul blocks a long run uses
//! (`quick` as a third argument: the blocks a short run starts with). Each dispatch's fastest
//! and median time over `rounds` profiled steps: this machine's speed swings, so the fastest
//! says what a kernel costs, the median what it costs in practice.
//! With `mmoe` as a fourth argument, the peer MMoE (8 experts of [64, 32]) instead.
//! `cargo run --release --example profile_step [batch] [rounds] [quick|steady] [mmoe]`
use hydra::nn::MultiTaskModel;
use hydra::GpuGraph;

fn main() -> hydra::Result<()> {
    hydra::gpu::software::prefer_software_threads();
    let ctx = hydra::Context::new()?;
    let arg = |i: usize| std::env::args().nth(i);
    let batch: usize = arg(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = arg(2).and_then(|s| s.parse().ok()).unwrap_or(15).max(1);
    let spec = match arg(4).as_deref() {
        Some("mmoe") => hydra::bench::peer_mmoe(64, 8, &[64, 32]),
        _ => hydra::bench::peer_model(64, &[256, 256]),
    };
    let model = MultiTaskModel::build(&spec, batch)?;
    let init = model.graph.init_params(0)?;
    let mut g = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(hydra::Optimizer::adam(1e-3)))?;
    if arg(3).as_deref() != Some("quick") {
        g.start_upgrades();
        g.wait_upgrades();
    }
    let (larger, in_use) = g.upgrade_progress();
    println!("matmuls with a larger-block form: {larger}, in use: {in_use}");
    g.step()?;
    let mut runs: Vec<Vec<(&'static str, f64)>> = Vec::new();
    for _ in 0..rounds {
        match g.profile_step()? {
            None => {
                println!("{}: no timestamp queries", ctx.adapter().name);
                return Ok(());
            }
            Some(rows) => runs.push(rows),
        }
    }
    let stat = |i: usize| {
        let mut v: Vec<f64> = runs.iter().map(|r| r[i].1).collect();
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let rows: Vec<(&str, (f64, f64))> = (0..runs[0].len()).map(|i| (runs[0][i].0, stat(i))).collect();
    let (fast, med): (f64, f64) = rows.iter().fold((0.0, 0.0), |a, r| (a.0 + r.1 .0, a.1 + r.1 .1));
    println!(
        "{} dispatches over {rounds} profiled steps, {fast:.3} ms summing the fastest, {med:.3} the medians ({})",
        rows.len(),
        ctx.adapter().name
    );
    if g.texture_operands() > 0 {
        println!(
            "{} matmul operands read through texture copies; the copies run between dispatches and are not in these times",
            g.texture_operands()
        );
    }
    println!("{:<16} {:>9} {:>9}", "dispatch", "fastest", "median");
    for (label, (f, m)) in rows {
        println!("{label:<16} {f:>9.3} {m:>9.3}");
    }
    Ok(())
}
