//! README's claims about data, splits, freezing and early stopping, each shown here: grouped
//! splits keep a group whole, freezing by a task's name or a parameter prefix, population
//! standard deviations, the default feature list, AdamW's default decay, the built-in
//! datasets (MultiDigits pairs images within a split only), and early stopping.

mod common;

use common::ctx;
use hydra::config::Config;
use hydra::data::builtin::{self, Source};
use hydra::data::{split_rows, Dataset, Standardizer, Table};
use hydra::mtl::TaskDef;
use hydra::train::{frozen_params, Scaling, Splits, TrainSettings, Trainer};
use hydra::{Activation, Optimizer};

#[test]
fn a_grouped_split_keeps_every_group_in_one_split() {
    let groups: Vec<String> = (0..200).map(|i| format!("g{}", i % 23)).collect();
    let [a, b, c] = split_rows(groups.len(), [0.6, 0.2, 0.2], 5, Some(&groups)).unwrap();
    let of = |rows: &[usize]| rows.iter().map(|&r| groups[r].clone()).collect::<std::collections::BTreeSet<_>>();
    let (ga, gb, gc) = (of(&a), of(&b), of(&c));
    assert!(ga.is_disjoint(&gb) && ga.is_disjoint(&gc) && gb.is_disjoint(&gc), "a group in two splits");
    assert_eq!(a.len() + b.len() + c.len(), 200);
    assert!(!a.is_empty() && !b.is_empty() && !c.is_empty());
}

#[test]
fn freezing_takes_trunk_a_task_name_or_a_parameter_prefix_and_refuses_unknown_names() {
    let tasks = [TaskDef::regression("heating", "h"), TaskDef::regression("cooling", "c")];
    let spec = Trainer::spec_for(4, &[8, 8], &[4], Activation::Relu, &tasks);
    let model = hydra::nn::MultiTaskModel::build(&spec, 2).unwrap();
    let g = &model.graph;
    let names = |f: &[&str]| -> Vec<String> {
        let frozen = frozen_params(g, &tasks, &f.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        g.params.iter().zip(frozen).filter(|(_, f)| *f).map(|(p, _)| p.name.clone()).collect()
    };
    assert!(names(&["trunk"]).iter().all(|n| n.starts_with("trunk.")) && names(&["trunk"]).len() == 4);
    let cooling = names(&["cooling"]);
    assert!(!cooling.is_empty() && cooling.iter().all(|n| n.starts_with("heads.cooling.")), "{cooling:?}");
    assert_eq!(names(&["trunk.0"]), vec!["trunk.0.weight", "trunk.0.bias"]);
    let err = frozen_params(g, &tasks, &["tronk".to_string()]).unwrap_err().to_string();
    assert!(err.contains("train.freeze") && err.contains("tronk"), "{err}");
}

#[test]
fn features_are_scaled_by_the_population_standard_deviation() {
    let d = Dataset::from_slices(vec!["a".into()], vec![1.0, 2.0, 3.0, 4.0], vec![], vec![]).unwrap();
    let s = Standardizer::fit_features(&d);
    assert_eq!(s.mean, vec![2.5]);
    // Population: sqrt(mean of squared deviations) = sqrt(1.25), not the sample's sqrt(5/3).
    assert!(approx::relative_eq!(s.std[0], 1.25f32.sqrt(), max_relative = 1e-6), "{:?}", s.std);
}

#[test]
fn every_column_but_targets_ignored_ones_and_the_group_is_a_feature_by_default() {
    let table = Table::parse("t.csv", b"id,x1,subject,x2,y\n1,0.5,a,2,3\n2,0.25,b,1,4\n").unwrap();
    let tasks = [TaskDef::regression("y", "y")];
    let d = Dataset::from_table(&table, None, &["id".to_string()], &tasks, Some("subject")).unwrap();
    assert_eq!(d.feature_names, vec!["x1", "x2"]);
}

#[test]
fn adamw_decays_by_default_and_adam_does_not() {
    let cfg = |opt: &str| {
        let text = format!("[data]\ndataset = \"energy\"\n[[task]]\nname = \"h\"\ntarget = \"heating_load\"\nkind = \"regression\"\n[train]\noptimizer = \"{opt}\"\n");
        Config::parse("c.toml", &text, ".".into()).unwrap().train.optimizer
    };
    assert!(matches!(cfg("adamw"), Optimizer::AdamW { weight_decay, .. } if weight_decay == 0.01));
    assert!(matches!(cfg("adam"), Optimizer::Adam { weight_decay, .. } if weight_decay == 0.0));
}

#[test]
fn the_built_in_datasets_load_and_multidigits_pairs_images_within_a_split() {
    for name in ["energy", "parkinsons", "digits", "mmoe"] {
        match builtin::load(name, [0.8, 0.1, 0.1], 0, 0.5, Some(300)).unwrap() {
            Source::One(t) => assert!(t.len() >= 300, "{name}: {} rows", t.len()),
            Source::Three(_) => panic!("{name} comes whole"),
        }
    }
    let Source::Three(parts) = builtin::load("multidigits", [0.8, 0.1, 0.1], 3, 0.5, Some(2)).unwrap() else {
        panic!("multidigits comes split");
    };
    // Each split's left images, as pixel rows: no image of one split appears in another.
    let images = |t: &Table| -> std::collections::BTreeSet<String> {
        let rows: Vec<Vec<&str>> = (0..t.len()).map(|r| t.row(r)).collect();
        rows.iter().map(|r| r[..64].join(",")).chain(rows.iter().map(|r| r[64..128].join(","))).collect()
    };
    let (a, b, c) = (images(&parts[0]), images(&parts[1]), images(&parts[2]));
    assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c), "an image in two splits");
    assert!(parts.iter().all(|t| !t.is_empty()));
}

#[test]
fn early_stopping_stops_after_patience_evaluations_without_a_better_validation_loss() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/energy_efficiency.csv");
    let table = Table::read(&path).unwrap();
    let tasks = vec![TaskDef::regression("heating", "heating_load"), TaskDef::regression("cooling", "cooling_load")];
    let d = Dataset::from_table(&table, None, &[], &tasks, None).unwrap();
    let [tr, va, te] = split_rows(d.rows(), [0.8, 0.1, 0.1], 0, None).unwrap();
    let scaling = Scaling::fit(&d.subset(&tr), &tasks, true);
    let splits = Splits {
        train: scaling.apply(&d.subset(&tr)),
        val: scaling.apply(&d.subset(&va)),
        test: scaling.apply(&d.subset(&te)),
    };
    let spec = Trainer::spec_for(d.width(), &[16], &[], Activation::Relu, &tasks);
    // A large learning rate: the validation loss soon stops improving.
    let settings = TrainSettings {
        optimizer: Optimizer::adam(0.1),
        batch_size: 32,
        epochs: 300,
        patience: 3,
        ..Default::default()
    };
    let mut trainer = Trainer::new(ctx(), &spec, &tasks, settings, scaling, None).unwrap();
    let rep = trainer.fit(&splits, &mut |_| {}).unwrap();
    let epochs = rep.history.len();
    assert!(epochs < 300, "stopped early");
    assert_eq!(epochs, rep.best_epoch + 3, "three evaluations without a better validation loss, then stop");
    let best: f64 = rep.history[rep.best_epoch - 1].val_loss.iter().sum();
    for r in &rep.history[rep.best_epoch..] {
        assert!(r.val_loss.iter().sum::<f64>() >= best);
    }
}

#[test]
fn linear_layers_start_as_pytorchs_nn_linear_does() {
    // nn.Linear(in, out): weight [out, in] and bias [out] uniform in ±1/sqrt(in).
    let tasks = [TaskDef::regression("y", "y")];
    let spec = Trainer::spec_for(9, &[16], &[], Activation::Relu, &tasks);
    let model = hydra::nn::MultiTaskModel::build(&spec, 1).unwrap();
    for p in &model.graph.params {
        let fan_in = if p.name.starts_with("trunk.0") { 9.0 } else { 16.0 };
        assert_eq!(p.init, hydra::autograd::Init::Uniform(1.0 / f32::sqrt(fan_in)), "{}", p.name);
    }
    assert_eq!(model.graph.params[0].shape, vec![16, 9], "weights are [out, in]");
}

/// The MMoE paper's generator (section 4): with correlation p the two tasks' weight vectors
/// have cosine p, and the labels' Pearson correlation falls as p does (not equal to p: the
/// sinusoids bend it), reaching about 1 at p = 1 (noise of 0.01 apart).
#[test]
fn the_mmoe_generator_gives_labels_whose_correlation_falls_with_p() {
    let corr = |p: f64| -> f64 {
        let t = builtin::mmoe(100, 4000, p, 7).unwrap();
        let col = |name: &str| -> Vec<f64> {
            let c = t.header.iter().position(|h| h == name).unwrap();
            t.column_cells(c).map(|v| v.parse::<f64>().unwrap()).collect()
        };
        let (a, b) = (col("y1"), col("y2"));
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    let (c1, c9, c5) = (corr(1.0), corr(0.9), corr(0.5));
    assert!(c1 > 0.999, "p = 1: {c1}");
    assert!(c1 > c9 && c9 > c5 && c5 > 0.0, "{c1} > {c9} > {c5}");
}
