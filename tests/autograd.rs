//! The autograd graph: finite-difference checks of every op and a 3-layer MLP (f64 CPU
//! reference), GPU backward against CPU backward on awkward shapes, 20 optimizer steps on
//! the GPU against the CPU, and the replayed step's submits, readbacks and allocations.

mod common;

use common::{assert_close, check_grads_fd, ctx, to64};
use hydra::autograd::{cpu as gcpu, Graph, Init};
use hydra::cpu::Rng;
use hydra::nn::Mlp;
use hydra::{Activation, GpuGraph, LossKind, Optimizer};

/// A multi-task MLP: trunk sizes[0] → … (activated), then per task a linear head.
struct Net {
    graph: Graph,
    inputs: Vec<Vec<f32>>,
}

fn net(batch: usize, trunk: &[usize], act: Activation, heads: &[LossKind], seed: u64) -> Net {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, trunk[0]]);
    let t = Mlp::new(&mut g, "trunk", trunk, act, true);
    let z = t.forward(&mut g, x).unwrap();
    let mut rng = Rng::new(seed);
    let mut inputs = vec![rng.vec_f32(batch * trunk[0], -1.0, 1.0)];
    for (k, &kind) in heads.iter().enumerate() {
        let h = Mlp::new(&mut g, &format!("heads.t{k}"), &[*trunk.last().unwrap(), kind.outputs()], act, false);
        let logits = h.forward(&mut g, z).unwrap();
        let y = g.input(&format!("y{k}"), &[batch]);
        let m = g.input(&format!("m{k}"), &[batch]);
        g.loss(logits, y, m, kind, k).unwrap();
        inputs.push(match kind {
            LossKind::Bce => (0..batch).map(|_| rng.below(2) as f32).collect(),
            LossKind::CrossEntropy { classes } => (0..batch).map(|_| rng.below(classes) as f32).collect(),
            _ => rng.vec_f32(batch, -1.0, 1.0),
        });
        inputs.push((0..batch).map(|i| if i % 5 == 3 { 0.0 } else { 1.0 }).collect());
    }
    Net { graph: g, inputs }
}

/// Checks every parameter gradient of Σ_t w_t·L_t against central differences, in f64.
fn fd_check(g: &Graph, inputs: &[Vec<f32>], seed: u64, what: &str) {
    let params: Vec<Vec<f64>> = g.init_params(seed).unwrap().iter().map(|p| to64(p)).collect();
    let inputs: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    let w: Vec<f64> = (0..g.tasks()).map(|t| 0.5 + t as f64).collect();
    check_grads_fd(what, g, &params, &inputs, &w, Some(7));
}

#[test]
fn every_op_passes_finite_difference_gradient_checks() {
    // Linear with each activation, each loss.
    for act in Activation::ALL {
        let n = net(5, &[3, 4], act, &[LossKind::Mse, LossKind::CrossEntropy { classes: 3 }], 1);
        fd_check(&n.graph, &n.inputs, 2, &format!("linear {act:?}"));
    }
    for kind in [LossKind::L1, LossKind::Huber { delta: 1.0 }, LossKind::Bce] {
        let n = net(6, &[3, 5], Activation::Tanh, &[kind], 3);
        fd_check(&n.graph, &n.inputs, 4, &format!("loss {kind:?}"));
    }
    // Act and Add between parameters; a value used twice (z feeds both branches).
    let b = 4;
    let mut g = Graph::new();
    let x = g.input("x", &[b, 3]);
    let w = g.param("w", &[3, 3], Init::Uniform(0.8));
    let z = g.linear(x, w, None, Activation::Identity).unwrap();
    let a1 = g.act(z, Activation::Sigmoid).unwrap();
    let a2 = g.act(z, Activation::Gelu).unwrap();
    let s = g.add(a1, a2).unwrap();
    let s2 = g.add(s, z).unwrap();
    let w2 = g.param("w2", &[1, 3], Init::Uniform(0.8));
    let out = g.linear(s2, w2, None, Activation::Identity).unwrap();
    let y = g.input("y", &[b]);
    let m = g.input("m", &[b]);
    g.loss(out, y, m, LossKind::Mse, 0).unwrap();
    let mut rng = Rng::new(9);
    let inputs = vec![rng.vec_f32(b * 3, -1.0, 1.0), rng.vec_f32(b, -1.0, 1.0), vec![1.0; b]];
    fd_check(&g, &inputs, 5, "act + add + reuse");
}

/// A gate times a value, and a value times itself: the elementwise product's rule, with a
/// product feeding another product and an operand used twice (`g ⊙ g`).
fn gated(b: usize, f: usize, seed: u64) -> (Graph, Vec<Vec<f32>>) {
    let mut g = Graph::new();
    let x = g.input("x", &[b, f]);
    let wg = g.param("gate.weight", &[f, f], Init::Uniform(0.8));
    let bg = g.param("gate.bias", &[f], Init::Uniform(0.3));
    let wv = g.param("value.weight", &[f, f], Init::Uniform(0.8));
    let gate = g.linear(x, wg, Some(bg), Activation::Sigmoid).unwrap();
    let value = g.linear(x, wv, None, Activation::Tanh).unwrap();
    let mixed = g.mul(gate, value).unwrap();
    let sq = g.mul(gate, gate).unwrap();
    let both = g.add(mixed, sq).unwrap();
    let wo = g.param("out.weight", &[1, f], Init::Uniform(0.8));
    let out = g.linear(both, wo, None, Activation::Identity).unwrap();
    let y = g.input("y", &[b]);
    let m = g.input("m", &[b]);
    g.loss(out, y, m, LossKind::Mse, 0).unwrap();
    let mut rng = Rng::new(seed);
    let inputs = vec![rng.vec_f32(b * f, -1.0, 1.0), rng.vec_f32(b, -1.0, 1.0), vec![1.0; b]];
    (g, inputs)
}

#[test]
fn the_elementwise_product_passes_finite_difference_gradient_checks() {
    let (g, inputs) = gated(4, 3, 13);
    fd_check(&g, &inputs, 14, "gate ⊙ value + gate ⊙ gate");
}

#[test]
fn the_elementwise_product_on_the_gpu_equals_the_cpu_on_awkward_shapes() {
    for (b, f) in [(1, 3), (17, 5), (65, 17), (257, 63)] {
        let (g, inputs) = gated(b, f, 15);
        let init = g.init_params(16).unwrap();
        let mut gg = GpuGraph::new(ctx(), g.clone(), &init, None).unwrap();
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        gg.feed(&refs).unwrap();
        gg.forward_backward().unwrap();
        let got = gg.read_grads().unwrap();
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let run = gcpu::run(&g, &p64, &i64, &[1.0], true).unwrap();
        let loss = gg.losses().unwrap();
        assert_close(&format!("b {b} f {f} loss"), &loss, &run.losses, &[1e-4 * (1.0 + run.losses[0].abs())]);
        for (pi, want) in run.param_grads(&g).iter().enumerate() {
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            let tol = vec![1e-6 + 1e-4 * scale; want.len()];
            assert_close(&format!("b {b} f {f} grad {}", g.params[pi].name), &got[pi], want, &tol);
        }
    }
}

#[test]
fn three_layer_mlp_passes_finite_difference_gradient_check() {
    let n = net(
        7,
        &[4, 6, 5, 3],
        Activation::Tanh,
        &[LossKind::Mse, LossKind::Bce, LossKind::CrossEntropy { classes: 4 }],
        11,
    );
    fd_check(&n.graph, &n.inputs, 12, "3-layer mlp");
}

/// Compares GPU gradients (and losses) with the f64 CPU reference.
/// `fused`: the heads must run as one product (their weights fit any adapter's alignment, at
/// most 64 values, back to back: a representation width that is a multiple of 64).
fn gpu_vs_cpu(batch: usize, trunk: &[usize], act: Activation, heads: &[LossKind], fused: bool) {
    let n = net(batch, trunk, act, heads, 21);
    let init = n.graph.init_params(22).unwrap();
    let mut gg = GpuGraph::new(ctx(), n.graph.clone(), &init, None).unwrap();
    if fused {
        // (Whether other widths fuse depends on the adapter's alignment.)
        assert_eq!(gg.fused_head_groups(), 1, "batch {batch} trunk {trunk:?}: heads run as one product");
    }
    let w: Vec<f32> = (0..heads.len()).map(|t| 1.0 + 0.25 * t as f32).collect();
    gg.set_task_weights(&w).unwrap();
    let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
    gg.feed(&refs).unwrap();
    gg.forward_backward().unwrap();
    let got = gg.read_grads().unwrap();
    let got_losses = gg.losses().unwrap();

    let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
    let i64: Vec<Vec<f64>> = n.inputs.iter().map(|v| to64(v)).collect();
    let w64 = to64(&w);
    let run = gcpu::run(&n.graph, &p64, &i64, &w64, true).unwrap();
    let what = format!("batch {batch} trunk {trunk:?} {act:?}");
    let ltol: Vec<f64> = run.losses.iter().map(|l| 1e-4 * (1.0 + l.abs())).collect();
    assert_close(&format!("{what} losses"), &got_losses, &run.losses, &ltol);
    for (pi, want) in run.param_grads(&n.graph).iter().enumerate() {
        let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
        // f32 sums of up to `batch`·width terms: 1e-4 of the tensor's largest gradient.
        let tol = vec![1e-6 + 1e-4 * scale; want.len()];
        assert_close(&format!("{what} grad {}", n.graph.params[pi].name), &got[pi], want, &tol);
    }
}

#[test]
fn gpu_backward_equals_cpu_backward_on_awkward_shapes() {
    let heads = [LossKind::Mse, LossKind::Huber { delta: 1.0 }, LossKind::CrossEntropy { classes: 10 }];
    gpu_vs_cpu(1, &[3, 17], Activation::Relu, &heads, false);
    gpu_vs_cpu(17, &[63, 65, 3], Activation::Tanh, &heads, false);
    gpu_vs_cpu(65, &[17, 64, 63], Activation::Gelu, &heads[..2], false);
    gpu_vs_cpu(257, &[3, 65], Activation::LeakyRelu(0.01), &[LossKind::Bce, LossKind::L1], false);
    gpu_vs_cpu(63, &[5, 9], Activation::Sigmoid, &[LossKind::Mse], false);
    // Heads run as one product (outputs 1, 1 and 10, or 1 and 1).
    gpu_vs_cpu(1, &[3, 64], Activation::Relu, &heads, true);
    gpu_vs_cpu(17, &[5, 128], Activation::Tanh, &heads, true);
    gpu_vs_cpu(65, &[17, 64], Activation::Gelu, &[LossKind::Bce, LossKind::L1], true);
}

/// `steps` optimizer steps of the f64 CPU reference from `init`, every task weighted 1,
/// leaving the `frozen` parameters as they are.
fn cpu_train(n: &Net, init: &[Vec<f32>], opt: Optimizer, steps: usize, frozen: &[bool]) -> Vec<Vec<f64>> {
    let mut p: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
    let mut m: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut v = m.clone();
    let inputs: Vec<Vec<f64>> = n.inputs.iter().map(|v| to64(v)).collect();
    let weights = vec![1.0; n.graph.tasks()];
    for s in 1..=steps {
        let run = gcpu::run(&n.graph, &p, &inputs, &weights, true).unwrap();
        let g = run.param_grads(&n.graph);
        for i in (0..p.len()).filter(|&i| !frozen[i]) {
            opt.cpu_step(s as u64, &mut p[i], &g[i], &mut m[i], &mut v[i]);
        }
    }
    p
}

fn train_compare(opt: Optimizer, steps: usize) {
    train_compare_on(opt, steps, &[5, 17, 9]);
    // Heads run as one product, their weights placed together in the flat buffers.
    train_compare_on(opt, steps, &[5, 64]);
}

fn train_compare_on(opt: Optimizer, steps: usize, trunk: &[usize]) {
    let heads = [LossKind::Mse, LossKind::CrossEntropy { classes: 3 }];
    let n = net(33, trunk, Activation::Tanh, &heads, 31);
    let init = n.graph.init_params(32).unwrap();
    let mut gg = GpuGraph::new(ctx(), n.graph.clone(), &init, Some(opt)).unwrap();
    let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
    gg.feed(&refs).unwrap();
    for _ in 0..steps {
        gg.step().unwrap();
    }
    let got = gg.read_params().unwrap();

    let p = cpu_train(&n, &init, opt, steps, &vec![false; init.len()]);
    for (i, want) in p.iter().enumerate() {
        // After 20 steps of lr 1e-2, f32 rounding of the updates stays well below 1e-4.
        assert_close(&format!("{opt:?} {}", n.graph.params[i].name), &got[i], want, &vec![1e-4; want.len()]);
    }
}

#[test]
fn twenty_steps_of_sgd_momentum_match_the_cpu() {
    train_compare(Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 1e-3 }, 20);
    train_compare(Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0 }, 20);
    train_compare(Optimizer::sgd(0.1), 20);
}

#[test]
fn twenty_steps_of_adam_and_adamw_match_the_cpu() {
    train_compare(Optimizer::adam(1e-2), 20);
    train_compare(Optimizer::Adam { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-8, weight_decay: 1e-2 }, 20);
    train_compare(Optimizer::AdamW { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 }, 20);
}

#[test]
fn replayed_steps_submit_once_each_and_never_read_back_or_allocate() {
    let heads = [LossKind::Mse, LossKind::Mse, LossKind::CrossEntropy { classes: 10 }];
    let n = net(64, &[16, 32, 32], Activation::Relu, &heads, 41);
    let init = n.graph.init_params(42).unwrap();
    let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
    let steps = 25;
    // A context of its own: the shared one counts other tests' work running in parallel.
    let own = hydra::Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    let mut gg = GpuGraph::new(own.clone(), n.graph.clone(), &init, Some(Optimizer::adam(1e-3))).unwrap();
    gg.feed(&refs).unwrap();
    gg.step().unwrap();
    own.sync().unwrap();
    let before = own.counters();
    for _ in 0..steps {
        gg.feed(&refs).unwrap();
        gg.step().unwrap();
    }
    let after = own.counters();
    assert_eq!(after.submits - before.submits, steps as u64, "one submit per step");
    assert_eq!(after.readbacks - before.readbacks, 0, "no readback inside steps");
    assert_eq!(after.allocations - before.allocations, 0, "no allocation after the first step");
    assert_eq!(after.dispatches - before.dispatches, (steps * gg.dispatches_per_step()) as u64);
    // Losses stay on the GPU until asked for: one readback then.
    let l = gg.losses().unwrap();
    assert_eq!(own.counters().readbacks - after.readbacks, 1);
    assert!(l.iter().all(|v| v.is_finite()));
}

/// Parameters too large for the host's memory are an error naming them, not an abort.
#[test]
fn parameters_beyond_host_memory_are_an_error_not_an_abort() {
    let mut g = Graph::new();
    g.param("small", &[4], Init::Constant(0.0));
    g.param("huge", &[1 << 30, 1 << 30], Init::Uniform(0.1));
    let err = g.init_params(1).expect_err("2^60 floats cannot be allocated");
    let msg = err.to_string();
    assert!(msg.starts_with("out of host memory: parameter huge needs"), "{msg}");
}

/// The step's matmuls switched to their larger-block forms (compiled in the background in a
/// long run) train to the same bits as the quick forms: only speed changes.
#[test]
fn larger_block_upgrades_change_no_bit_of_training() {
    let ctx = ctx();
    // 128 x 128 outputs: 2x2 tiles of 4x4 per invocation in the long run, 1x1 at once.
    let spec = hydra::bench::peer_model(64, &[128, 128]);
    let batch = 128;
    let model = hydra::nn::MultiTaskModel::build(&spec, batch).unwrap();
    let init = model.graph.init_params(9).unwrap();
    let inputs = hydra::bench::peer_inputs(&spec, batch, 10);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let train = |upgrade: bool| {
        let mut g = GpuGraph::new(ctx.clone(), model.graph.clone(), &init, Some(Optimizer::adam(1e-2))).unwrap();
        if upgrade {
            assert!(g.start_upgrades() > 0, "this model's trunk products have larger-block forms");
            g.wait_upgrades();
            let (larger, in_use) = g.upgrade_progress();
            assert!(larger > 0 && in_use == larger, "{in_use} of {larger} upgrades in use");
            // On a CPU adapter the larger blocks read their operands through texture copies
            // (every trunk operand's rows are 64 or 128 floats): those must change no bit either.
            if ctx.adapter().kind == hydra::gpu::DeviceKind::Cpu {
                assert!(g.texture_operands() >= 8, "{} texture operands", g.texture_operands());
            }
        } else {
            assert_eq!(g.upgrade_progress().1, 0);
            assert_eq!(g.texture_operands(), 0, "one tile per invocation reads storage by default");
        }
        for _ in 0..5 {
            g.feed(&refs).unwrap();
            g.step().unwrap();
        }
        g.read_params().unwrap()
    };
    let quick = train(false);
    let upgraded = train(true);
    for (q, u) in quick.iter().zip(&upgraded) {
        assert!(q.iter().zip(u).all(|(a, b)| a.to_bits() == b.to_bits()), "parameters differ after the upgrade");
    }
}

#[test]
fn freezing_one_of_heads_run_as_one_product_updates_the_others_like_the_cpu() {
    // The heads' weights sit together in the flat buffers, so freezing the middle one splits
    // the update where parameter order would not.
    let heads = [LossKind::Mse, LossKind::Bce, LossKind::CrossEntropy { classes: 3 }];
    let n = net(9, &[5, 64], Activation::Tanh, &heads, 41);
    let init = n.graph.init_params(42).unwrap();
    let opt = Optimizer::adam(1e-2);
    let mut gg = GpuGraph::new(ctx(), n.graph.clone(), &init, Some(opt)).unwrap();
    assert_eq!(gg.fused_head_groups(), 1);
    let frozen: Vec<bool> = n.graph.params.iter().map(|p| p.name.starts_with("heads.t1.")).collect();
    assert_eq!(frozen.iter().filter(|&&f| f).count(), 2);
    gg.freeze(&frozen).unwrap();
    let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
    gg.feed(&refs).unwrap();
    let steps = 5;
    for _ in 0..steps {
        gg.step().unwrap();
    }
    let got = gg.read_params().unwrap();

    let p = cpu_train(&n, &init, opt, steps, &frozen);
    for (i, want) in p.iter().enumerate() {
        let name = &n.graph.params[i].name;
        if frozen[i] {
            assert!(got[i].iter().zip(&init[i]).all(|(a, b)| a.to_bits() == b.to_bits()), "{name} moved while frozen");
        } else {
            assert!(got[i] != init[i], "{name} did not move");
            assert_close(&format!("frozen middle head: {name}"), &got[i], want, &vec![1e-4; want.len()]);
        }
    }
}

#[test]
fn a_forward_only_graph_computes_the_same_outputs_and_no_gradients() {
    let heads = [LossKind::Mse, LossKind::CrossEntropy { classes: 3 }];
    for trunk in [&[5, 17, 9][..], &[5, 64][..]] {
        let n = net(9, trunk, Activation::Tanh, &heads, 51);
        let init = n.graph.init_params(52).unwrap();
        let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
        let mut full = GpuGraph::new(ctx(), n.graph.clone(), &init, None).unwrap();
        let mut fwd = GpuGraph::forward_only(ctx(), n.graph.clone(), &init).unwrap();
        // Every node with a value, compared bit for bit; and the losses.
        let ids: Vec<_> = (0..n.graph.nodes.len())
            .map(hydra::autograd::NodeId)
            .filter(|id| !matches!(n.graph.nodes[id.0].op, hydra::autograd::Op::Loss { .. }))
            .collect();
        let mut outs = Vec::new();
        for g in [&mut full, &mut fwd] {
            g.feed(&refs).unwrap();
            g.forward_backward().unwrap();
            outs.push((g.read_values(&ids).unwrap(), g.losses().unwrap(), g.read_grads().unwrap()));
        }
        let bits = |v: &[Vec<f32>]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&outs[0].0), bits(&outs[1].0), "trunk {trunk:?}: values");
        assert_eq!(bits(&[outs[0].1.clone()]), bits(&[outs[1].1.clone()]), "trunk {trunk:?}: losses");
        // The full graph computed gradients; the forward-only one has none to compute.
        assert!(outs[0].2.iter().flatten().any(|&g| g != 0.0), "trunk {trunk:?}: full graph's gradients");
        assert!(outs[1].2.iter().flatten().all(|&g| g == 0.0), "trunk {trunk:?}: forward-only gradients");
    }
}

#[test]
fn each_fusion_turned_off_gives_the_same_gradients_and_training() {
    use hydra::compile::Passes;
    let heads = [LossKind::Mse, LossKind::Bce, LossKind::CrossEntropy { classes: 3 }];
    let n = net(17, &[5, 64], Activation::Tanh, &heads, 61);
    let init = n.graph.init_params(62).unwrap();
    let refs: Vec<&[f32]> = n.inputs.iter().map(|v| v.as_slice()).collect();
    let run = |passes: Passes| {
        let mut g = GpuGraph::with_passes(ctx(), n.graph.clone(), &init, Some(Optimizer::adam(1e-2)), passes).unwrap();
        g.feed(&refs).unwrap();
        g.forward_backward().unwrap();
        let grads = g.read_grads().unwrap();
        for _ in 0..5 {
            g.step().unwrap();
        }
        (grads, g.read_params().unwrap(), g.dispatches_per_step(), g.fused_head_groups())
    };
    let (want_g, want_p, fused_dispatches, groups) = run(Passes::default());
    assert_eq!(groups, 1, "the heads run as one product when the pass is on");
    let off = [
        ("heads", Passes { fuse_heads: false, ..Passes::default() }),
        ("act_grad", Passes { fuse_act_grad: false, ..Passes::default() }),
        ("both", Passes { fuse_heads: false, fuse_act_grad: false, ..Passes::default() }),
    ];
    for (what, passes) in off {
        let (got_g, got_p, dispatches, _) = run(passes);
        assert_ne!(dispatches, fused_dispatches, "{what}: the pass changes the step's dispatches");
        for (pi, (got, want)) in got_g.iter().zip(&want_g).enumerate() {
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            let tol = vec![1e-6 + 1e-5 * f64::from(scale); want.len()];
            assert_close(&format!("{what} off: grad {}", n.graph.params[pi].name), got, &to64(want), &tol);
        }
        for (pi, (got, want)) in got_p.iter().zip(&want_p).enumerate() {
            let tol = vec![1e-5; want.len()];
            assert_close(&format!("{what} off: param {}", n.graph.params[pi].name), got, &to64(want), &tol);
        }
    }
}
