//! Mixtures of experts (MMoE, OMoE): their invariants (gates sum to one; one expert is hard
//! sharing exactly; OMoE is MMoE with tied gates), their names, and training with every kind
//! of weighting method.

mod common;

use common::{check_grads_fd, ctx};
use hydra::autograd::cpu as gcpu;
use hydra::cpu::Rng;
use hydra::ir::Op;
use hydra::mtl::weighting::{Method, Target, Weighter};
use hydra::mtl::TaskDef;
use hydra::nn::{Arch, ModelSpec, MultiTaskModel};
use hydra::train::{Scaling, Splits, TrainSettings, Trainer};
use hydra::{Activation, Dataset, GpuGraph};

fn tasks() -> Vec<TaskDef> {
    vec![TaskDef::regression("a", "a"), TaskDef::binary("b", "b"), TaskDef::multiclass("c", "c", 3)]
}

fn spec(arch: Arch, experts: usize, expert: &[usize], inputs: usize) -> ModelSpec {
    let mut s = Trainer::spec_for(inputs, &[], &[5], Activation::Tanh, &tasks());
    s.arch = arch;
    s.experts = experts;
    s.expert = expert.to_vec();
    s
}

fn inputs(m: &MultiTaskModel, seed: u64) -> Vec<Vec<f64>> {
    let b = m.batch;
    let mut rng = Rng::new(seed);
    let mut v = vec![(0..b * m.spec.inputs).map(|_| rng.range(-1.0, 1.0)).collect::<Vec<f64>>()];
    v.push((0..b).map(|_| rng.range(-1.0, 1.0)).collect());
    v.push(vec![1.0; b]);
    v.push((0..b).map(|_| rng.below(2) as f64).collect());
    v.push(vec![1.0; b]);
    v.push((0..b).map(|_| rng.below(3) as f64).collect());
    v.push(vec![1.0; b]);
    v
}

#[test]
fn mixture_names_follow_the_interface() {
    let m = MultiTaskModel::build(&spec(Arch::Mmoe, 3, &[6, 4], 5), 2).unwrap();
    let names: Vec<&str> = m.graph.params.iter().map(|p| p.name.as_str()).collect();
    for n in ["experts.0.0.weight", "experts.2.1.bias", "gates.a.weight", "gates.c.bias", "heads.b.1.weight"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let w = m.graph.params.iter().find(|p| p.name == "gates.a.weight").unwrap();
    assert_eq!(w.shape, vec![3, 5], "a gate is [experts, inputs]");
    assert_eq!(m.trunk_params, 3 * 4, "the experts' weights and biases come first and are the shared ones");
    assert_eq!(m.graph.shape(m.z), &[2, 3 * 4], "z: the experts' outputs side by side");
    let o = MultiTaskModel::build(&spec(Arch::Omoe, 3, &[6, 4], 5), 2).unwrap();
    assert!(o.graph.params.iter().any(|p| p.name == "gate.weight"));
    assert!(!o.graph.params.iter().any(|p| p.name.starts_with("gates.")));
}

#[test]
fn every_gate_row_sums_to_one_on_the_gpu() {
    let m = MultiTaskModel::build(&spec(Arch::Mmoe, 4, &[8], 6), 33).unwrap();
    let init = m.graph.init_params(1).unwrap();
    let mut g = GpuGraph::new(ctx(), m.graph.clone(), &init, None).unwrap();
    let ins: Vec<Vec<f32>> = inputs(&m, 2).iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
    let refs: Vec<&[f32]> = ins.iter().map(Vec::as_slice).collect();
    g.feed(&refs).unwrap();
    g.forward().unwrap();
    let gates: Vec<_> = (0..m.graph.nodes.len())
        .filter(|&i| matches!(m.graph.nodes[i].op, Op::Softmax { .. }))
        .map(hydra::ir::NodeId)
        .collect();
    assert_eq!(gates.len(), 3, "one gate per task");
    for v in g.read_values(&gates).unwrap() {
        for row in v.chunks(4) {
            let s: f32 = row.iter().sum();
            assert!(approx::abs_diff_eq!(s, 1.0, epsilon = 1e-6) && row.iter().all(|&x| x >= 0.0), "{row:?}");
        }
    }
}

/// MMoE with one expert is hard sharing with that expert as the trunk: the gate's softmax of
/// one logit is exactly 1, so losses and gradients agree bit for bit (f64 reference).
#[test]
fn mmoe_with_one_expert_is_hard_sharing_exactly() {
    let moe = MultiTaskModel::build(&spec(Arch::Mmoe, 1, &[7, 6], 4), 9).unwrap();
    let hps = MultiTaskModel::build(&Trainer::spec_for(4, &[7, 6], &[5], Activation::Tanh, &tasks()), 9).unwrap();
    let init = moe.graph.init_params(3).unwrap();
    // The same values by role: experts.0.* are trunk.*, heads.* are heads.*; gates have none.
    let by_name = |name: &str| -> Vec<f64> {
        let n = name.replacen("trunk.", "experts.0.", 1);
        let i = moe.graph.params.iter().position(|p| p.name == n).unwrap();
        init[i].iter().map(|&v| f64::from(v)).collect()
    };
    let p_hps: Vec<Vec<f64>> = hps.graph.params.iter().map(|p| by_name(&p.name)).collect();
    let p_moe: Vec<Vec<f64>> = init.iter().map(|p| p.iter().map(|&v| f64::from(v)).collect()).collect();
    let ins = inputs(&moe, 4);
    let w = [1.0, 0.5, 2.0];
    let a = gcpu::run(&hps.graph, &p_hps, &ins, &w, true).unwrap();
    let b = gcpu::run(&moe.graph, &p_moe, &ins, &w, true).unwrap();
    assert_eq!(a.losses, b.losses, "the same losses, bit for bit");
    let (ga, gb) = (a.param_grads(&hps.graph), b.param_grads(&moe.graph));
    for (i, p) in hps.graph.params.iter().enumerate() {
        let n = p.name.replacen("trunk.", "experts.0.", 1);
        let j = moe.graph.params.iter().position(|q| q.name == n).unwrap();
        assert_eq!(ga[i], gb[j], "{}: the same gradient", p.name);
    }
    for (j, q) in moe.graph.params.iter().enumerate() {
        if q.name.starts_with("gates.") {
            assert!(gb[j].iter().all(|&v| v == 0.0), "{} learns nothing from a one-expert gate", q.name);
        }
    }
}

/// OMoE is MMoE whose gates are tied: with every MMoE gate set to OMoE's gate, the losses
/// agree exactly and OMoE's gate gradient is the sum of the MMoE gates'.
#[test]
fn omoe_is_mmoe_with_tied_gates() {
    let mm = MultiTaskModel::build(&spec(Arch::Mmoe, 3, &[5], 4), 11).unwrap();
    let om = MultiTaskModel::build(&spec(Arch::Omoe, 3, &[5], 4), 11).unwrap();
    let p_om: Vec<Vec<f64>> =
        om.graph.init_params(5).unwrap().iter().map(|p| p.iter().map(|&v| f64::from(v)).collect()).collect();
    let find = |g: &hydra::ir::Graph, n: &str| g.params.iter().position(|p| p.name == n).unwrap();
    let p_mm: Vec<Vec<f64>> = mm
        .graph
        .params
        .iter()
        .map(|p| {
            let n = if p.name.starts_with("gates.") {
                format!("gate.{}", p.name.rsplit('.').next().unwrap())
            } else {
                p.name.clone()
            };
            p_om[find(&om.graph, &n)].clone()
        })
        .collect();
    let ins = inputs(&mm, 6);
    let w = [1.0, 1.0, 1.0];
    let a = gcpu::run(&om.graph, &p_om, &ins, &w, true).unwrap();
    let b = gcpu::run(&mm.graph, &p_mm, &ins, &w, true).unwrap();
    assert_eq!(a.losses, b.losses);
    let (ga, gb) = (a.param_grads(&om.graph), b.param_grads(&mm.graph));
    for part in ["weight", "bias"] {
        let shared = &ga[find(&om.graph, &format!("gate.{part}"))];
        let sum: Vec<f64> = (0..shared.len())
            .map(|k| ["a", "b", "c"].iter().map(|t| gb[find(&mm.graph, &format!("gates.{t}.{part}"))][k]).sum())
            .collect();
        for (x, y) in shared.iter().zip(&sum) {
            assert!(approx::relative_eq!(x, y, epsilon = 1e-12, max_relative = 1e-12), "gate.{part}: {x} vs {y}");
        }
    }
}

fn data(n: usize, seed: u64) -> (Splits, Scaling) {
    let f = 6;
    let mut rng = Rng::new(seed);
    let x = rng.vec_f32(n * f, -1.0, 1.0);
    let a: Vec<f32> = (0..n).map(|r| (x[r * f] * 2.0).sin() + x[r * f + 1] * x[r * f + 2]).collect();
    let b: Vec<f32> = (0..n).map(|r| f32::from(u8::from(x[r * f] + x[r * f + 3] > 0.0))).collect();
    let c: Vec<f32> = (0..n).map(|r| ((x[r * f + 4] + 1.0) * 1.5).min(2.0).floor()).collect();
    let names = (0..f).map(|i| format!("x{i}")).collect();
    let d = Dataset::from_slices(names, x, vec![a, b, c], vec![vec![1.0; n]; 3]).unwrap();
    let scaling = Scaling::fit(&d, &tasks(), true);
    let train = scaling.apply(&d);
    (Splits { val: train.subset(&[]), test: train.subset(&[]), train }, scaling)
}

/// MMoE, OMoE and DSelect-k train with every weighting method, gradient methods on both
/// targets (the experts' parameters, or their outputs): every task's loss falls.
#[test]
fn mixtures_train_with_every_kind_of_weighting() {
    let (splits, scaling) = data(160, 1);
    for arch in [Arch::Mmoe, Arch::Omoe, Arch::DselectK] {
        let mut s = spec(arch, 4, &[16], 6);
        s.k = 2;
        // Every registered method, on each target it takes (loss weightings on the one).
        let runs = hydra::mtl::weighting::registry::REGISTRY.iter().flat_map(|e| {
            let targets = if e.targets.is_empty() { vec![Target::Params] } else { e.targets.to_vec() };
            targets.into_iter().map(move |t| (e.name, t))
        });
        for (name, target) in runs {
            let settings = TrainSettings {
                optimizer: hydra::Optimizer::adam(1e-2),
                batch_size: 32,
                epochs: 8,
                patience: 0,
                ..Default::default()
            };
            let w = Weighter::new(Method::by_name(name).unwrap(), target, &[1.0; 3], 0);
            let mut tr = Trainer::with_weighting(ctx(), &s, &tasks(), settings, scaling.clone(), None, w).unwrap();
            let rep = tr.fit(&splits, &mut |_| {}).unwrap();
            let (first, last) = (&rep.history[0].train_loss, &rep.history.last().unwrap().train_loss);
            for k in 0..3 {
                assert!(last[k] < 0.9 * first[k], "{arch:?} {name} task {k}: {} -> {}", first[k], last[k]);
            }
        }
    }
}

#[test]
fn a_mixture_config_validates_and_names_misplaced_keys() {
    let base =
        "[data]\ndataset = \"energy\"\n[[task]]\nname = \"h\"\ntarget = \"heating_load\"\nkind = \"regression\"\n";
    let ok = hydra::config::Config::parse(
        "c.toml",
        &format!("{base}[model]\narch = \"mmoe\"\nexperts = 3\nexpert = [8]\n"),
        ".".into(),
    )
    .unwrap();
    assert_eq!((ok.arch, ok.experts, ok.expert.clone()), (Arch::Mmoe, 3, vec![8]));
    let err =
        hydra::config::Config::parse("c.toml", &format!("{base}[model]\narch = \"mmoe\"\ntrunk = [8]\n"), ".".into())
            .unwrap_err();
    assert!(err.to_string().contains("model.trunk: is a key of hps and cross_stitch, not of mmoe"), "{err}");
    let err = hydra::config::Config::parse("c.toml", &format!("{base}[model]\nexperts = 2\n"), ".".into()).unwrap_err();
    assert!(err.to_string().contains("model.experts"), "{err}");
    let err =
        hydra::config::Config::parse("c.toml", &format!("{base}[model]\narch = \"xyz\"\n"), ".".into()).unwrap_err();
    assert!(err.to_string().contains("expected hps, mmoe, omoe, cgc, ple, cross_stitch or dselect_k"), "{err}");
    let parse = |model: &str| hydra::config::Config::parse("c.toml", &format!("{base}[model]\n{model}"), ".".into());
    let ple = parse("arch = \"ple\"\nshared_experts = 3\ntask_experts = 2\nlevels = 3\nexpert = [8]\n").unwrap();
    assert_eq!((ple.arch, ple.shared_experts, ple.task_experts, ple.levels), (Arch::Ple, 3, 2, 3));
    let cgc = parse("arch = \"cgc\"\n").unwrap();
    assert_eq!((cgc.shared_experts, cgc.task_experts, cgc.levels), (2, 1, 1), "the defaults; cgc is one level");
    let err = parse("arch = \"cgc\"\nlevels = 2\n").unwrap_err().to_string();
    assert!(err.contains("model.levels: is a key of ple, not of cgc"), "{err}");
    let err = parse("arch = \"cgc\"\nshared_experts = 0\ntask_experts = 0\n").unwrap_err().to_string();
    assert!(err.contains("model.shared_experts"), "{err}");
}

fn ple_spec(arch: Arch, shared: usize, own: usize, levels: usize) -> ModelSpec {
    let mut s = spec(arch, 0, &[6], 5);
    s.shared_experts = shared;
    s.task_experts = own;
    s.levels = levels;
    s
}

#[test]
fn ple_names_follow_the_interface_and_cgc_is_ple_with_one_level() {
    let m = MultiTaskModel::build(&ple_spec(Arch::Ple, 2, 1, 2), 2).unwrap();
    let shape = |n: &str| m.graph.params.iter().find(|p| p.name == n).unwrap_or_else(|| panic!("{n}")).shape.clone();
    assert_eq!(shape("levels.0.shared.1.0.weight"), vec![6, 5]);
    assert_eq!(shape("levels.0.tasks.b.0.0.weight"), vec![6, 5]);
    assert_eq!(shape("levels.0.gates.c.weight"), vec![1 + 2, 5], "a task's gate mixes its expert and the shared ones");
    assert_eq!(shape("levels.0.gates.shared.weight"), vec![3 + 2, 5], "the shared gate mixes every expert");
    assert_eq!(shape("levels.1.shared.0.0.weight"), vec![6, 6], "level 1 reads level 0's mixtures");
    assert!(!m.graph.params.iter().any(|p| p.name == "levels.1.gates.shared.weight"), "no shared gate at the top");
    // CGC and PLE with one level: the same graph, the same losses and gradients.
    let cgc = MultiTaskModel::build(&ple_spec(Arch::Cgc, 2, 2, 0), 7).unwrap();
    let ple1 = MultiTaskModel::build(&ple_spec(Arch::Ple, 2, 2, 1), 7).unwrap();
    let names =
        |m: &MultiTaskModel| m.graph.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect::<Vec<_>>();
    assert_eq!(names(&cgc), names(&ple1));
    let p: Vec<Vec<f64>> =
        cgc.graph.init_params(8).unwrap().iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect();
    let ins = inputs(&cgc, 9);
    let (a, b) = (
        gcpu::run(&cgc.graph, &p, &ins, &[1.0; 3], true).unwrap(),
        gcpu::run(&ple1.graph, &p, &ins, &[1.0; 3], true).unwrap(),
    );
    assert_eq!(a.losses, b.losses);
    assert_eq!(a.param_grads(&cgc.graph), b.param_grads(&ple1.graph));
}

/// CGC and PLE pass finite-difference checks of every parameter (a small model, f64).
#[test]
fn ple_passes_finite_difference_gradient_checks() {
    let mut s = ple_spec(Arch::Ple, 1, 1, 2);
    s.expert = vec![3];
    s.head = vec![];
    let m = MultiTaskModel::build(&s, 3).unwrap();
    let p: Vec<Vec<f64>> =
        m.graph.init_params(10).unwrap().iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect();
    let ins = inputs(&m, 11);
    let w = [1.0, 0.5, 2.0];
    check_grads_fd("ple", &m.graph, &p, &ins, &w, Some(3));
}

/// CGC and cross-stitch train with every method on both targets; PLE of two levels with
/// every method on the representation, and refuses gradient methods on its parameters,
/// saying why.
#[test]
fn cgc_ple_and_cross_stitch_train_with_every_weighting_method() {
    let (splits, scaling) = data(160, 2);
    let settings = TrainSettings {
        optimizer: hydra::Optimizer::adam(1e-2),
        batch_size: 32,
        epochs: 8,
        patience: 0,
        ..Default::default()
    };
    for (arch, levels) in [(Arch::Cgc, 1), (Arch::Ple, 2), (Arch::CrossStitch, 0)] {
        let mut s = if arch == Arch::CrossStitch { stitch_spec(&[8, 6]) } else { ple_spec(arch, 2, 1, levels) };
        s.inputs = 6;
        for e in hydra::mtl::weighting::registry::REGISTRY {
            for target in if e.targets.is_empty() { vec![Target::Params] } else { e.targets.to_vec() } {
                let w = Weighter::new(e.default, target, &[1.0; 3], 0);
                let built = Trainer::with_weighting(ctx(), &s, &tasks(), settings.clone(), scaling.clone(), None, w);
                if arch == Arch::Ple && e.runs.uses_gradients() && target == Target::Params {
                    let err = built.err().expect("refused").to_string();
                    assert!(err.contains("representation"), "{err}");
                    continue;
                }
                let rep = built.unwrap().fit(&splits, &mut |_| {}).unwrap();
                let (first, last) = (&rep.history[0].train_loss, &rep.history.last().unwrap().train_loss);
                for k in 0..3 {
                    assert!(
                        last[k] < 0.9 * first[k],
                        "{arch:?} {} {target:?} task {k}: {} -> {}",
                        e.name,
                        first[k],
                        last[k]
                    );
                }
            }
        }
    }
}

fn stitch_spec(trunk: &[usize]) -> ModelSpec {
    let mut s = Trainer::spec_for(5, trunk, &[3], Activation::Tanh, &tasks());
    s.arch = Arch::CrossStitch;
    s
}

#[test]
fn cross_stitch_names_and_initial_units() {
    let m = MultiTaskModel::build(&stitch_spec(&[6, 4]), 2).unwrap();
    let find = |n: &str| m.graph.params.iter().position(|p| p.name == n).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(m.graph.params[find("columns.b.0.weight")].shape, vec![6, 5]);
    assert_eq!(m.graph.params[find("columns.c.1.bias")].shape, vec![4]);
    assert_eq!(m.graph.params[find("stitch.1")].shape, vec![3, 3]);
    let init = m.graph.init_params(0).unwrap();
    let s = &init[find("stitch.0")];
    assert_eq!(s[0], 0.9);
    assert_eq!(s[1], 0.05, "0.1 / (T − 1) off the diagonal (the paper's choice)");
    assert_eq!(m.trunk_params, m.graph.params.len() - 3 * 4, "columns and stitches are shared; heads are not");
}

/// With identity stitch units, each task's column is an independent single-task model: its
/// loss equals hard sharing's on that task with the column as the trunk, bit for bit.
#[test]
fn cross_stitch_with_identity_units_is_independent_single_task_columns() {
    let cs = MultiTaskModel::build(&stitch_spec(&[6, 4]), 9).unwrap();
    let mut p: Vec<Vec<f64>> =
        cs.graph.init_params(3).unwrap().iter().map(|v| v.iter().map(|&x| f64::from(x)).collect()).collect();
    for (i, q) in cs.graph.params.iter().enumerate() {
        if q.name.starts_with("stitch.") {
            p[i] = (0..9).map(|k| if k / 3 == k % 3 { 1.0 } else { 0.0 }).collect();
        }
    }
    let ins = inputs(&cs, 4);
    let run = gcpu::run(&cs.graph, &p, &ins, &[1.0; 3], false).unwrap();
    for (t, task) in tasks().iter().enumerate() {
        let one = MultiTaskModel::build(
            &Trainer::spec_for(5, &[6, 4], &[3], Activation::Tanh, std::slice::from_ref(task)),
            9,
        )
        .unwrap();
        let q: Vec<Vec<f64>> = one
            .graph
            .params
            .iter()
            .map(|r| {
                let n = r.name.replacen("trunk.", &format!("columns.{}.", task.name), 1);
                p[cs.graph.params.iter().position(|s| s.name == n).unwrap()].clone()
            })
            .collect();
        let single =
            gcpu::run(&one.graph, &q, &[ins[0].clone(), ins[1 + 2 * t].clone(), ins[2 + 2 * t].clone()], &[1.0], false)
                .unwrap();
        assert_eq!(single.losses[0], run.losses[t], "task {}", task.name);
    }
}

#[test]
fn dselect_k_names_gates_that_sum_to_one_and_its_config() {
    let mut s = spec(Arch::DselectK, 4, &[6], 5);
    s.k = 2;
    let m = MultiTaskModel::build(&s, 17).unwrap();
    let shape = |n: &str| m.graph.params.iter().find(|p| p.name == n).unwrap_or_else(|| panic!("{n}")).shape.clone();
    assert_eq!(shape("gates.a.selectors.weight"), vec![2 * 2, 5], "k selectors of log2(4) bits");
    assert_eq!(shape("gates.a.weights.weight"), vec![2, 5], "the selectors' weights");
    assert_eq!(shape("experts.3.0.weight"), vec![6, 5]);
    // Each task's gate (the first mix of its branch) sums to one per row on the GPU.
    let init = m.graph.init_params(1).unwrap();
    let mut g = GpuGraph::new(ctx(), m.graph.clone(), &init, None).unwrap();
    let ins: Vec<Vec<f32>> = inputs(&m, 2).iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect();
    let refs: Vec<&[f32]> = ins.iter().map(Vec::as_slice).collect();
    g.feed(&refs).unwrap();
    g.forward().unwrap();
    let gates: Vec<_> = (0..m.graph.nodes.len())
        .filter(|&i| matches!(m.graph.nodes[i].op, Op::Mix { .. }) && m.graph.nodes[i].shape == [17, 4])
        .map(hydra::ir::NodeId)
        .collect();
    assert_eq!(gates.len(), 3);
    for v in g.read_values(&gates).unwrap() {
        for row in v.chunks(4) {
            let s: f32 = row.iter().sum();
            assert!(approx::abs_diff_eq!(s, 1.0, epsilon = 1e-5) && row.iter().all(|&x| x >= 0.0), "{row:?}");
        }
    }
    let base =
        "[data]\ndataset = \"energy\"\n[[task]]\nname = \"h\"\ntarget = \"heating_load\"\nkind = \"regression\"\n";
    let parse = |model: &str| hydra::config::Config::parse("c.toml", &format!("{base}[model]\n{model}"), ".".into());
    let c = parse("arch = \"dselect_k\"\nexperts = 8\nk = 3\nexpert = [4]\n").unwrap();
    assert_eq!((c.arch, c.experts, c.k), (Arch::DselectK, 8, 3));
    let err = parse("arch = \"dselect_k\"\nexperts = 6\n").unwrap_err().to_string();
    assert!(err.contains("model.experts") && err.contains("power of two"), "{err}");
    let err = parse("arch = \"mmoe\"\nk = 2\n").unwrap_err().to_string();
    assert!(err.contains("model.k: is a key of dselect_k"), "{err}");
}
