//! Gates and gated mixtures: the row softmax and the mixture of experts' blocks against the
//! CPU reference on awkward shapes, forward and backward; the graph ops by finite
//! differences; a gated graph on the GPU against the CPU.

mod common;

use common::{assert_close_all, check_grads_fd, ctx, to64};
use hydra::autograd::{cpu as gcpu, Graph, Init};
use hydra::cpu::{self, Rng};
use hydra::{kernels, Activation, GpuGraph, LossKind};

const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (3, 2, 17), (17, 3, 63), (65, 8, 3), (257, 5, 65)];

#[test]
fn softmax_rows_and_its_gradient_match_the_cpu_and_stay_finite_for_logits_of_100() {
    let ctx = ctx();
    for &(rows, cols, _) in SHAPES {
        let mut rng = Rng::new((rows * 31 + cols) as u64);
        let mut x = rng.vec_f32(rows * cols, -4.0, 4.0);
        x[0] = 100.0;
        if x.len() > 1 {
            x[1] = -100.0;
        }
        let dy = rng.vec_f32(rows * cols, -1.0, 1.0);
        let (gx, gy, gdy) = (
            ctx.upload(&x, &[rows, cols]).unwrap(),
            ctx.empty(&[rows, cols]).unwrap(),
            ctx.upload(&dy, &[rows, cols]).unwrap(),
        );
        ctx.run(&[&kernels::softmax_rows(&ctx, &gx, &gy).unwrap()]).unwrap();
        let y = ctx.read(&gy).unwrap();
        let mut want = vec![0.0; rows * cols];
        cpu::softmax_rows(&to64(&x), cols, &mut want);
        assert_close_all(&format!("softmax {rows}x{cols}"), &y, &want, 1e-6);
        for r in 0..rows {
            let s: f32 = y[r * cols..(r + 1) * cols].iter().sum();
            assert!(approx::abs_diff_eq!(s, 1.0, epsilon = 1e-5), "row {r} sums to {s}");
        }
        for acc in [false, true] {
            let start = rng.vec_f32(rows * cols, -1.0, 1.0);
            let gdx = ctx.upload(&start, &[rows, cols]).unwrap();
            ctx.run(&[&kernels::softmax_rows_backward(&ctx, &gy, &gdy, &gdx, acc).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::softmax_rows_backward(&to64(&y), &to64(&dy), cols, &mut want, acc);
            assert_close_all(
                &format!("softmax backward {rows}x{cols} acc {acc}"),
                &ctx.read(&gdx).unwrap(),
                &want,
                1e-5,
            );
        }
    }
}

#[test]
fn the_mixture_and_its_gradients_match_the_cpu() {
    let ctx = ctx();
    for &(rows, e, d) in SHAPES {
        let mut rng = Rng::new((rows * 7 + e * 3 + d) as u64);
        let (g, x, dy) =
            (rng.vec_f32(rows * e, 0.0, 1.0), rng.vec_f32(rows * e * d, -1.0, 1.0), rng.vec_f32(rows * d, -1.0, 1.0));
        let (gg, gx, gdy) = (
            ctx.upload(&g, &[rows, e]).unwrap(),
            ctx.upload(&x, &[rows, e * d]).unwrap(),
            ctx.upload(&dy, &[rows, d]).unwrap(),
        );
        let gyo = ctx.empty(&[rows, d]).unwrap();
        ctx.run(&[&kernels::mix(&ctx, &gg, &gx, &gyo).unwrap()]).unwrap();
        let mut want = vec![0.0; rows * d];
        cpu::mix(&to64(&g), &to64(&x), e, &mut want);
        let tol = 1e-5 * e as f64;
        assert_close_all(&format!("mix {rows}x{e}x{d}"), &ctx.read(&gyo).unwrap(), &want, tol);
        for acc in [false, true] {
            let (s1, s2) = (rng.vec_f32(rows * e, -1.0, 1.0), rng.vec_f32(rows * e * d, -1.0, 1.0));
            let (dg, dx) = (ctx.upload(&s1, &[rows, e]).unwrap(), ctx.upload(&s2, &[rows, e * d]).unwrap());
            ctx.run(&[
                &kernels::mix_grad_gate(&ctx, &gdy, &gx, &dg, acc).unwrap(),
                &kernels::mix_grad_x(&ctx, &gdy, &gg, &dx, acc).unwrap(),
            ])
            .unwrap();
            let (mut wg, mut wx) = (to64(&s1), to64(&s2));
            cpu::mix_grad_gate(&to64(&dy), &to64(&x), e, &mut wg, acc);
            cpu::mix_grad_x(&to64(&dy), &to64(&g), e, &mut wx, acc);
            let tol_g = 1e-5 * d as f64;
            assert_close_all(&format!("mix dgate {rows}x{e}x{d} {acc}"), &ctx.read(&dg).unwrap(), &wg, tol_g);
            assert_close_all(&format!("mix dx {rows}x{e}x{d} {acc}"), &ctx.read(&dx).unwrap(), &wx, 1e-5);
        }
    }
}

/// Two experts (one of them used twice through the concatenation) mixed by a softmax gate,
/// then a linear head: every new op's rule.
fn gated_experts(b: usize, f: usize, d: usize, seed: u64) -> (Graph, Vec<Vec<f32>>) {
    let mut g = Graph::new();
    let x = g.input("x", &[b, f]);
    let w1 = g.param("experts.0.0.weight", &[d, f], Init::Uniform(0.8));
    let w2 = g.param("experts.1.0.weight", &[d, f], Init::Uniform(0.8));
    let e1 = g.linear(x, w1, None, Activation::Tanh).unwrap();
    let e2 = g.linear(x, w2, None, Activation::Sigmoid).unwrap();
    let both = g.concat(e1, e2).unwrap();
    let all = g.concat(both, e1).unwrap(); // three blocks: e1, e2, e1
    let wg = g.param("gates.t.weight", &[3, f], Init::Uniform(0.8));
    let logits = g.linear(x, wg, None, Activation::Identity).unwrap();
    let gate = g.softmax(logits).unwrap();
    let mixed = g.mix(gate, all).unwrap();
    let wo = g.param("heads.t.0.weight", &[1, d], Init::Uniform(0.8));
    let out = g.linear(mixed, wo, None, Activation::Identity).unwrap();
    let y = g.input("y", &[b]);
    let m = g.input("m", &[b]);
    g.loss(out, y, m, LossKind::Mse, 0).unwrap();
    let mut rng = Rng::new(seed);
    (g, vec![rng.vec_f32(b * f, -1.0, 1.0), rng.vec_f32(b, -1.0, 1.0), vec![1.0; b]])
}

#[test]
fn softmax_concat_and_mix_pass_finite_difference_gradient_checks() {
    let (g, inputs) = gated_experts(4, 3, 2, 1);
    let params: Vec<Vec<f64>> = g.init_params(2).unwrap().iter().map(|p| to64(p)).collect();
    let inputs: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    check_grads_fd("gated experts", &g, &params, &inputs, &[1.0], None);
}

#[test]
fn a_gated_mixture_on_the_gpu_equals_the_cpu_on_awkward_shapes() {
    for (b, f, d) in [(1, 3, 1), (17, 5, 3), (65, 17, 16), (257, 8, 33)] {
        let (g, inputs) = gated_experts(b, f, d, 3);
        let init = g.init_params(4).unwrap();
        let mut gg = GpuGraph::new(ctx(), g.clone(), &init, None).unwrap();
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        gg.feed(&refs).unwrap();
        gg.forward_backward().unwrap();
        let got = gg.read_grads().unwrap();
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let run = gcpu::run(&g, &p64, &i64, &[1.0], true).unwrap();
        for (pi, want) in run.param_grads(&g).iter().enumerate() {
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            assert_close_all(&format!("b {b} f {f} d {d} {}", g.params[pi].name), &got[pi], want, 1e-6 + 1e-4 * scale);
        }
    }
}

#[test]
fn the_cross_stitch_and_its_gradients_match_the_cpu() {
    let ctx = ctx();
    for &(rows, t, d) in &[(1, 1, 1), (3, 2, 17), (17, 3, 5), (65, 4, 63), (257, 2, 33)] {
        let mut rng = Rng::new((rows * 5 + t * 11 + d) as u64);
        let (x, a, dy) =
            (rng.vec_f32(rows * t * d, -1.0, 1.0), rng.vec_f32(t * t, -1.0, 1.0), rng.vec_f32(rows * t * d, -1.0, 1.0));
        let (gx, ga, gdy) = (
            ctx.upload(&x, &[rows, t * d]).unwrap(),
            ctx.upload(&a, &[t, t]).unwrap(),
            ctx.upload(&dy, &[rows, t * d]).unwrap(),
        );
        for (transpose, acc) in [(false, false), (true, false), (true, true)] {
            let start = rng.vec_f32(rows * t * d, -1.0, 1.0);
            let gy = ctx.upload(&start, &[rows, t * d]).unwrap();
            ctx.run(&[&kernels::stitch(&ctx, &gx, &ga, &gy, transpose, acc).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::stitch(&to64(&x), &to64(&a), t, d, &mut want, transpose, acc);
            assert_close_all(&format!("stitch {rows}x{t}x{d} {transpose} {acc}"), &ctx.read(&gy).unwrap(), &want, 1e-5);
        }
        let gda = ctx.upload(&vec![0.5; t * t], &[t, t]).unwrap();
        ctx.run(&[&kernels::stitch_grad_alpha(&ctx, &gdy, &gx, &gda, true).unwrap()]).unwrap();
        let mut want = vec![0.5; t * t];
        cpu::stitch_grad_alpha(&to64(&dy), &to64(&x), t, d, &mut want, true);
        assert_close_all(
            &format!("stitch dalpha {rows}x{t}x{d}"),
            &ctx.read(&gda).unwrap(),
            &want,
            1e-5 * (rows * d) as f64,
        );
    }
}

/// Two columns, stitched, then sliced back to each task: the slice and stitch rules.
fn stitched(b: usize, f: usize, d: usize, seed: u64) -> (Graph, Vec<Vec<f32>>) {
    let mut g = Graph::new();
    let x = g.input("x", &[b, f]);
    let w1 = g.param("columns.a.0.weight", &[d, f], Init::Uniform(0.8));
    let w2 = g.param("columns.b.0.weight", &[d, f], Init::Uniform(0.8));
    let h1 = g.linear(x, w1, None, Activation::Tanh).unwrap();
    let h2 = g.linear(x, w2, None, Activation::Tanh).unwrap();
    let both = g.concat(h1, h2).unwrap();
    let alpha = g.param("stitch.0", &[2, 2], Init::Diagonal { diag: 0.9, off: 0.1 });
    let s = g.stitch(both, alpha).unwrap();
    let (sa, sb) = (g.slice(s, 0, d).unwrap(), g.slice(s, d, d).unwrap());
    let mut inputs = vec![Rng::new(seed).vec_f32(b * f, -1.0, 1.0)];
    for (k, part) in [sa, sb].into_iter().enumerate() {
        let w = g.param(&format!("heads.{k}.0.weight"), &[1, d], Init::Uniform(0.8));
        let out = g.linear(part, w, None, Activation::Identity).unwrap();
        let y = g.input(&format!("y{k}"), &[b]);
        let m = g.input(&format!("m{k}"), &[b]);
        g.loss(out, y, m, LossKind::Mse, k).unwrap();
        inputs.push(Rng::new(seed + 1 + k as u64).vec_f32(b, -1.0, 1.0));
        inputs.push(vec![1.0; b]);
    }
    (g, inputs)
}

#[test]
fn slice_and_stitch_pass_finite_difference_checks_and_match_on_the_gpu() {
    let (g, inputs) = stitched(4, 3, 2, 5);
    let params: Vec<Vec<f64>> = g.init_params(6).unwrap().iter().map(|p| to64(p)).collect();
    assert_eq!(params[2], to64(&[0.9, 0.1, 0.1, 0.9]), "the stitch unit starts at 0.9 on its diagonal");
    let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    let w = [1.0, 0.5];
    check_grads_fd("stitch", &g, &params, &i64, &w, None);
    for (b, f, d) in [(1, 3, 1), (17, 5, 3), (65, 17, 16)] {
        let (g, inputs) = stitched(b, f, d, 7);
        let init = g.init_params(8).unwrap();
        let mut gg = GpuGraph::new(ctx(), g.clone(), &init, None).unwrap();
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        gg.set_task_weights(&[1.0, 0.5]).unwrap();
        gg.feed(&refs).unwrap();
        gg.forward_backward().unwrap();
        let got = gg.read_grads().unwrap();
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let run = gcpu::run(&g, &p64, &i64, &[1.0, 0.5], true).unwrap();
        for (pi, want) in run.param_grads(&g).iter().enumerate() {
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            assert_close_all(&format!("b {b} {}", g.params[pi].name), &got[pi], want, 1e-6 + 1e-4 * scale);
        }
    }
}

#[test]
fn dselect_ks_encoding_and_its_gradient_match_the_cpu_and_sum_to_one() {
    let ctx = ctx();
    for &(rows, k, experts) in &[(1usize, 1usize, 2usize), (3, 2, 4), (17, 3, 8), (65, 1, 16), (257, 2, 2)] {
        let m = experts.trailing_zeros() as usize;
        let mut rng = Rng::new((rows * 13 + k * 7 + experts) as u64);
        let s = rng.vec_f32(rows * k * m, 0.0, 1.0);
        let dy = rng.vec_f32(rows * k * experts, -1.0, 1.0);
        let (gs, gy, gdy) = (
            ctx.upload(&s, &[rows, k * m]).unwrap(),
            ctx.empty(&[rows, k * experts]).unwrap(),
            ctx.upload(&dy, &[rows, k * experts]).unwrap(),
        );
        ctx.run(&[&kernels::encode(&ctx, &gs, experts, &gy).unwrap()]).unwrap();
        let y = ctx.read(&gy).unwrap();
        let mut want = vec![0.0; rows * k * experts];
        cpu::encode(&to64(&s), experts, &mut want);
        assert_close_all(&format!("encode {rows}x{k}x{experts}"), &y, &want, 1e-6);
        for sel in y.chunks(experts) {
            let t: f32 = sel.iter().sum();
            assert!(approx::abs_diff_eq!(t, 1.0, epsilon = 1e-5), "a selector's weights sum to one: {t}");
        }
        for acc in [false, true] {
            let start = rng.vec_f32(rows * k * m, -1.0, 1.0);
            let gds = ctx.upload(&start, &[rows, k * m]).unwrap();
            ctx.run(&[&kernels::encode_grad(&ctx, &gdy, &gs, experts, &gds, acc).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::encode_grad(&to64(&dy), &to64(&s), experts, &mut want, acc);
            assert_close_all(
                &format!("encode grad {rows}x{k}x{experts} {acc}"),
                &ctx.read(&gds).unwrap(),
                &want,
                1e-5 * experts as f64,
            );
        }
    }
}

#[test]
fn dselect_ks_gate_passes_finite_difference_checks() {
    // Selector bits through the smooth step, encoded for 4 experts, mixed by the selectors'
    // softmax weights, the gate mixing two blocks of experts' outputs.
    let (b, f, k, e, d) = (3, 3, 2, 4, 2);
    let mut g = Graph::new();
    let x = g.input("x", &[b, f]);
    let blocks = g.input("blocks", &[b, e * d]);
    let ws = g.param("gates.t.selectors.weight", &[k * 2, f], Init::Uniform(0.6));
    let wa = g.param("gates.t.weights.weight", &[k, f], Init::Uniform(0.6));
    let bits = g.linear(x, ws, None, Activation::SmoothStep(1.0)).unwrap();
    let r = g.encode(bits, e).unwrap();
    let logits = g.linear(x, wa, None, Activation::Identity).unwrap();
    let sel = g.softmax(logits).unwrap();
    let gate = g.mix(sel, r).unwrap();
    let mixed = g.mix(gate, blocks).unwrap();
    let wo = g.param("heads.t.0.weight", &[1, d], Init::Uniform(0.8));
    let out = g.linear(mixed, wo, None, Activation::Identity).unwrap();
    let y = g.input("y", &[b]);
    let m = g.input("m", &[b]);
    g.loss(out, y, m, LossKind::Mse, 0).unwrap();
    let mut rng = Rng::new(21);
    let inputs: Vec<Vec<f64>> =
        [rng.vec_f32(b * f, -1.0, 1.0), rng.vec_f32(b * e * d, -1.0, 1.0), rng.vec_f32(b, -1.0, 1.0), vec![1.0; b]]
            .iter()
            .map(|v| to64(v))
            .collect();
    let params: Vec<Vec<f64>> = g.init_params(22).unwrap().iter().map(|p| to64(p)).collect();
    check_grads_fd("mix", &g, &params, &inputs, &[1.0], None);
}
