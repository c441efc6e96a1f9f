//! The optimizer kernels (SGD with and without momentum and Nesterov, Adam, AdamW) against
//! the CPU reference on awkward lengths, in both forms: one value per invocation (any length)
//! and four (lengths a multiple of 4), which must agree bit for bit.

mod common;

use common::{assert_close, ctx, to64};
use hydra::cpu::Rng;
use hydra::{kernels, Optimizer};

const OPTIMIZERS: [Optimizer; 5] = [
    Optimizer::Sgd { lr: 0.1, momentum: 0.0, nesterov: false, weight_decay: 0.0 },
    Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 1e-3 },
    Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0 },
    Optimizer::Adam { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-8, weight_decay: 1e-2 },
    Optimizer::AdamW { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 },
];

/// Three updates of `n` values (state starting non-zero) on the GPU; returns parameters and
/// state after, and checks them against the CPU reference.
fn run(opt: Optimizer, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let ctx = ctx();
    // One generator per tensor, so that a shorter run's values are a longer one's first ones.
    let p0 = Rng::new(seed).vec_f32(n, -1.0, 1.0);
    let g = Rng::new(seed + 1).vec_f32(n, -1.0, 1.0);
    let m0 = Rng::new(seed + 2).vec_f32(n, -0.1, 0.1);
    let v0 = Rng::new(seed + 3).vec_f32(n, 0.0, 0.01);
    let (gp, gg, gm, gv) = (
        ctx.upload(&p0, &[n]).unwrap(),
        ctx.upload(&g, &[n]).unwrap(),
        ctx.upload(&m0, &[n]).unwrap(),
        ctx.upload(&v0, &[n]).unwrap(),
    );
    let (mut p, mut m, mut v) = (to64(&p0), to64(&m0), to64(&v0));
    for step in 1..=3u64 {
        let f = opt.uniform(step);
        let d = match opt {
            Optimizer::Sgd { momentum, nesterov, .. } => {
                kernels::sgd(&ctx, &gp, &gg, &gm, nesterov, momentum != 0.0, f, None).unwrap()
            }
            Optimizer::Adam { beta1, beta2, .. } | Optimizer::AdamW { beta1, beta2, .. } => {
                kernels::adam(&ctx, &gp, &gg, &gm, &gv, (beta1, beta2), matches!(opt, Optimizer::AdamW { .. }), f, None)
                    .unwrap()
            }
        };
        assert_eq!(d.label.ends_with('4'), n % 4 == 0, "{opt:?} n={n}: form {}", d.label);
        ctx.run(&[&d]).unwrap();
        opt.cpu_step(step, &mut p, &to64(&g), &mut m, &mut v);
    }
    let got: Vec<Vec<f32>> = [&gp, &gm, &gv].iter().map(|t| ctx.read(t).unwrap()).collect();
    // Three f32 updates of values below 2: a few roundings each.
    let tol = vec![1e-6; n];
    assert_close(&format!("{opt:?} n={n} parameters"), &got[0], &p, &tol);
    if opt.state_buffers() > 0 {
        assert_close(&format!("{opt:?} n={n} first state"), &got[1], &m, &tol);
    }
    if opt.state_buffers() > 1 {
        assert_close(&format!("{opt:?} n={n} second state"), &got[2], &v, &tol);
    }
    got
}

#[test]
fn optimizer_kernels_match_the_cpu_one_and_four_values_at_a_time() {
    for opt in OPTIMIZERS {
        for n in [1, 3, 17, 63, 65, 257] {
            run(opt, n, n as u64);
        }
        for n in [4, 64, 260] {
            // Four at a time; the first n - 3 values bit for bit as one at a time.
            let four = run(opt, n, 9);
            let one = run(opt, n - 3, 9);
            for (a, b) in four.iter().zip(&one) {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{opt:?} n={n}: forms differ");
            }
        }
    }
}
