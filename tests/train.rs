//! Training end to end: on the energy data both test RMSEs fall far below predicting the
//! training mean; on a synthetic two-task problem both losses fall; partial batches and
//! missing labels train without NaN.

mod common;

use std::path::Path;

use common::ctx;
use hydra::cpu::Rng;
use hydra::data::{split_rows, Dataset, Table};
use hydra::mtl::TaskDef;
use hydra::train::{Scaling, Splits, TrainSettings, Trainer};
use hydra::{Activation, Optimizer};

fn energy() -> (Dataset, Vec<TaskDef>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/energy_efficiency.csv");
    let table = Table::read(&path).unwrap();
    let tasks = vec![TaskDef::regression("heating", "heating_load"), TaskDef::regression("cooling", "cooling_load")];
    (Dataset::from_table(&table, None, &[], &tasks, None).unwrap(), tasks)
}

fn splits_of(d: &Dataset, tasks: &[TaskDef], seed: u64) -> (Splits, Scaling) {
    let [tr, va, te] = split_rows(d.rows(), [0.8, 0.1, 0.1], seed, None).unwrap();
    let (train, val, test) = (d.subset(&tr), d.subset(&va), d.subset(&te));
    let scaling = Scaling::fit(&train, tasks, true);
    (Splits { train: scaling.apply(&train), val: scaling.apply(&val), test: scaling.apply(&test) }, scaling)
}

#[test]
fn energy_multi_task_test_rmse_is_far_below_predicting_the_mean() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[64, 64], &[], Activation::Relu, &tasks);
    let settings = TrainSettings {
        optimizer: Optimizer::adam(3e-3),
        batch_size: 64,
        epochs: 60,
        patience: 0,
        ..Default::default()
    };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling.clone(), None).unwrap();
    let rep = tr.fit(&splits, &mut |_| {}).unwrap();
    for (t, task) in tasks.iter().enumerate() {
        // Predicting the training mean, on the test rows, in original units.
        let mean = scaling.targets.mean[t] as f64;
        let std = scaling.targets.std[t] as f64;
        let y: Vec<f64> = splits.test.labels[t].iter().map(|&v| v as f64 * std + mean).collect();
        let mean_rmse = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        let rmse = rep.metrics[t][2]["rmse"];
        assert!(rmse < 0.25 * mean_rmse, "{}: test RMSE {rmse:.3} vs predict-the-mean {mean_rmse:.3}", task.name);
    }
}

#[test]
fn the_reported_metrics_are_those_of_the_kept_epoch_on_every_split() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 1);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    let settings = TrainSettings { batch_size: 64, epochs: 12, patience: 0, ..Default::default() };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let rep = tr.fit(&splits, &mut |_| {}).unwrap();
    let best = &rep.history[rep.best_epoch - 1];
    assert_eq!(best.epoch, rep.best_epoch);
    for t in 0..tasks.len() {
        assert_eq!(rep.metrics[t][1], best.val_metrics[t], "validation metrics of epoch {}", rep.best_epoch);
        assert_eq!(rep.metrics[t][2], best.test_metrics[t], "test metrics of epoch {}", rep.best_epoch);
    }
    // And they are what the kept parameters give now.
    let (_, test) = tr.evaluate(&splits.test).unwrap();
    for (m, now) in rep.metrics.iter().zip(&test) {
        assert_eq!(&m[2], now);
    }
}

#[test]
fn both_losses_fall_on_a_synthetic_two_task_problem() {
    let n = 512;
    let f = 6;
    let mut rng = Rng::new(3);
    let x = rng.vec_f32(n * f, -1.0, 1.0);
    let y1: Vec<f32> = (0..n).map(|r| x[r * f] + 0.5 * x[r * f + 1] * x[r * f + 2]).collect();
    let y2: Vec<f32> = (0..n).map(|r| if x[r * f] - x[r * f + 3] > 0.0 { 1.0 } else { 0.0 }).collect();
    let names = (0..f).map(|i| format!("x{i}")).collect();
    let d = Dataset::from_slices(names, x, vec![y1, y2], vec![vec![1.0; n], vec![1.0; n]]).unwrap();
    let tasks = vec![TaskDef::regression("a", "a"), TaskDef::binary("b", "b")];
    let (splits, scaling) = splits_of(&d, &tasks, 1);
    let spec = Trainer::spec_for(f, &[32], &[16], Activation::Tanh, &tasks);
    let settings = TrainSettings {
        optimizer: Optimizer::adam(1e-2),
        batch_size: 50,
        epochs: 15,
        patience: 0,
        ..Default::default()
    };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let rep = tr.fit(&splits, &mut |_| {}).unwrap();
    let first = &rep.history[0].train_loss;
    let last = &rep.history.last().unwrap().train_loss;
    for t in 0..2 {
        assert!(last[t] < 0.5 * first[t], "task {t}: loss {} -> {}", first[t], last[t]);
    }
    assert!(rep.metrics[1][2]["accuracy"] > 0.85, "{:?}", rep.metrics[1][2]);
}

#[test]
fn missing_labels_and_a_partial_last_batch_train_without_nan_in_file_order() {
    let (mut d, tasks) = energy();
    // Drop most cooling labels: that task trains on the rest only.
    for r in 0..d.rows() {
        if r % 3 != 0 {
            d.masks[1][r] = 0.0;
        }
    }
    let (splits, scaling) = splits_of(&d, &tasks, 2);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Gelu, &tasks);
    // 614 training rows in batches of 100: six full batches and one of 14, in file order.
    let settings = TrainSettings {
        optimizer: Optimizer::adam(1e-2),
        batch_size: 100,
        epochs: 3,
        shuffle: false,
        patience: 0,
        ..Default::default()
    };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let rep = tr.fit(&splits, &mut |_| {}).unwrap();
    assert_eq!(rep.steps, 21);
    for h in &rep.history {
        assert!(h.train_loss.iter().chain(&h.val_loss).all(|v| v.is_finite()), "{h:?}");
    }
}

#[test]
fn an_evaluation_reads_every_task_output_back_at_once_and_copies_no_parameter() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[8], &[], Activation::Relu, &tasks);
    let own = hydra::Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let settings = TrainSettings { batch_size: 32, epochs: 1, patience: 0, ..Default::default() };
    let mut tr = Trainer::new(own.clone(), &spec, &tasks, settings, scaling, None).unwrap();
    tr.evaluate(&splits.val).unwrap(); // builds the evaluation graph
    let (before, uploads) = (own.counters().readbacks, own.counters().uploads);
    tr.evaluate(&splits.val).unwrap();
    // The divergence guard's verdict, then both tasks' outputs together.
    assert_eq!(own.counters().readbacks - before, 2);
    // The evaluation graph reads the trainer's parameters where they are: the one batch of
    // validation rows is all it uploads.
    assert_eq!(own.counters().uploads - uploads, 1);
}

#[test]
fn divergence_stops_training_naming_the_step_task_and_value() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    // An absurd learning rate: the loss overflows within a few steps.
    let settings =
        TrainSettings { optimizer: Optimizer::sgd(1e12), batch_size: 64, epochs: 5, patience: 0, ..Default::default() };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let err = tr.fit(&splits, &mut |_| {}).expect_err("must diverge");
    let msg = err.to_string();
    assert!(matches!(err, hydra::Error::Diverged { .. }), "{msg}");
    assert!(msg.contains("training diverged at step"), "{msg}");
    assert!(msg.contains("heating") || msg.contains("cooling") || msg.contains("a parameter"), "{msg}");
    assert!(msg.contains("NaN") || msg.contains("inf"), "{msg}");
    if let hydra::Error::Diverged { step, .. } = err {
        assert!((1..=10).contains(&step), "diverged in the first epoch, not at step {step}");
    }
}

/// With a checkpoint every step, none is taken from a diverged state: the snapshot reads the
/// guard first and fails, so the last checkpoint written holds finite parameters.
#[test]
fn no_checkpoint_is_taken_from_a_diverged_state() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    let settings =
        TrainSettings { optimizer: Optimizer::sgd(1e12), batch_size: 64, epochs: 5, patience: 0, ..Default::default() };
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let mut taken = Vec::new();
    let err = tr
        .fit_with_checkpoints(&splits, &mut |_| {}, 1, &mut |t| {
            taken.push(t.snapshot()?);
            Ok(())
        })
        .expect_err("must diverge");
    assert!(matches!(err, hydra::Error::Diverged { .. }), "{err}");
    let last = taken.last().expect("checkpoints before the divergence");
    assert!(last.params.iter().flatten().all(|v| v.is_finite()), "a checkpoint of a diverged state");
    if let hydra::Error::Diverged { step, .. } = err {
        assert!(
            last.state.step < step as usize,
            "the last checkpoint ({}) precedes the divergence ({step})",
            last.state.step
        );
    }
}

#[test]
fn gradient_clipping_bounds_each_update() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    let run = |clip: Option<f32>| {
        let settings = TrainSettings {
            optimizer: Optimizer::sgd(1.0),
            batch_size: 64,
            steps: Some(1),
            shuffle: false,
            patience: 0,
            max_grad_norm: clip,
            ..Default::default()
        };
        let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling.clone(), None).unwrap();
        let before: Vec<f32> = tr.params().unwrap().concat();
        tr.fit(&splits, &mut |_| {}).unwrap();
        let after: Vec<f32> = tr.params().unwrap().concat();
        before.iter().zip(&after).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt()
    };
    let free = run(None);
    let clipped = run(Some(0.01));
    assert!(free > 0.05, "an unclipped step moves by {free}");
    // SGD with lr 1: the step is the clipped gradient, norm at most 0.01.
    assert!(approx::abs_diff_eq!(clipped, 0.01, epsilon = 1e-4), "clipped step moved by {clipped}");
}

#[test]
fn the_same_seed_gives_bit_identical_parameters() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[32, 16], &[8], Activation::Gelu, &tasks);
    let run = || {
        let settings = TrainSettings {
            optimizer: Optimizer::adam(1e-2),
            batch_size: 50,
            epochs: 3,
            patience: 0,
            ..Default::default()
        };
        let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling.clone(), None).unwrap();
        tr.fit(&splits, &mut |_| {}).unwrap();
        tr.params().unwrap().concat().iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn a_run_restored_from_a_mid_epoch_snapshot_ends_bit_identical() {
    use hydra::mtl::weighting::{Method, Target, Weighter};
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16, 8], &[], Activation::Tanh, &tasks);
    // 614 rows in batches of 48: 13 batches an epoch; the snapshot at step 20 is mid-epoch.
    let settings = TrainSettings {
        optimizer: Optimizer::adam(5e-3),
        batch_size: 48,
        epochs: 4,
        patience: 2,
        ..Default::default()
    };
    for name in ["ew", "pcgrad", "mgda", "famo", "dwa", "uw", "rlw", "db_mtl", "moco", "excess_mtl", "nash_mtl"] {
        let make = || {
            let w = Weighter::new(Method::by_name(name).unwrap(), Target::Params, &[1.0, 1.0], 7);
            Trainer::with_weighting(ctx(), &spec, &tasks, settings.clone(), scaling.clone(), None, w).unwrap()
        };
        let mut whole = make();
        let mut snap = None;
        whole
            .fit_with_checkpoints(&splits, &mut |_| {}, 20, &mut |t| {
                if snap.is_none() {
                    snap = Some(t.snapshot()?);
                }
                Ok(())
            })
            .unwrap();
        let want: Vec<u32> = whole.params().unwrap().concat().iter().map(|v| v.to_bits()).collect();
        let snap = snap.expect("a snapshot at step 20");
        assert_eq!(snap.state.step, 20);
        assert_eq!(snap.state.pos, 7, "mid-epoch");
        let mut resumed = make();
        resumed.restore(snap).unwrap();
        resumed.fit(&splits, &mut |_| {}).unwrap();
        let got: Vec<u32> = resumed.params().unwrap().concat().iter().map(|v| v.to_bits()).collect();
        assert!(got == want, "{name}: the resumed run's parameters differ from the uninterrupted run's");
    }
}

/// The device goes away in the middle of a run that writes a checkpoint every 5 steps. The
/// closure always tries to write one (as --checkpoint-every does); what is on disk afterwards
/// and what the run returns are the library's doing: the snapshot after the loss must fail
/// rather than capture garbage, the run must end with Error::DeviceLost, and the file must
/// still hold the last good checkpoint, byte for byte.
#[test]
fn a_lost_device_ends_the_run_with_an_error_and_the_last_checkpoint_intact() {
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    let own = hydra::Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let settings = TrainSettings {
        optimizer: Optimizer::adam(1e-2),
        batch_size: 64,
        epochs: 10,
        patience: 0,
        ..Default::default()
    };
    let path = std::env::temp_dir().join(format!("hydra-lost-{}.safetensors", std::process::id()));
    let mut tr = Trainer::new(own.clone(), &spec, &tasks, settings, scaling, None).unwrap();
    let mut written = Vec::new();
    let err = tr
        .fit_with_checkpoints(&splits, &mut |_| {}, 5, &mut |t| {
            if t.loop_state().step == 15 {
                own.simulate_device_loss(); // the GPU goes away just before the third checkpoint
            }
            let snap = t.snapshot()?;
            let mut ck = hydra::Checkpoint::default();
            for ((name, shape), v) in t.param_names().iter().zip(&snap.params) {
                ck.insert(name, shape, v.clone());
            }
            ck.metadata.insert("step".into(), snap.state.step.to_string());
            ck.save(&path)?;
            written.push(snap.state.step);
            Ok(())
        })
        .expect_err("training must fail once the device is gone");
    assert!(matches!(err, hydra::Error::DeviceLost(_)), "the error says the device was lost: {err}");
    assert_eq!(written, vec![5, 10], "no checkpoint is written from a lost device");
    let on_disk = hydra::Checkpoint::load(&path).expect("the last good checkpoint is intact");
    assert_eq!(on_disk.metadata["step"], "10");
    assert!(on_disk.tensors.values().all(|(_, v)| v.iter().all(|x| x.is_finite())));
    let _ = std::fs::remove_file(path);
}

/// Data built in memory is checked like a file: a class label past the task's classes (the
/// loss kernel would read the next row's logits) or a binary label other than 0 or 1 is an
/// error naming the task and the row, before any step.
#[test]
fn labels_out_of_range_are_refused_naming_the_task_and_the_row() {
    let n = 12;
    let x: Vec<f32> = (0..n * 2).map(|i| (i % 5) as f32 / 5.0).collect();
    let mut cls: Vec<f32> = (0..n).map(|r| (r % 3) as f32).collect();
    cls[7] = 3.0; // 3 classes: 0, 1, 2
    let bin: Vec<f32> = (0..n).map(|r| (r % 2) as f32).collect();
    let names = vec!["a".to_string(), "b".to_string()];
    let tasks = [TaskDef::multiclass("c", "c", 3), TaskDef::binary("b", "b")];
    let d = Dataset::from_slices(names.clone(), x.clone(), vec![cls, bin.clone()], vec![vec![1.0; n]; 2]).unwrap();
    let err = d.check_labels(&tasks).unwrap_err().to_string();
    assert!(err.contains("task \"c\"") && err.contains("row 7") && err.contains("out of range 0..2"), "{err}");
    let splits = Splits { val: d.subset(&[]), test: d.subset(&[]), train: d };
    let spec = Trainer::spec_for(2, &[4], &[], Activation::Relu, &tasks);
    let settings = TrainSettings { batch_size: 4, epochs: 1, ..Default::default() };
    let scaling = Scaling::fit(&splits.train, &tasks, false);
    let mut tr = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let err = tr.fit(&splits, &mut |_| {}).expect_err("a label past the classes").to_string();
    assert!(err.contains("row 7"), "{err}");
    // Binary labels must be 0 or 1; a masked-out row's value does not matter.
    let mut b2 = bin;
    b2[3] = 0.5;
    let ok = Dataset::from_slices(
        names,
        x,
        vec![vec![0.0; n], b2],
        vec![vec![1.0; n], {
            let mut m = vec![1.0; n];
            m[3] = 0.0;
            m
        }],
    )
    .unwrap();
    ok.check_labels(&tasks).unwrap();
}

/// A batch size whose product with the model's width cannot be addressed is an error naming
/// the limit, not a wrapped size or an abort.
#[test]
fn sizes_past_addressable_memory_are_errors_naming_the_limit() {
    let tasks = [TaskDef::regression("y", "y")];
    let spec = Trainer::spec_for(8, &[4], &[], Activation::Relu, &tasks);
    let d = Dataset::from_slices(vec!["x".into(); 8], vec![0.0; 16], vec![vec![0.0; 2]], vec![vec![1.0; 2]]).unwrap();
    let scaling = Scaling::fit(&d, &tasks, false);
    for batch in [usize::MAX / 2, 1 << 60] {
        let settings = TrainSettings { batch_size: batch, ..Default::default() };
        let err = Trainer::new(ctx(), &spec, &tasks, settings, scaling.clone(), None).err().expect("too large");
        assert!(matches!(err, hydra::Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("isize::MAX bytes"), "{err}");
    }
    let err = hydra::train::gather(&d, &[0, 1], usize::MAX).expect_err("too large").to_string();
    assert!(err.contains("too large"), "{err}");
}

/// Every kind of method stops with Error::Diverged when the loss overflows: equal weighting
/// (the guard in the step), a gradient method (the losses read back with the Gram matrix),
/// and a loss weighting computed on the GPU.
#[test]
fn divergence_is_error_diverged_for_every_kind_of_method() {
    use hydra::mtl::weighting::{Method, Target, Weighter};
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    for name in ["ew", "pcgrad", "mgda", "graddrop", "uw", "gls", "famo", "gradnorm", "db_mtl", "moco", "excess_mtl"] {
        let settings = TrainSettings {
            optimizer: Optimizer::sgd(1e12),
            batch_size: 64,
            epochs: 5,
            patience: 0,
            ..Default::default()
        };
        let method = Method::by_name(name).unwrap();
        let target = method.entry().targets.first().copied().unwrap_or(Target::Params);
        let w = Weighter::new(method, target, &[1.0, 1.0], 0);
        let mut tr = Trainer::with_weighting(ctx(), &spec, &tasks, settings, scaling.clone(), None, w).unwrap();
        let err = tr.fit(&splits, &mut |_| {}).expect_err("must diverge");
        assert!(matches!(err, hydra::Error::Diverged { .. }), "{name}: {err}");
    }
}

/// `select_by_delta_m`: the kept epoch is the one whose validation Δm% against the given
/// baselines is best (LibMTL's choice), recomputed here from the run's own history; with the
/// validation loss it is the epoch of the lowest summed loss. The two differ on this run.
#[test]
fn selecting_by_validation_delta_m_keeps_the_epoch_of_the_best_delta_m() {
    use hydra::mtl::metrics::{delta_m, task_delta, Metrics};
    let (d, tasks) = energy();
    let (splits, scaling) = splits_of(&d, &tasks, 0);
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    let settings = TrainSettings {
        optimizer: Optimizer::adam(3e-2),
        batch_size: 32,
        epochs: 30,
        patience: 0,
        ..Default::default()
    };
    // Baselines so large everywhere but in cooling's MAE that Δm% follows that MAE alone; and
    // that baseline negative, so that Δm% grows with the MAE: the epoch it keeps is the one of
    // the worst cooling MAE, which no loss-based choice would keep.
    let base: Vec<Metrics> = vec![
        [("rmse".to_string(), 1e6), ("mae".to_string(), 1e6)].into(),
        [("rmse".to_string(), 1e6), ("mae".to_string(), -1.0)].into(),
    ];
    let mut by_dm = Trainer::new(ctx(), &spec, &tasks, settings.clone(), scaling.clone(), None).unwrap();
    by_dm.select_by_delta_m(base.clone());
    let rep = by_dm.fit(&splits, &mut |_| {}).unwrap();
    let dm = |rec: &hydra::train::EvalRecord| {
        let per: Vec<_> =
            tasks.iter().enumerate().map(|(t, task)| task_delta(task.kind, &rec.val_metrics[t], &base[t])).collect();
        delta_m(&per).unwrap()
    };
    let best = rep.history.iter().max_by(|a, b| dm(a).total_cmp(&dm(b))).unwrap();
    assert_eq!(rep.best_epoch, best.epoch, "the kept epoch has the best validation Δm%");
    let mut by_loss = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let rep_loss = by_loss.fit(&splits, &mut |_| {}).unwrap();
    let lowest = rep_loss
        .history
        .iter()
        .min_by(|a, b| a.val_loss.iter().sum::<f64>().total_cmp(&b.val_loss.iter().sum::<f64>()))
        .unwrap();
    assert_eq!(rep_loss.best_epoch, lowest.epoch);
    assert_ne!(rep.best_epoch, rep_loss.best_epoch, "the two criteria pick different epochs here");
}
