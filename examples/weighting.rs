//! The weighting library on its own, on given per-task gradients: the direction each method
//! picks for three conflicting gradients, and whether it conflicts with any task.
//! `cargo run --release --example weighting`

use hydra::mtl::weighting::{combine, registry, Gram, Runs, Target, Weighter};

fn main() -> hydra::Result<()> {
    // Three tasks' gradients of 4 shared parameters; tasks 0 and 2 conflict.
    let g = vec![vec![1.0, 0.5, 0.0, 0.2], vec![0.2, 1.0, 0.3, 0.0], vec![-0.9, 0.1, 0.8, 0.1]];
    let losses = [0.8, 0.5, 1.2];
    let m = Gram::of(&g); // only M = G·Gᵀ is needed
    println!("cos(g0, g2) = {:+.3}: a conflict", m.cosine(0, 2));
    println!("{:<12} {:>28} {:>30}", "method", "coefficients c", "<g_t, d> for each task");
    for entry in registry::REGISTRY {
        let (name, method) = (entry.name, entry.default);
        if entry.runs != Runs::GramThenHost {
            continue; // loss-based methods give loss weights; GradDrop works elementwise
        }
        let mut w = Weighter::new(method, Target::Params, &[1.0; 3], 0);
        let c = w.coefficients(&m, &losses, 1e-3)?;
        let d = combine(&g, &c);
        let dots: Vec<String> =
            g.iter().map(|gt| format!("{:+.3}", gt.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>())).collect();
        let cs: Vec<String> = c.iter().map(|v| format!("{v:.3}")).collect();
        println!("{name:<12} {:>28} {:>30}", cs.join(" "), dots.join(" "));
    }
    Ok(())
}
