//! A multi-task model built and trained in code, with a custom loop: data from memory, the
//! compiled training step driven by hand (feed, step), losses read only when printed, then
//! prediction and a checkpoint. `cargo run --release --example embed_train`

use hydra::cpu::Rng;
use hydra::nn::{ModelSpec, MultiTaskModel, TaskSpec};
use hydra::GpuGraph;
use hydra::{Activation, Context, LossKind, Optimizer};

fn main() -> hydra::Result<()> {
    // On the software driver: more worker threads than CPUs (a no-op elsewhere), first thing.
    hydra::gpu::software::prefer_software_threads();
    let ctx = Context::new()?;
    println!("adapter: {}", ctx.adapter().name);

    // Two related tasks on 8 features: a regression and a 3-class classification.
    let (n, f, batch) = (2048, 8, 128);
    let mut rng = Rng::new(1);
    let x = rng.vec_f32(n * f, -1.0, 1.0);
    let y: Vec<f32> = (0..n).map(|r| x[r * f] * 2.0 + x[r * f + 1] * x[r * f + 2]).collect();
    let class: Vec<f32> = (0..n).map(|r| (((x[r * f] + 1.0) * 1.5) as usize).min(2) as f32).collect();

    let tasks = vec![
        TaskSpec { name: "value".into(), loss: LossKind::Huber { delta: 1.0 } },
        TaskSpec { name: "class".into(), loss: LossKind::CrossEntropy { classes: 3 } },
    ];
    let spec = ModelSpec::hard_sharing(f, &[64, 64], &[], Activation::Gelu, tasks);
    let model = MultiTaskModel::build(&spec, batch)?;
    let init = model.graph.init_params(7)?;
    // Compiled once: every later step is one queue submit, nothing read back.
    let mut graph = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(Optimizer::adam(3e-3)))?;
    graph.set_task_weights(&[1.0, 0.5])?;

    let mask = vec![1.0f32; batch];
    for step in 0..400 {
        let start = (step * batch) % n;
        let rows = start..start + batch;
        let xb = &x[rows.start * f..rows.end * f];
        // Inputs in graph order: x, then per task labels and mask.
        graph.feed(&[xb, &y[rows.clone()], &mask, &class[rows], &mask])?;
        graph.step()?;
        if step % 100 == 99 {
            let l = graph.losses()?; // the only readback, when we report
            println!("step {:>4}: value loss {:.4}, class loss {:.4}", step + 1, l[0], l[1]);
        }
    }

    // Predict the first batch and check the classifier.
    graph.feed(&[&x[..batch * f], &y[..batch], &mask, &class[..batch], &mask])?;
    graph.forward()?;
    let logits = graph.read_value(model.logits[1])?;
    let correct = (0..batch)
        .filter(|&r| {
            let row = &logits[r * 3..r * 3 + 3];
            let arg = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            arg as f32 == class[r]
        })
        .count();
    println!("class accuracy on the first batch: {:.3}", correct as f64 / batch as f64);

    // Save the parameters as safetensors (PyTorch names and layouts).
    let mut ck = hydra::checkpoint::Checkpoint::default();
    for (p, v) in model.graph.params.iter().zip(graph.read_params()?) {
        ck.insert(&p.name, &p.shape, v);
    }
    let path = std::env::temp_dir().join("hydra-embed-example.safetensors");
    ck.save(&path)?;
    println!("saved {}", path.display());
    Ok(())
}
