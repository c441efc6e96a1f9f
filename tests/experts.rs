//! A bank of experts computed together: the grouped product against the CPU reference on
//! awkward shapes, in each of its three layouts (forward, the input's gradient, the weights'
//! gradient); the pack and grouped rules by finite differences; and a bank equal to the same
//! experts built one by one (exactly on the CPU, closely on the GPU, in fewer dispatches).

mod common;

use common::{assert_close_all, check_grads_fd, ctx, to64};
use hydra::autograd::{cpu as gcpu, Graph};
use hydra::cpu::{self, Rng};
use hydra::ir::{GroupedLayout, MatmulShape, NodeId};
use hydra::nn::{Experts, Mlp};
use hydra::{kernels, Activation, GpuGraph, LossKind};

// With multiples of four (5×12×8, 12×20×7, 64×32×64) the four-at-a-time form runs, with edges and a
// remainder of k; the others take one k at a time.
const SHAPES: &[(usize, usize, usize)] =
    &[(1, 1, 1), (3, 17, 5), (17, 3, 63), (65, 33, 17), (257, 16, 3), (5, 12, 8), (12, 20, 7), (64, 32, 64)];

#[test]
fn grouped_products_match_the_cpu_in_every_layout_on_awkward_shapes() {
    let ctx = ctx();
    let layouts = [
        ("forward", GroupedLayout::FORWARD, true, Activation::Tanh, false),
        ("input grad", GroupedLayout::GRAD_INPUT, false, Activation::Identity, true),
        ("weight grad", GroupedLayout::GRAD_WEIGHT, false, Activation::Identity, false),
        ("weight grad acc", GroupedLayout::GRAD_WEIGHT, false, Activation::Identity, true),
        ("relu", GroupedLayout::FORWARD, true, Activation::Relu, true),
    ];
    for &groups in &[1usize, 3, 8] {
        for &(m, n, k) in SHAPES {
            for (what, layout, with_bias, act, acc) in layouts {
                let mut rng = Rng::new((m * 7 + n * 13 + k * 17 + groups) as u64);
                let s = MatmulShape { m, n, k };
                let (a, b, c0) = (
                    rng.vec_f32(groups * m * k, -1.0, 1.0),
                    rng.vec_f32(groups * k * n, -1.0, 1.0),
                    rng.vec_f32(groups * m * n, -1.0, 1.0),
                );
                let bias = rng.vec_f32(groups * n, -1.0, 1.0);
                let (ga, gb, gc, gbias) = (
                    ctx.upload(&a, &[groups * m * k]).unwrap(),
                    ctx.upload(&b, &[groups * k * n]).unwrap(),
                    ctx.upload(&c0, &[groups * m * n]).unwrap(),
                    ctx.upload(&bias, &[groups * n]).unwrap(),
                );
                let gbias = with_bias.then_some(&gbias);
                let d = kernels::grouped_matmul(&ctx, &ga, &gb, gbias, &gc, s, groups, layout, act, acc).unwrap();
                ctx.run(&[&d]).unwrap();
                let mut want = to64(&c0);
                let bias64 = to64(&bias);
                let bias64 = with_bias.then_some(bias64.as_slice());
                cpu::grouped_matmul(&to64(&a), &to64(&b), bias64, &mut want, s, groups, layout, act, acc);
                let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                assert_close_all(&format!("{what} {groups}x{m}x{n}x{k}"), &ctx.read(&gc).unwrap(), &want, tol);
            }
        }
    }
}

#[test]
fn a_grouped_product_rejects_operands_of_the_wrong_size() {
    let ctx = ctx();
    let t = ctx.zeros(&[12]).unwrap();
    let s = MatmulShape { m: 2, n: 3, k: 2 };
    let Err(e) =
        kernels::grouped_matmul(&ctx, &t, &t, None, &t, s, 3, GroupedLayout::FORWARD, Activation::Identity, false)
    else {
        panic!("12 values cannot hold 3 groups of 2x3")
    };
    let e = e.to_string();
    assert!(e.contains("grouped_matmul") && e.contains("elements"), "{e}");
}

/// E experts (`bank`: together; else one by one, concatenated) of sizes [f, h, h2], mixed by a
/// softmax gate, then a linear head and an MSE loss.
fn mixture(bank: bool, b: usize, f: usize, e: usize, h: usize, h2: usize, seed: u64) -> (Graph, Vec<Vec<f32>>) {
    let mut g = Graph::new();
    let x = g.input("x", &[b, f]);
    let sizes = [f, h, h2];
    let z = if bank {
        let experts = Experts::new(&mut g, |i| format!("experts.{i}"), e, &sizes, Activation::Tanh);
        experts.forward(&mut g, x).unwrap().unwrap()
    } else {
        let mlps: Vec<Mlp> =
            (0..e).map(|i| Mlp::new(&mut g, &format!("experts.{i}"), &sizes, Activation::Tanh, true)).collect();
        let outs: Vec<NodeId> = mlps.iter().map(|m| m.forward(&mut g, x).unwrap()).collect();
        outs[1..].iter().fold(outs[0], |z, &o| g.concat(z, o).unwrap())
    };
    let gate = hydra::nn::Linear::new(&mut g, "gates.t", f, e);
    let logits = gate.forward(&mut g, x, Activation::Identity).unwrap();
    let gt = g.softmax(logits).unwrap();
    let mixed = g.mix(gt, z).unwrap();
    let head = hydra::nn::Linear::new(&mut g, "heads.t.0", h2, 1);
    let out = head.forward(&mut g, mixed, Activation::Identity).unwrap();
    let (y, m) = (g.input("y", &[b]), g.input("m", &[b]));
    g.loss(out, y, m, LossKind::Mse, 0).unwrap();
    let mut rng = Rng::new(seed);
    (g, vec![rng.vec_f32(b * f, -1.0, 1.0), rng.vec_f32(b, -1.0, 1.0), vec![1.0; b]])
}

#[test]
fn pack_and_grouped_pass_finite_difference_gradient_checks() {
    let (g, inputs) = mixture(true, 5, 3, 3, 4, 2, 11);
    let packs = g.nodes.iter().filter(|n| matches!(n.op, hydra::ir::Op::Pack(_))).count();
    let grouped = g.nodes.iter().filter(|n| matches!(n.op, hydra::ir::Op::Grouped { .. })).count();
    assert_eq!((packs, grouped), (4, 1), "two layers' weights and biases packed, the second grouped");
    let params: Vec<Vec<f64>> = g.init_params(12).unwrap().iter().map(|p| to64(p)).collect();
    let inputs: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    check_grads_fd("a bank of experts", &g, &params, &inputs, &[1.0], None);
}

#[test]
fn a_bank_equals_its_experts_one_by_one_exactly_on_the_cpu_and_closely_on_the_gpu_in_fewer_dispatches() {
    for (b, f, e, h, h2) in [(1, 3, 2, 1, 1), (17, 5, 3, 17, 3), (65, 17, 8, 64, 32), (257, 8, 5, 33, 65)] {
        let (banked, inputs) = mixture(true, b, f, e, h, h2, 21);
        let (single, _) = mixture(false, b, f, e, h, h2, 21);
        let names = |g: &Graph| g.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&banked), names(&single), "the same parameters in the same order");
        let init = banked.init_params(22).unwrap();
        assert_eq!(init, single.init_params(22).unwrap(), "the same initial values");
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let want = gcpu::run(&single, &p64, &i64, &[1.0], true).unwrap();
        let got = gcpu::run(&banked, &p64, &i64, &[1.0], true).unwrap();
        assert_eq!(got.losses, want.losses, "b {b} e {e}: the loss");
        assert_eq!(got.param_grads(&banked), want.param_grads(&single), "b {b} e {e}: every gradient");

        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let mut counts = Vec::new();
        for g in [&banked, &single] {
            let mut gg = GpuGraph::new(ctx(), g.clone(), &init, None).unwrap();
            gg.feed(&refs).unwrap();
            gg.forward_backward().unwrap();
            counts.push(gg.dispatches_per_step());
            for (pi, grad) in gg.read_grads().unwrap().iter().enumerate() {
                let w = &want.param_grads(&single)[pi];
                let scale = w.iter().fold(0f64, |a, v| a.max(v.abs()));
                let what = format!("b {b} e {e} h {h} {}", g.params[pi].name);
                assert_close_all(&what, grad, w, 1e-6 + 1e-4 * scale);
            }
        }
        if e > 1 {
            assert!(counts[0] < counts[1], "b {b} e {e}: {} dispatches together, {} one by one", counts[0], counts[1]);
        }
    }
}
