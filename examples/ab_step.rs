//! A/B of the training step: the peer model's step with matmul operands read through texture
//! copies or from storage buffers, alternated step by step in one process (this machine's
//! speed swings; alternation compares the two under the same conditions).
//! `cargo run --release --example ab_step [batch] [rounds]`
use std::time::Instant;

use hydra::nn::MultiTaskModel;
use hydra::GpuGraph;

fn main() -> hydra::Result<()> {
    hydra::gpu::software::prefer_software_threads();
    let ctx = hydra::Context::new()?;
    let arg = |i: usize| std::env::args().nth(i);
    let batch: usize = arg(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = arg(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let spec = hydra::bench::peer_model(64, &[256, 256]);
    let model = MultiTaskModel::build(&spec, batch)?;
    let init = model.graph.init_params(0)?;
    let inputs = hydra::bench::peer_inputs(&spec, batch, 5);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let mut graphs = Vec::new();
    for textures in [false, true] {
        ctx.set_texture_operands(textures);
        let mut g = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(hydra::Optimizer::adam(1e-3)))?;
        g.start_upgrades();
        g.wait_upgrades();
        for _ in 0..5 {
            g.feed(&refs)?;
            g.step()?;
        }
        ctx.sync()?;
        graphs.push(g);
    }
    let mut t = [Vec::new(), Vec::new()];
    let mut ratio = Vec::new();
    for _ in 0..rounds {
        let mut r = [0.0; 2];
        for (i, g) in graphs.iter_mut().enumerate() {
            let s = Instant::now();
            g.feed(&refs)?;
            g.step()?;
            ctx.sync()?;
            r[i] = s.elapsed().as_secs_f64() * 1e3;
            t[i].push(r[i]);
        }
        ratio.push(r[0] / r[1]);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (s0, s1) = med(&mut t[0]);
    let (x0, x1) = med(&mut t[1]);
    let (_, rm) = med(&mut ratio);
    println!("storage: fastest {s0:.2} median {s1:.2} ms; textures: fastest {x0:.2} median {x1:.2} ms; median per-round ratio {rm:.2}");
    Ok(())
}
