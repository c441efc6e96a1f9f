//! Where a training step's time goes: the GPU time of each of its dispatches (timestamp
//! queries), for the peer model of the benchmarks, with the matmul blocks a long run uses
//! (`quick` as a second argument: the blocks a short run starts with).
//! `cargo run --release --example profile_step [batch] [quick]`
use hydra::autograd::GpuGraph;
use hydra::nn::MultiTaskModel;

fn main() -> hydra::Result<()> {
    let ctx = hydra::Context::new()?;
    let batch: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let spec = hydra::bench::peer_model(64, &[256, 256]);
    let model = MultiTaskModel::build(&spec, batch)?;
    let init = model.graph.init_params(0)?;
    let mut g = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(hydra::Optimizer::adam(1e-3)))?;
    if std::env::args().nth(2).as_deref() != Some("quick") {
        g.start_upgrades();
        g.wait_upgrades();
    }
    let (larger, in_use) = g.upgrade_progress();
    println!("matmuls with a larger-block form: {larger}, in use: {in_use}");
    g.step()?;
    match g.profile_step()? {
        None => println!("{}: no timestamp queries", ctx.adapter().name),
        Some(rows) => {
            let total: f64 = rows.iter().map(|r| r.1).sum();
            println!("{} dispatches, {total:.3} ms of GPU time ({})", rows.len(), ctx.adapter().name);
            for (label, ms) in rows {
                println!("{label:<16} {ms:>9.3} ms");
            }
        }
    }
    Ok(())
}
