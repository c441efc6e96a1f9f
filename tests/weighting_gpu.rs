//! Weighting on the GPU: per-task gradients and their Gram matrix against the CPU reference
//! (both targets), the weighting kernels against their references, and short training runs.

mod common;

use common::three_tasks::{cpu_task_grads, model, model_of, spec};
use common::{assert_close, ctx, to64};
use hydra::cpu::Rng;
use hydra::kernels;
use hydra::mtl::weighting::{self, Gram, Target};

use hydra::GpuGraph;
use hydra::Optimizer;

#[test]
fn gpu_task_gradients_and_gram_match_the_cpu_for_both_targets() {
    let batch = 13;
    for (target, linear_heads) in [
        (Target::Representation, false),
        (Target::Params, false),
        (Target::Representation, true),
        (Target::Params, true),
    ] {
        let (m, inputs) = model_of(batch, linear_heads);
        let init = m.graph.init_params(3).unwrap();
        let spec = spec(&m, target);
        let mut gg = GpuGraph::multi_task(ctx(), m.graph.clone(), &init, Some(Optimizer::sgd(0.0)), spec).unwrap();
        assert_eq!(gg.fused_head_groups(), usize::from(linear_heads), "linear heads run as one product");
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        gg.feed(&refs).unwrap();
        gg.gram_phase().unwrap();
        let rows = gg.read_task_grads().unwrap();
        assert_eq!(rows.len(), 3, "one gradient row per task");
        let (mflat, _) = gg.read_gram().unwrap();
        for (t, row) in rows.iter().enumerate() {
            let (p, z) = cpu_task_grads(&m, &init, &inputs, t);
            let want = match target {
                // The GPU's params rows are the flat trunk range with zero alignment gaps, so they
                // are compared by norm; the representation rows element by element.
                Target::Params => p,
                Target::Representation => z,
            };
            if target == Target::Representation {
                let tol: Vec<f64> = want.iter().map(|v| 1e-6 + 1e-4 * v.abs()).collect();
                assert_close(&format!("{target:?} task {t} gradient at z"), row, &want, &tol);
            } else {
                let nrm_gpu: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                let nrm_cpu: f64 = want.iter().map(|v| v * v).sum();
                assert!(
                    approx::abs_diff_eq!(nrm_gpu, nrm_cpu, epsilon = 1e-4 * nrm_cpu),
                    "task {t}: |g|^2 {nrm_gpu} vs {nrm_cpu}"
                );
            }
        }
        // The GPU's Gram matrix against one computed on the CPU from the GPU's own rows.
        let g64: Vec<Vec<f64>> = rows.iter().map(|r| to64(r)).collect();
        let cpu = Gram::of(&g64);
        let tol: Vec<f64> = cpu.m.iter().map(|v| 1e-7 + 1e-5 * v.abs()).collect();
        assert_close(&format!("{target:?} Gram"), &mflat, &cpu.m, &tol);
    }
}

#[test]
fn applied_coefficients_update_like_the_cpu_combination() {
    // One step with SGD lr 1: trunk parameters move by exactly -Σ c_t g_t.
    let (m, inputs) = model(9);
    let init = m.graph.init_params(4).unwrap();
    let spec = spec(&m, Target::Params);
    let mut gg = GpuGraph::multi_task(ctx(), m.graph.clone(), &init, Some(Optimizer::sgd(1.0)), spec).unwrap();
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    gg.feed(&refs).unwrap();
    gg.gram_phase().unwrap();
    let c = [0.5f32, -0.25, 2.0];
    gg.apply_coefficients(&c).unwrap();
    let after = gg.read_params().unwrap();
    let mut want = vec![0.0f64; 0];
    let grads: Vec<Vec<f64>> = (0..3).map(|t| cpu_task_grads(&m, &init, &inputs, t).0).collect();
    let d = weighting::combine(&grads, &c.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    let before: Vec<f64> = init[..m.trunk_params].concat().iter().map(|&v| f64::from(v)).collect();
    want.extend(before.iter().zip(&d).map(|(p, g)| p - g));
    let got: Vec<f32> = after[..m.trunk_params].concat();
    let tol: Vec<f64> = want.iter().map(|v| 1e-5 + 1e-4 * v.abs()).collect();
    assert_close("trunk after one combined step", &got, &want, &tol);
}

#[test]
fn graddrop_uw_gls_and_famo_kernels_match_their_references() {
    let ctx = ctx();
    let mut rng = Rng::new(12);
    // GradDrop over 3 tasks' gradients at a representation of [B, d], rows with padding.
    for (b, d) in [(1, 1), (3, 17), (17, 3), (5, 65), (2, 257)] {
        let (t, p) = (3, b * d);
        let stride = p + 7;
        let g = rng.vec_f32(t * stride, -1.0, 1.0);
        let mut x = rng.vec_f32(p, -1.0, 1.0);
        x[0] = 0.0; // sign(0) = 0
        let (gt, xt, out) =
            (ctx.upload(&g, &[t * stride]).unwrap(), ctx.upload(&x, &[p]).unwrap(), ctx.zeros(&[p]).unwrap());
        for (seed, leak) in [(77, 0.0), (5, 0.3)] {
            let k = kernels::graddrop(&ctx, &gt, &xt, t, (p, d), stride, (seed, leak), &out).unwrap();
            ctx.run(&[&k]).unwrap();
            let rows: Vec<Vec<f64>> = (0..t).map(|r| to64(&g[r * stride..r * stride + p])).collect();
            let u: Vec<f64> = (0..d as u32).map(|k| kernels::graddrop_uniform(k, seed)).collect();
            let want = weighting::graddrop(&rows, &to64(&x), d, &u, f64::from(leak));
            assert_close(&format!("graddrop [{b}, {d}] leak {leak}"), &ctx.read(&out).unwrap(), &want, &vec![1e-5; p]);
        }
    }

    // UW and GLS.
    let s = [0.3f32, -1.2, 2.0];
    let l = [0.7f32, 1.5, 0.05];
    let (st, lt, wt, gs) = (
        ctx.upload(&s, &[3]).unwrap(),
        ctx.upload(&l, &[3]).unwrap(),
        ctx.zeros(&[3]).unwrap(),
        ctx.zeros(&[3]).unwrap(),
    );
    ctx.run(&[&kernels::uw_weights(&ctx, &st, &wt).unwrap(), &kernels::uw_grad(&ctx, &st, &lt, &gs).unwrap()]).unwrap();
    let (ww, wg): (Vec<f64>, Vec<f64>) = (0..3).map(|i| weighting::uw(f64::from(s[i]), f64::from(l[i]))).unzip();
    assert_close("uw weights", &ctx.read(&wt).unwrap(), &ww, &[1e-6; 3]);
    assert_close("uw grad", &ctx.read(&gs).unwrap(), &wg, &[1e-6; 3]);
    // A rank's share of UW's constant term (data-parallel): ½(k − e^{−s}·L), and the shares
    // 1 and 0 of two ranks holding halves of the loss sum to the whole gradient.
    let g = kernels::uw_grad(&ctx, &st, &lt, &gs).unwrap();
    let (u, f) = kernels::uw_grad_params(3, 0.0);
    g.set_params(&ctx, u, f);
    ctx.run(&[&g]).unwrap();
    let zero_share: Vec<f64> = (0..3).map(|i| wg[i] - 0.5).collect();
    assert_close("uw grad, no share", &ctx.read(&gs).unwrap(), &zero_share, &[1e-6; 3]);
    ctx.run(&[&kernels::imtl_weights(&ctx, &st, &wt).unwrap(), &kernels::imtl_grad(&ctx, &st, &lt, &gs).unwrap()])
        .unwrap();
    let (iw, ig): (Vec<f64>, Vec<f64>) = (0..3).map(|i| weighting::imtl_l(f64::from(s[i]), f64::from(l[i]))).unzip();
    assert_close("imtl-l weights", &ctx.read(&wt).unwrap(), &iw, &[1e-5; 3]);
    assert_close("imtl-l grad", &ctx.read(&gs).unwrap(), &ig, &[1e-5; 3]);
    ctx.run(&[&kernels::gls_weights(&ctx, &lt, &wt).unwrap()]).unwrap();
    assert_close("gls", &ctx.read(&wt).unwrap(), &weighting::gls(&to64(&l)), &[1e-5; 3]);

    // FAMO: w_t = z_t / (c·D_t) with c = Σ z/D, so Σ_t w_t = 1 every step; at the first step
    // z is uniform, so every w_t·D_t is the same.
    let min = ctx.zeros(&[3]).unwrap();
    let state = ctx.zeros(&[13]).unwrap();
    let d = kernels::famo(&ctx, &min, &lt, &wt, &state, false, 0.025, 0.001).unwrap();
    let u = kernels::famo(&ctx, &min, &lt, &wt, &state, true, 0.025, 0.001).unwrap();
    for step in 0..3 {
        ctx.write(&lt, &[0.7 - 0.1 * step as f32, 1.5, 0.05 + 0.01 * step as f32]).unwrap();
        ctx.run(&[&d]).unwrap();
        let w = ctx.read(&wt).unwrap();
        let lv = ctx.read(&lt).unwrap();
        let sum: f64 = w.iter().map(|&a| f64::from(a)).sum();
        assert!(approx::abs_diff_eq!(sum, 1.0, epsilon = 1e-5) && w.iter().all(|&x| x > 0.0), "step {step}: {w:?}");
        if step == 0 {
            let wd: Vec<f64> = w.iter().zip(&lv).map(|(a, b)| f64::from(*a) * (f64::from(*b) + 1e-8)).collect();
            assert!(wd.iter().all(|x| approx::abs_diff_eq!(*x, wd[0], epsilon = 1e-5 * wd[0])), "uniform z: {wd:?}");
        }
        ctx.write(&lt, &[0.6 - 0.1 * step as f32, 1.4, 0.05]).unwrap();
        ctx.run(&[&u]).unwrap();
    }
    assert_eq!(ctx.read(&state).unwrap()[12], 3.0, "FAMO counts its updates");
}

mod training {
    use super::ctx;
    use hydra::cpu::Rng;
    use hydra::data::{split_rows, Dataset, Standardizer};
    use hydra::mtl::weighting::{registry, Method, Target, Weighter};
    use hydra::mtl::TaskDef;
    use hydra::train::{Scaling, Splits, TrainSettings, Trainer};
    use hydra::{Activation, Optimizer};

    fn two_tasks(n: usize, seed: u64) -> (Dataset, Vec<TaskDef>) {
        let f = 6;
        let mut rng = Rng::new(seed);
        let x = rng.vec_f32(n * f, -1.0, 1.0);
        let y1: Vec<f32> = (0..n).map(|r| x[r * f] + 0.5 * x[r * f + 1] * x[r * f + 2]).collect();
        let y2: Vec<f32> = (0..n).map(|r| if x[r * f] - x[r * f + 3] > 0.0 { 1.0 } else { 0.0 }).collect();
        let names = (0..f).map(|i| format!("x{i}")).collect();
        let d = Dataset::from_slices(names, x, vec![y1, y2], vec![vec![1.0; n], vec![1.0; n]]).unwrap();
        (d, vec![TaskDef::regression("a", "a"), TaskDef::binary("b", "b")])
    }

    #[test]
    fn every_weighting_method_trains_both_tasks() {
        let (d, tasks) = two_tasks(400, 3);
        let [tr, va, te] = split_rows(d.rows(), [0.8, 0.1, 0.1], 1, None).unwrap();
        let scaling = Scaling::fit(&d.subset(&tr), &tasks, true);
        let splits = Splits {
            train: scaling.apply(&d.subset(&tr)),
            val: scaling.apply(&d.subset(&va)),
            test: scaling.apply(&d.subset(&te)),
        };
        let spec = Trainer::spec_for(6, &[32], &[], Activation::Tanh, &tasks);
        // Equal weighting's parameters after training: every other method must end elsewhere, on
        // every target it takes (static is equal weighting with these weights of 1, by
        // definition; equal weighting's result does not depend on a target).
        let mut ew_params: Option<Vec<Vec<f32>>> = None;
        for entry in registry::REGISTRY {
            let (name, method) = (entry.name, entry.default);
            // Each target the method takes (a loss weighting: the one).
            let targets = if entry.targets.is_empty() { vec![Target::Params] } else { entry.targets.to_vec() };
            for target in targets {
                let settings = TrainSettings {
                    optimizer: Optimizer::adam(1e-2),
                    batch_size: 40,
                    epochs: 12,
                    patience: 0,
                    ..Default::default()
                };
                let w = Weighter::new(method, target, &[1.0, 1.0], 0);
                let mut t = Trainer::with_weighting(ctx(), &spec, &tasks, settings, scaling.clone(), None, w).unwrap();
                let rep = t.fit(&splits, &mut |_| {}).unwrap();
                let params = t.params().unwrap();
                if name == "ew" {
                    ew_params = Some(params);
                } else if name != "static" {
                    let ew = ew_params.as_ref().expect("ew comes first in the registry");
                    // Not merely other bits (a gradient method computing equal weighting through
                    // its own path would round differently): parameters elsewhere.
                    let (a, b) = (ew.concat(), params.concat());
                    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let moved = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
                    assert!(moved > 1e-3, "{name} trains like equal weighting (parameters within {moved} of its)");
                }
                let (first, last) = (&rep.history[0].train_loss, &rep.history.last().unwrap().train_loss);
                for k in 0..2 {
                    assert!(last[k] < 0.8 * first[k], "{name} ({target:?}) task {k}: {} -> {}", first[k], last[k]);
                }
                let h = rep.history.last().unwrap();
                assert!(h.grad_norms.iter().all(|v| v.is_finite() && *v > 0.0), "{name}: {h:?}");
                assert!(
                    (h.grad_cosines[0] - 1.0).abs() < 1e-4 && h.grad_cosines[1].abs() <= 1.0 + 1e-6,
                    "{name}: {h:?}"
                );
            }
        }
    }

    /// Two regression tasks on noise targets of variance 4 and 1/4 that the features cannot
    /// explain (each task's loss stays near its variance), unscaled, all rows for training, and
    /// settings that run long enough for a loss weighting's parameters to settle.
    fn noise_targets() -> (Vec<TaskDef>, Scaling, Splits, TrainSettings) {
        let n = 512;
        let mut rng = Rng::new(9);
        let x = rng.vec_f32(n * 2, -1.0, 1.0);
        let y1: Vec<f32> = (0..n).map(|_| (2.0 * rng.normal()) as f32).collect();
        let y2: Vec<f32> = (0..n).map(|_| (0.5 * rng.normal()) as f32).collect();
        let d = Dataset::from_slices(vec!["a".into(), "b".into()], x, vec![y1, y2], vec![vec![1.0; n], vec![1.0; n]])
            .unwrap();
        let tasks = vec![TaskDef::regression("big", "big"), TaskDef::regression("small", "small")];
        let scaling = Scaling { features: Standardizer::identity(2), targets: Standardizer::identity(2) };
        let splits = Splits { train: d.clone(), val: d.subset(&[]), test: d.subset(&[]) };
        let settings = TrainSettings {
            optimizer: Optimizer::adam(2e-2),
            batch_size: 128,
            epochs: 150,
            patience: 0,
            ..Default::default()
        };
        (tasks, scaling, splits, settings)
    }

    #[test]
    fn uw_on_the_gpu_learns_log_variances_equal_to_log_losses() {
        // Noise targets of variance 4 and 1/4 that the features cannot explain: each task's loss
        // stays near its variance, and UW's s_t must settle at log L_t.
        let (tasks, scaling, splits, settings) = noise_targets();
        let spec = Trainer::spec_for(2, &[], &[], Activation::Identity, &tasks);
        let w = Weighter::new(Method::Uw, Target::Params, &[1.0, 1.0], 0);
        let mut t = Trainer::with_weighting(ctx(), &spec, &tasks, settings, scaling, None, w).unwrap();
        let rep = t.fit(&splits, &mut |_| {}).unwrap();
        let s = rep.params.last().unwrap();
        let losses = &rep.history.last().unwrap().train_loss;
        for k in 0..2 {
            let want = losses[k].ln();
            assert!(
                approx::abs_diff_eq!(f64::from(s[k]), want, epsilon = 0.15),
                "task {k}: s = {}, log L = {want}",
                s[k]
            );
        }
        let weights = &rep.history.last().unwrap().weights;
        assert!(approx::abs_diff_eq!(f64::from(weights[0]), 0.5 * (-f64::from(s[0])).exp(), epsilon = 1e-5));
    }

    #[test]
    fn imtl_learns_loss_scales_that_bring_every_scaled_loss_to_one() {
        // IMTL-L scales each loss as e^s·L − s, whose minimum over s is at e^s·L = 1: on noise
        // targets of variance 4 and 1/4 the learned s_t settle at −log L_t, while IMTL-G
        // combines the scaled losses' gradients of the shared trunk.
        let (tasks, scaling, splits, settings) = noise_targets();
        let spec = Trainer::spec_for(2, &[4], &[], Activation::Tanh, &tasks);
        let w = Weighter::new(Method::Imtl, Target::Params, &[1.0, 1.0], 0);
        let mut t = Trainer::with_weighting(ctx(), &spec, &tasks, settings, scaling, None, w).unwrap();
        let names: Vec<String> = t.param_names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.last().map(String::as_str), Some("weighting.log_scale"));
        let rep = t.fit(&splits, &mut |_| {}).unwrap();
        let s = rep.params.last().unwrap();
        let losses = &rep.history.last().unwrap().train_loss;
        for k in 0..2 {
            let want = -losses[k].ln();
            assert!(
                approx::abs_diff_eq!(f64::from(s[k]), want, epsilon = 0.15),
                "task {k}: s = {}, −log L = {want}",
                s[k]
            );
        }
    }
}

/// What one training step costs in queue submits, readbacks and uploads for each kind of
/// method (README's table): counted on a context of its own, as the difference between runs
/// of 6 and 2 steps (each run ends with one evaluation, which cancels out).
#[test]
fn submits_readbacks_and_uploads_per_step_for_each_kind_of_method() {
    use hydra::data::{Dataset, Split};
    use hydra::mtl::weighting::{registry, Runs, Target, Weighter};
    use hydra::mtl::TaskDef;
    use hydra::train::{Scaling, Splits, TrainSettings, Trainer};
    let n = 64;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let y: Vec<f32> = (0..n).map(|r| x[r * 3] - x[r * 3 + 1]).collect();
    let z: Vec<f32> = (0..n).map(|r| x[r * 3 + 2] * 0.5).collect();
    let names = vec!["a".into(), "b".into(), "c".into()];
    let data = Dataset::from_slices(names, x, vec![y, z], vec![vec![1.0; n], vec![1.0; n]]).unwrap();
    let tasks = [TaskDef::regression("y", "y"), TaskDef::regression("z", "z")];
    let scaling = Scaling::fit(&data, &tasks, true);
    let train = scaling.apply(&data);
    let splits = Splits { val: train.subset(&[]), test: train.subset(&[]), train };
    assert_eq!(splits.reported(), Split::Train);
    let spec = Trainer::spec_for(3, &[8], &[], hydra::Activation::Tanh, &tasks);
    let per_step = |entry: &registry::Entry| -> [u64; 3] {
        let count = |steps: usize| {
            let own = hydra::Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
            let settings = TrainSettings { batch_size: 8, steps: Some(steps), shuffle: false, ..Default::default() };
            let target = entry.targets.first().copied().unwrap_or(Target::Params);
            let w = Weighter::new(entry.default, target, &[1.0, 1.0], 0);
            let mut tr =
                Trainer::with_weighting(own.clone(), &spec, &tasks, settings, scaling.clone(), None, w).unwrap();
            let before = own.counters();
            tr.fit(&splits, &mut |_| {}).unwrap();
            let after = own.counters();
            [after.submits - before.submits, after.readbacks - before.readbacks, after.uploads - before.uploads]
        };
        let (a, b) = (count(2), count(6));
        [0, 1, 2].map(|k| (b[k] - a[k]) / 4)
    };
    let mut seen = std::collections::BTreeMap::new();
    for entry in registry::REGISTRY {
        let c = per_step(entry);
        eprintln!("{:<12} {:?}: submits {}, readbacks {}, uploads {}", entry.name, entry.runs, c[0], c[1], c[2]);
        // Uploads: the batch, and the optimizer's per-step values (its bias corrections).
        let want = match entry.runs {
            // One submit; nothing read back.
            Runs::Fixed | Runs::HostPerEpoch | Runs::GpuInStep => [1, 0, 2],
            // The step's new loss weights are a third upload.
            Runs::HostPerStep => [1, 0, 3],
            // Phase one; the Gram matrix and the losses in one readback, whose copy is a submit
            // of its own; phase two, with the coefficients uploaded.
            Runs::GramThenHost => [3, 1, 3],
            // The same, with GradDrop's seed for the step in place of the coefficients.
            Runs::GpuElementwise => [3, 1, 3],
        };
        assert_eq!(c, want, "{}: [submits, readbacks, uploads] per step", entry.name);
        seen.insert(format!("{:?}", entry.runs), c);
    }
    assert_eq!(seen.len(), 6, "every kind of method measured");
}

/// FAMO's kernel against its CPU reference over several steps (the state carried on both
/// sides), for 2, 3 and 5 tasks: the same ξ, Adam moments, kept losses and weights. (With one
/// task ξ's gradient is zero and Adam would only amplify f32 rounding: its weight is 1, checked
/// apart.)
#[test]
fn famo_matches_its_cpu_reference_step_after_step() {
    use hydra::cpu::{self, Rng};
    let ctx = common::ctx();
    for t in [1usize, 2, 3, 5] {
        let mut rng = Rng::new(t as u64);
        let min: Vec<f32> = vec![0.0; t];
        let one_task = t == 1;
        let gmin = ctx.upload(&min, &[t]).unwrap();
        let gstate = ctx.zeros(&[4 * t + 1]).unwrap();
        let gw = ctx.zeros(&[t]).unwrap();
        let gl = ctx.zeros(&[t]).unwrap();
        let mut state = vec![0f64; 4 * t + 1];
        let mut w = vec![0f64; t];
        let mut losses: Vec<f32> = rng.vec_f32(t, 0.5, 2.0);
        let weights = hydra::kernels::famo(&ctx, &gmin, &gl, &gw, &gstate, false, 0.025, 0.001).unwrap();
        let update = hydra::kernels::famo(&ctx, &gmin, &gl, &gw, &gstate, true, 0.025, 0.001).unwrap();
        for step in 0..8 {
            // The step's losses give the weights; after the update the same batch's losses have
            // fallen, at different speeds per task, and move ξ.
            ctx.write(&gl, &losses).unwrap();
            ctx.run(&[&weights]).unwrap();
            let l64: Vec<f64> = losses.iter().map(|&v| f64::from(v)).collect();
            cpu::famo_weights(&vec![0.0; t], &l64, &mut w, &mut state);
            losses.iter_mut().enumerate().for_each(|(k, l)| *l *= 0.9 - 0.05 * k as f32 + 0.02 * rng.normal() as f32);
            ctx.write(&gl, &losses).unwrap();
            ctx.run(&[&update]).unwrap();
            let l64: Vec<f64> = losses.iter().map(|&v| f64::from(v)).collect();
            cpu::famo_update(&vec![0.0; t], &l64, &mut state, 0.025, 0.001);
            let got_w = ctx.read(&gw).unwrap();
            let got_s = ctx.read(&gstate).unwrap();
            common::assert_close_all(&format!("famo T={t} step {step} weights"), &got_w, &w, 1e-4);
            if one_task {
                assert!((got_w[0] - 1.0).abs() < 1e-5, "one task's weight is 1: {got_w:?}");
                continue;
            }
            common::assert_close_all(&format!("famo T={t} step {step} state"), &got_s, &state, 1e-4);
        }
        assert!(one_task || state[..t].iter().any(|&x| x != 0.0), "T={t}: ξ moved");
    }
}

/// STCH: its weights are the derivatives of its scalarisation (log losses in the warm-up,
/// then μ·T·log Σ exp(ℓ/μ) around the warm-up epoch's mean losses), by finite differences on
/// the CPU reference; and the kernel follows that reference through every phase.
#[test]
fn stch_weights_are_its_scalarisations_derivatives_and_the_kernel_follows_them() {
    use hydra::mtl::weighting::stch_weights;
    let ctx = common::ctx();
    let (t, warm, mu) = (3usize, 2usize, 0.7f64);
    let scalar = |l: &[f64], z: &[f64]| {
        let ell: Vec<f64> = l.iter().zip(z).map(|(a, b)| (a / b + 1e-20).ln()).collect();
        mu * t as f64 * ell.iter().map(|x| (x / mu).exp()).sum::<f64>().ln()
    };
    let mut state = vec![0.0f64; t + 2];
    let gstate = ctx.zeros(&[t + 2]).unwrap();
    let (gl, gw) = (ctx.zeros(&[t]).unwrap(), ctx.zeros(&[t]).unwrap());
    let d = hydra::kernels::stch(&ctx, &gl, &gw, &gstate, warm, mu as f32).unwrap();
    let mut rng = Rng::new(5);
    for epoch in 0..5 {
        state[t + 1] = epoch as f64;
        let mut gs = ctx.read(&gstate).unwrap();
        gs[t + 1] = epoch as f32;
        ctx.write(&gstate, &gs).unwrap();
        for _ in 0..3 {
            let l: Vec<f32> = rng.vec_f32(t, 0.2, 2.0);
            let l64: Vec<f64> = l.iter().map(|&v| f64::from(v)).collect();
            let before = state.clone();
            let w = stch_weights(&l64, &mut state, warm, mu);
            ctx.write(&gl, &l).unwrap();
            ctx.run(&[&d]).unwrap();
            common::assert_close_all(&format!("stch epoch {epoch}"), &ctx.read(&gw).unwrap(), &w, 1e-4);
            common::assert_close_all(&format!("stch state {epoch}"), &ctx.read(&gstate).unwrap(), &state, 1e-4);
            if epoch <= warm {
                for k in 0..t {
                    assert!((w[k] - 1.0 / l64[k]).abs() < 1e-9, "warm-up: the weights of Σ log L");
                }
            } else {
                let count = before[t].max(1.0);
                let z: Vec<f64> = (0..t).map(|k| before[k] / count).collect();
                for k in 0..t {
                    let (mut up, mut dn) = (l64.clone(), l64.clone());
                    up[k] += 1e-6;
                    dn[k] -= 1e-6;
                    let fd = (scalar(&up, &z) - scalar(&dn, &z)) / 2e-6;
                    assert!((fd - w[k]).abs() < 1e-5 * (1.0 + fd.abs()), "epoch {epoch} task {k}: {fd} vs {}", w[k]);
                }
            }
        }
    }
    assert_eq!(state[t], 3.0, "the warm-up epoch's three steps were summed");
}
