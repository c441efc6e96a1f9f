//! The GPU side of the methods that keep per-task state (DB-MTL's and MoCo's moving averages,
//! ExcessMTL's sums of squares) and of the heads' weights: the kernels against their CPU
//! references on awkward shapes, and whole phases against the CPU step after step.

mod common;

use common::three_tasks::{model, spec};
use common::{assert_close, ctx, to64};
use hydra::autograd::cpu as gcpu;
use hydra::cpu::{self as hcpu, Rng};
use hydra::kernels;
use hydra::mtl::gpu::{GpuLossWeighting, SlotState, TaskGradSpec};
use hydra::mtl::weighting::{Gram, Method, Target, Weighter};
use hydra::nn::MultiTaskModel;
use hydra::{GpuGraph, Optimizer};

#[test]
fn mix_rows_excess_rows_and_gram_blocks_match_their_cpu_references_on_awkward_shapes() {
    let ctx = ctx();
    let mut rng = Rng::new(31);
    for t in [1, 2, 3] {
        for p in [1, 3, 17, 63, 65, 257, 1031] {
            let stride = p + (8 - p % 8) % 8 + 8 * (p % 3);
            let rows = rng.vec_f32(2 * t * stride, -2.0, 2.0);
            let m: Vec<f32> = rng.vec_f32(2 * t, -1.5, 1.5);
            let (rt, mt) = (ctx.upload(&rows, &[rows.len()]).unwrap(), ctx.upload(&m, &[2 * t]).unwrap());
            ctx.run(&[&kernels::mix_rows(&ctx, &rt, &mt, t, p, stride).unwrap()]).unwrap();
            let mut want = to64(&rows);
            hcpu::mix_rows(&mut want, &to64(&m), t, p, stride);
            let tol: Vec<f64> = want.iter().map(|v| 1e-6 * (1.0 + v.abs())).collect();
            assert_close(&format!("mix_rows T={t} P={p}"), &ctx.read(&rt).unwrap(), &want, &tol);

            // Sums of squares start from a positive running sum (a later step).
            let mut rows2 = rows.clone();
            for v in &mut rows2[t * stride..] {
                *v = v.abs();
            }
            let rt = ctx.upload(&rows2, &[rows2.len()]).unwrap();
            let wt = ctx.zeros(&[t]).unwrap();
            ctx.run(&[&kernels::excess_rows(&ctx, &rt, &wt, t, p, stride).unwrap()]).unwrap();
            let mut want = to64(&rows2);
            let w = hcpu::excess_rows(&mut want, t, p, stride);
            let tol: Vec<f64> = want.iter().map(|v| 1e-6 * (1.0 + v.abs())).collect();
            assert_close(&format!("excess_rows sums T={t} P={p}"), &ctx.read(&rt).unwrap(), &want, &tol);
            let tol: Vec<f64> = w.iter().map(|v| 1e-5 * (1.0 + v.abs())).collect();
            assert_close(&format!("excess_rows statistic T={t} P={p}"), &ctx.read(&wt).unwrap(), &w, &tol);

            // The Gram matrix of the first t rows into the top-left block of a 2t×2t matrix.
            let mt = ctx.upload(&vec![7.0; 4 * t * t], &[4 * t * t]).unwrap();
            let gt = ctx.upload(&rows, &[rows.len()]).unwrap();
            ctx.run(&[&kernels::gram_block(&ctx, &gt, t, p, stride, &mt, 2 * t).unwrap()]).unwrap();
            let g: Vec<Vec<f64>> = (0..t).map(|i| to64(&rows[i * stride..i * stride + p])).collect();
            let gram = Gram::of(&g);
            let want: Vec<f64> = (0..4 * t * t)
                .map(|k| if k / (2 * t) < t && k % (2 * t) < t { gram.at(k / (2 * t), k % (2 * t)) } else { 7.0 })
                .collect();
            let tol: Vec<f64> = want.iter().map(|v| 1e-5 * (1.0 + v.abs())).collect();
            assert_close(&format!("gram_block T={t} P={p}"), &ctx.read(&mt).unwrap(), &want, &tol);
        }
    }
}

fn graph(m: &MultiTaskModel, init: &[Vec<f32>], state: SlotState, lr: f32) -> GpuGraph {
    let spec = TaskGradSpec { state, ..spec(m, Target::Params) };
    GpuGraph::multi_task(ctx(), m.graph.clone(), init, Some(Optimizer::sgd(lr)), spec).unwrap()
}

fn rel_tol(v: &[f64], r: f64) -> Vec<f64> {
    let scale = v.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    vec![r * (1.0 + scale); v.len()]
}

#[test]
fn moving_averages_on_the_gpu_follow_the_cpu_step_after_step() {
    let (m, inputs) = model(11);
    let init = m.graph.init_params(5).unwrap();
    let mut gg = graph(&m, &init, SlotState::Momentum, 0.05);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    gg.feed(&refs).unwrap();
    assert_eq!(gg.gram_rows().unwrap(), 6, "the gradients and their averages");
    let mut w = Weighter::new(Method::by_name("moco").unwrap(), Target::Params, &[1.0; 3], 0);
    // The averages as the CPU tracks them, from the GPU's own gradient rows.
    let mut y: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for step in 0..3 {
        let before = gg.read_params().unwrap();
        gg.gram_phase().unwrap();
        let g: Vec<Vec<f64>> = gg.read_task_grads().unwrap().iter().map(|r| to64(r)).collect();
        if step == 0 {
            y = vec![vec![0.0; g[0].len()]; 3];
        }
        let read = gg.read_gram_and_stats().unwrap();
        let (joint, losses) = (read.gram, read.losses);
        assert!(read.stats.is_none());
        let rows: Vec<Vec<f64>> = g.iter().chain(&y).cloned().collect();
        let want = Gram::of(&rows);
        assert_close(&format!("joint Gram, step {step}"), &joint, &want.m, &rel_tol(&want.m, 1e-5));
        let plan = w.plan(&want, &to64(&losses), 0.05, None).unwrap();
        let c32: Vec<f32> = plan.coef.iter().map(|&v| v as f32).collect();
        let mix: Vec<f32> = plan.mix.as_ref().unwrap().iter().map(|&v| v as f32).collect();
        gg.apply_plan(&c32, Some(&mix), None).unwrap();
        // The trunk moved by −lr·Σ coef·rows (the rows are the flat trunk range, each
        // parameter at its offset in the store).
        let d: Vec<f64> = (0..g[0].len()).map(|k| plan.coef.iter().zip(&rows).map(|(c, r)| c * r[k]).sum()).collect();
        let after = gg.read_params().unwrap();
        for p in 0..m.trunk_params {
            let at = gg.store().offsets[p];
            let want: Vec<f64> = before[p].iter().enumerate().map(|(k, &v)| f64::from(v) - 0.05 * d[at + k]).collect();
            let what = format!("{} after step {step}", m.graph.params[p].name);
            assert_close(&what, &after[p], &want, &rel_tol(&want, 1e-5));
        }
        let mx = plan.mix.unwrap();
        for (i, yi) in y.iter_mut().enumerate() {
            for (k, v) in yi.iter_mut().enumerate() {
                *v = mx[i] * *v + mx[3 + i] * g[i][k];
            }
        }
    }
    // The averages are the weighting's GPU state, so checkpoints carry them.
    let kept = gg.read_weighting_state().unwrap().unwrap();
    let stride = kept.len() / 3;
    let flat_y: Vec<f64> =
        y.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0.0, stride - r.len()))).collect();
    assert_close("averages kept on the GPU", &kept, &flat_y, &rel_tol(&flat_y, 1e-5));
}

#[test]
fn excess_statistics_on_the_gpu_follow_the_cpu_step_after_step() {
    let (m, inputs) = model(10);
    let init = m.graph.init_params(6).unwrap();
    let mut gg = graph(&m, &init, SlotState::SquaredSum, 0.05);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    gg.feed(&refs).unwrap();
    let mut acc: Vec<f64> = Vec::new();
    for step in 0..3 {
        gg.gram_phase().unwrap();
        let g: Vec<Vec<f64>> = gg.read_task_grads().unwrap().iter().map(|r| to64(r)).collect();
        let p = g[0].len();
        if step == 0 {
            acc = vec![0.0; 3 * p];
        }
        let mut rows: Vec<f64> = g.concat();
        rows.extend(&acc);
        let want = hcpu::excess_rows(&mut rows, 3, p, p);
        acc = rows[3 * p..].to_vec();
        let read = gg.read_gram_and_stats().unwrap();
        assert_eq!(read.gram.len(), 9, "ExcessMTL's Gram matrix is the T×T one");
        assert_close(&format!("statistic, step {step}"), &read.stats.unwrap(), &want, &rel_tol(&want, 1e-5));
        gg.apply_plan(&[1.0, 0.5, 2.0], None, None).unwrap();
    }
}

#[test]
fn head_weights_scale_each_heads_gradient_and_nothing_else() {
    // SGD with lr 1 and coefficients 1: the trunk moves by the sum of the task gradients, each
    // head by its task's gradient times its weight.
    let (m, inputs) = model(9);
    let init = m.graph.init_params(7).unwrap();
    let mut gg = graph(&m, &init, SlotState::None, 1.0);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    gg.feed(&refs).unwrap();
    gg.gram_phase().unwrap();
    let h = [0.5f32, -2.0, 3.0];
    gg.apply_plan(&[1.0; 3], None, Some(&h)).unwrap();
    let after = gg.read_params().unwrap();
    let owners = m.graph.param_owners();
    let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
    let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    let per_task: Vec<Vec<Vec<f64>>> = (0..3)
        .map(|t| {
            let mut w = vec![0.0; 3];
            w[t] = 1.0;
            gcpu::run(&m.graph, &p64, &i64, &w, true).unwrap().param_grads(&m.graph)
        })
        .collect();
    let mut heads_seen = [0; 3];
    for (p, owner) in owners.iter().enumerate() {
        let want: Vec<f64> = match (p < m.trunk_params, owner) {
            (true, _) => {
                assert!(owner.is_none(), "trunk parameter {p} belongs to no one task");
                (0..p64[p].len()).map(|k| p64[p][k] - (0..3).map(|t| per_task[t][p][k]).sum::<f64>()).collect()
            }
            (false, Some(t)) => {
                heads_seen[*t] += 1;
                (0..p64[p].len()).map(|k| p64[p][k] - f64::from(h[*t]) * per_task[*t][p][k]).collect()
            }
            (false, None) => panic!("head parameter {} has no task", m.graph.params[p].name),
        };
        let name = &m.graph.params[p].name;
        assert_close(&format!("{name} after the step"), &after[p], &want, &rel_tol(&want, 1e-5));
    }
    assert_eq!(heads_seen, [4, 4, 4], "each head's two layers (weight and bias) were checked");
}

#[test]
fn famo_updates_its_logits_from_the_same_batch_re_evaluated_after_the_update() {
    // LibMTL's FAMO: after the optimizer step, the same batch's losses again (update_w).
    let (m, inputs) = model(12);
    let init = m.graph.init_params(9).unwrap();
    let famo = GpuLossWeighting::Famo { lr: 0.025, weight_decay: 0.001 };
    let spec = TaskGradSpec { loss_weighting: famo, ..spec(&m, Target::Params) };
    let mut gg = GpuGraph::multi_task(ctx(), m.graph.clone(), &init, Some(Optimizer::adam(0.05)), spec).unwrap();
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    gg.feed(&refs).unwrap();
    let mut state = vec![0.0f64; 13];
    for step in 0..3 {
        gg.forward().unwrap();
        let before = gg.losses().unwrap();
        gg.step().unwrap();
        let after_step = gg.losses().unwrap();
        // The losses left by the step are those of the updated parameters on this batch.
        gg.forward().unwrap();
        assert_eq!(gg.losses().unwrap(), after_step, "step {step}: the step ends with a forward pass");
        assert_ne!(before, after_step, "step {step}: the update changed the losses");
        let mut w = vec![0.0; 3];
        hcpu::famo_weights(&[0.0; 3], &to64(&before), &mut w, &mut state);
        hcpu::famo_update(&[0.0; 3], &to64(&after_step), &mut state, 0.025, 0.001);
        let got = gg.read_weighting_state().unwrap().unwrap();
        assert_close(&format!("FAMO's state after step {step}"), &got, &state, &rel_tol(&state, 1e-4));
    }
}
