//! Task affinity (TAG's lookahead): the GPU probe against the CPU computation, a probe that
//! changes nothing, the grouping search, and affinity recovering planted task pairs.

mod common;

use common::three_tasks::{cpu_task_grads, model, spec};
use common::{assert_close, ctx, to64};
use hydra::autograd::cpu as gcpu;
use hydra::cpu::Rng;
use hydra::data::{split_rows, Dataset};
use hydra::mtl::affinity::{best_groups, group_score, rank_correlation, Affinity};
use hydra::mtl::gpu::TaskGradSpec;
use hydra::mtl::weighting::{Gram, Target};
use hydra::mtl::TaskDef;
use hydra::train::{Scaling, Splits, TrainSettings, Trainer};
use hydra::{Activation, GpuGraph, Optimizer};

#[test]
fn the_probe_gives_the_cpu_lookahead_losses_and_gram_matrix() {
    let (m, inputs) = model(13);
    let init = m.graph.init_params(21).unwrap();
    let lr = 0.3f32;
    for (target, weights) in [(Target::Representation, [1.0f32, 1.0, 1.0]), (Target::Params, [0.5, 2.0, 1.5])] {
        let spec = TaskGradSpec { affinity_lr: Some(lr), ..spec(&m, target) };
        let mut gg = GpuGraph::multi_task(ctx(), m.graph.clone(), &init, Some(Optimizer::adam(1e-3)), spec).unwrap();
        gg.set_task_weights(&weights).unwrap();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        gg.feed(&refs).unwrap();
        gg.affinity_probe().unwrap();
        let r = gg.read_affinity().unwrap();
        assert_eq!(gg.read_params().unwrap(), init, "{target:?}: the probe puts the parameters back");

        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let w64: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
        let losses = |p: &[Vec<f64>]| gcpu::run(&m.graph, p, &i64, &w64, false).unwrap().losses;
        let before = losses(&p64);
        assert_close(&format!("{target:?} losses before"), &r.before, &before, &[1e-5; 3]);
        let grads: Vec<Vec<f64>> = (0..3).map(|t| cpu_task_grads(&m, &init, &inputs, t).0).collect();
        for (i, g) in grads.iter().enumerate() {
            // The shared parameters after task i's own SGD step (its unweighted gradient).
            let mut p = p64.clone();
            let mut k = 0;
            for q in p.iter_mut().take(m.trunk_params) {
                for v in q.iter_mut() {
                    *v -= f64::from(lr) * g[k];
                    k += 1;
                }
            }
            let want = losses(&p);
            let tol: Vec<f64> = want.iter().map(|v| 1e-5 + 1e-4 * v.abs()).collect();
            assert_close(&format!("{target:?} losses after task {i}'s step"), &r.after[i], &want, &tol);
        }
        // The rows carry the loss weights: M_ij = w_i w_j ⟨g_i, g_j⟩.
        let gram = Gram::of(&grads);
        let want: Vec<f64> = (0..9).map(|k| w64[k / 3] * w64[k % 3] * gram.m[k]).collect();
        let tol: Vec<f64> = want.iter().map(|v| 1e-6 + 1e-4 * v.abs()).collect();
        assert_close(&format!("{target:?} Gram matrix"), &r.gram, &want, &tol);
    }
}

/// Four regression tasks in two pairs: each pair from one latent function of its own four
/// features (the pairs independent), each task the latent plus a term of its own and noise.
fn two_pairs(n: usize, seed: u64) -> (Dataset, Vec<TaskDef>) {
    let mut rng = Rng::new(seed);
    let x = rng.vec_f32(n * 8, -1.0, 1.0);
    let f = |r: usize, o: usize| (x[r * 8 + o] + x[r * 8 + o + 1]).sin() + x[r * 8 + o + 2] * x[r * 8 + o + 3];
    let mut labels = Vec::new();
    for (o, extra) in [(0, 0), (0, 1), (4, 4), (4, 5)] {
        labels.push(
            (0..n).map(|r| f(r, o) + 0.3 * x[r * 8 + extra].powi(2) + 0.05 * rng.normal() as f32).collect::<Vec<f32>>(),
        );
    }
    let names = (0..8).map(|i| format!("x{i}")).collect();
    let d = Dataset::from_slices(names, x, labels, vec![vec![1.0; n]; 4]).unwrap();
    let tasks =
        ["a1", "a2", "b1", "b2"].iter().enumerate().map(|(i, t)| TaskDef::regression(t, &format!("y{i}"))).collect();
    (d, tasks)
}

fn settings(every: usize) -> TrainSettings {
    TrainSettings {
        optimizer: Optimizer::adam(1e-2),
        batch_size: 32,
        epochs: 6,
        patience: 0,
        affinity_every: every,
        ..Default::default()
    }
}

fn splits_of(d: &Dataset, tasks: &[TaskDef], seed: u64) -> (Splits, Scaling) {
    let [tr, va, te] = split_rows(d.rows(), [0.8, 0.1, 0.1], seed, None).unwrap();
    let (train, val, test) = (d.subset(&tr), d.subset(&va), d.subset(&te));
    let scaling = Scaling::fit(&train, tasks, true);
    (Splits { train: scaling.apply(&train), val: scaling.apply(&val), test: scaling.apply(&test) }, scaling)
}

#[test]
fn measuring_affinity_changes_nothing_in_the_run() {
    let (d, tasks) = two_pairs(200, 3);
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(8, &[16], &[], Activation::Tanh, &tasks);
    let run = |every: usize| {
        let mut tr = Trainer::new(ctx(), &spec, &tasks, settings(every), scaling.clone(), None).unwrap();
        let rep = tr.fit(&splits, &mut |_| {}).unwrap();
        (rep.params, tr.affinity().cloned(), rep.history.last().unwrap().affinity.clone())
    };
    let (without, none, empty) = run(0);
    let (with, aff, last) = run(3);
    assert!(none.is_none() && empty.is_empty());
    let bits = |p: &[Vec<f32>]| p.concat().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert!(bits(&with) == bits(&without), "a run that measures affinity ends with the same parameters, bit for bit");
    let aff = aff.expect("measured");
    // 160 training rows in batches of 32: 5 steps an epoch, 30 in all, a probe every 3.
    assert_eq!(aff.probes, 10);
    assert_eq!(last, aff.mean(), "the last evaluation carries the affinity so far");
}

#[test]
fn affinity_recovers_two_planted_pairs_of_tasks_over_five_seeds() {
    for seed in 0..5 {
        let (d, tasks) = two_pairs(400, 10 + seed);
        let (splits, scaling) = splits_of(&d, &tasks, seed);
        let spec = Trainer::spec_for(8, &[32], &[], Activation::Tanh, &tasks);
        let mut s = settings(2);
        s.seed = seed;
        let mut tr = Trainer::new(ctx(), &spec, &tasks, s, scaling, None).unwrap();
        tr.fit(&splits, &mut |_| {}).unwrap();
        let aff = tr.affinity().unwrap();
        let z = aff.mean();
        for j in 0..4 {
            let partner = j ^ 1;
            for i in (0..4).filter(|&i| i / 2 != j / 2) {
                assert!(
                    z[partner * 4 + j] > z[i * 4 + j],
                    "seed {seed}: task {j} gains {} from its partner, {} from task {i}: {z:?}",
                    z[partner * 4 + j],
                    z[i * 4 + j]
                );
            }
        }
        assert_eq!(best_groups(&z, 4, 2), vec![vec![0, 1], vec![2, 3]], "seed {seed}: {z:?}");
        let est = aff.estimate();
        let rho = rank_correlation(&z, &est, 4);
        assert!(rho > 0.5, "seed {seed}: the first-order estimate ranks the pairs alike (ρ = {rho}): {est:?}");
    }
}

#[test]
fn the_exact_grouping_is_the_best_of_every_partition_and_the_search_finds_planted_blocks() {
    let mut rng = Rng::new(4);
    // Exact: against a brute force over every assignment of 6 tasks to 3 labelled groups.
    let t = 6;
    let z: Vec<f64> = (0..t * t).map(|_| rng.normal()).collect();
    for k in 1..=t {
        let got = best_groups(&z, t, k);
        assert_eq!(got.len(), k);
        assert_eq!(got.iter().map(Vec::len).sum::<usize>(), t);
        let mut best = f64::NEG_INFINITY;
        for code in 0..k.pow(t as u32) {
            let a: Vec<usize> = (0..t).map(|i| code / k.pow(i as u32) % k).collect();
            let groups: Vec<Vec<usize>> = (0..k).map(|g| (0..t).filter(|&i| a[i] == g).collect()).collect();
            if groups.iter().all(|g| !g.is_empty()) {
                best = best.max(group_score(&z, t, &groups));
            }
        }
        assert!((group_score(&z, t, &got) - best).abs() < 1e-12, "k = {k}");
    }
    // Above the exact size: 14 tasks in blocks of 5, 5 and 4 with affinity inside the blocks.
    let t = 14;
    let block = |i: usize| {
        if i < 5 {
            0
        } else if i < 10 {
            1
        } else {
            2
        }
    };
    let z: Vec<f64> =
        (0..t * t).map(|k| if block(k / t) == block(k % t) { 1.0 } else { -0.5 } + 0.1 * rng.normal()).collect();
    let want: Vec<Vec<usize>> = vec![(0..5).collect(), (5..10).collect(), (10..14).collect()];
    assert_eq!(best_groups(&z, t, 3), want);
}

#[test]
fn affinity_averages_probes_and_counts_conflicts() {
    let mut a = Affinity::new(2);
    // Task 0's step lowers task 1's loss from 2 to 1.5; task 1's raises task 0's from 1 to 1.1.
    a.add(&[1.0, 2.0], &[vec![0.9, 1.5], vec![1.1, 1.0]], &[4.0, -1.0, -1.0, 9.0], 0.1);
    a.add(&[1.0, 0.0], &[vec![0.8, 0.0], vec![1.0, 0.0]], &[4.0, 1.0, 1.0, 0.0], 0.1);
    let z = a.mean();
    // Z[0→1] only from the first probe (task 1 has no loss in the second); Z[1→0] = (−0.1 + 0)/2.
    assert!((z[1] - 0.25).abs() < 1e-12 && (z[2] + 0.05).abs() < 1e-12, "{z:?}");
    assert!((z[0] - 0.15).abs() < 1e-12, "task 0 on itself over both probes: {z:?}");
    assert!((a.estimate()[1] + 0.1 / 2.0).abs() < 1e-12, "the second probe has no loss for task 1");
    // The second probe's task 1 has no gradient: one pair, one conflict.
    assert_eq!(a.conflict_share()[1], 1.0);
    assert!((a.received()[0] + 0.05).abs() < 1e-12, "task 0 receives Z[1→0] averaged over both probes");
}

#[test]
fn the_lookahead_kernel_matches_its_cpu_reference_on_awkward_shapes() {
    let ctx = ctx();
    let mut rng = Rng::new(17);
    for n in [1, 3, 17, 63, 65, 257, 1031] {
        let saved = rng.vec_f32(n, -1.0, 1.0);
        let g = rng.vec_f32(n, -2.0, 2.0);
        let w = [0.5f32, 0.0, 2.0];
        let (st, gt, wt, out) = (
            ctx.upload(&saved, &[n]).unwrap(),
            ctx.upload(&g, &[n]).unwrap(),
            ctx.upload(&w, &[3]).unwrap(),
            ctx.zeros(&[n]).unwrap(),
        );
        for (task, &wt_task) in w.iter().enumerate() {
            ctx.run(&[&hydra::kernels::lookahead(&ctx, &st, &gt, &wt, task, 0.3, &out).unwrap()]).unwrap();
            // θ = saved − lr·g/w, and a task of weight 0 has no gradient to undo: θ = saved.
            let want = hydra::cpu::lookahead(&to64(&saved), &to64(&g), f64::from(wt_task), 0.3);
            assert_close(&format!("lookahead n={n} task {task}"), &ctx.read(&out).unwrap(), &want, &vec![1e-6; n]);
        }
    }
}

#[test]
fn a_resumed_run_continues_its_affinity_exactly() {
    let (d, tasks) = two_pairs(200, 5);
    let (splits, scaling) = splits_of(&d, &tasks, 1);
    let spec = Trainer::spec_for(8, &[16], &[], Activation::Tanh, &tasks);
    let make = || Trainer::new(ctx(), &spec, &tasks, settings(2), scaling.clone(), None).unwrap();
    let mut whole = make();
    let mut snap = None;
    whole
        .fit_with_checkpoints(&splits, &mut |_| {}, 7, &mut |t| {
            if snap.is_none() {
                snap = Some(t.snapshot()?);
            }
            Ok(())
        })
        .unwrap();
    let snap = snap.expect("a snapshot at step 7");
    assert_eq!(snap.state.affinity.as_ref().map(|a| a.probes), Some(4), "probes at steps 0, 2, 4, 6");
    let mut resumed = make();
    resumed.restore(snap).unwrap();
    resumed.fit(&splits, &mut |_| {}).unwrap();
    assert_eq!(resumed.affinity(), whole.affinity(), "the same running means, bit for bit");
}
