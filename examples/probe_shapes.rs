//! The training step's matmul shapes (peer model, batch 256) in several block sizes, each with
//! its operands read from storage buffers ("s") or through texture copies ("t"): fastest and
//! median GPU time of 25 interleaved profiles, in ms. Texture copies are not in these times
//! (timestamps bracket compute passes); `examples/probe_copy.rs` times them.
//! `cargo run --release --example probe_shapes`
use hydra::kernels::{self, Activation, MatmulSpec};
fn main() -> hydra::Result<()> {
    let ctx = hydra::Context::new()?;
    let shapes: &[(&str, usize, usize, usize, bool, bool, bool)] = &[
        ("fwd1", 256, 256, 64, false, true, false),
        ("fwd2", 256, 256, 256, false, true, false),
        ("dW2", 256, 256, 256, true, false, false),
        ("dH1", 256, 256, 256, false, false, true),
        ("nn", 256, 256, 256, false, false, false),
        ("dW1", 256, 64, 256, true, false, false),
        ("dz", 256, 256, 12, false, false, true),
        ("hfwd", 256, 12, 256, false, true, false),
        ("hdW", 12, 256, 256, true, false, false),
    ];
    let combos = [((8, 4), false), ((8, 4), true), ((1, 1), false), ((1, 1), true), ((4, 2), true), ((2, 2), true)];
    for &(name, m, n, k, ta, tb, grad) in shapes {
        let av: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.4).collect();
        let bv: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.3).collect();
        let a = ctx.upload(&av, &(if ta { [k, m] } else { [m, k] }))?;
        let b = ctx.upload(&bv, &(if tb { [n, k] } else { [k, n] }))?;
        let saved = ctx.upload(&(0..m * n).map(|i| (i % 3) as f32 - 1.0).collect::<Vec<_>>(), &[m, n])?;
        let mut ds = Vec::new();
        for &(tiles, textures) in &combos {
            let c = ctx.zeros(&[m, n])?;
            let spec = MatmulSpec {
                trans_a: ta,
                trans_b: tb,
                tiles: Some(tiles),
                textures: Some(textures),
                ..Default::default()
            };
            let g = grad.then_some(kernels::ActGrad { act: Activation::Relu, saved: &saved, from_output: true });
            ds.push(if let Some(g) = g {
                kernels::matmul_act_grad(&ctx, &a, &b, &c, &spec, g)?
            } else {
                kernels::matmul(&ctx, &a, &b, None, &c, &spec)?
            });
        }
        let refs: Vec<&hydra::gpu::Dispatch> = ds.iter().collect();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ds.len()];
        for _ in 0..25 {
            let t = ctx.profile(&refs)?.expect("timestamps");
            for (i, x) in t.into_iter().enumerate() {
                times[i].push(x);
            }
        }
        print!("{name:5}");
        for (i, &(tiles, tex)) in combos.iter().enumerate() {
            let v = &mut times[i];
            v.sort_by(f64::total_cmp);
            print!(" | {}x{}{} {:.2}/{:.2}", tiles.0, tiles.1, if tex { "t" } else { "s" }, v[0], v[v.len() / 2]);
        }
        println!();
    }
    Ok(())
}
