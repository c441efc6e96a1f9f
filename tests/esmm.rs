//! ESMM's product task and the recsys generator: the product logit against a hand-computed
//! value and the CPU reference (stable for logits of ±100), its gradients by finite
//! differences and on the GPU, the config's checks, and the generator's known structure.

mod common;

use common::{assert_close_all, check_grads_fd, ctx, to64};
use hydra::autograd::cpu as gcpu;
use hydra::config::Config;
use hydra::cpu::{self, Rng};
use hydra::nn::{ModelSpec, MultiTaskModel, TaskSpec};
use hydra::{kernels, Activation, GpuGraph, LossKind};

#[test]
fn the_product_logit_is_the_logit_of_the_product_of_probabilities() {
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (a, b) = (0.3f64, -1.2f64);
    let p = s(a) * s(b);
    let mut y = [0.0f64];
    cpu::product_logit(&[a], &[b], &mut y);
    assert!(approx::relative_eq!(y[0], (p / (1.0 - p)).ln(), max_relative = 1e-12), "{} vs {}", y[0], p);
    // d/da of logit(p) = (1 − σ(a)) / (1 − p), by hand.
    let mut da = [0.0f64];
    cpu::product_logit_grad(&[a], &[b], &[1.0], false, &mut da, false);
    assert!(approx::relative_eq!(da[0], (1.0 - s(a)) / (1.0 - p), max_relative = 1e-12));
}

#[test]
fn the_product_logit_and_its_gradients_match_the_cpu_and_stay_finite() {
    let ctx = ctx();
    for n in [1usize, 3, 17, 65, 257] {
        let mut rng = Rng::new(n as u64);
        let mut a = rng.vec_f32(n, -6.0, 6.0);
        let mut b = rng.vec_f32(n, -6.0, 6.0);
        a[0] = 100.0;
        b[0] = if n > 1 { -100.0 } else { 100.0 };
        if n > 2 {
            a[1] = -100.0;
            b[1] = -100.0;
            a[2] = 100.0;
            b[2] = 100.0;
        }
        let dy = rng.vec_f32(n, -1.0, 1.0);
        let (ga, gb, gdy, gy) = (
            ctx.upload(&a, &[n]).unwrap(),
            ctx.upload(&b, &[n]).unwrap(),
            ctx.upload(&dy, &[n]).unwrap(),
            ctx.empty(&[n]).unwrap(),
        );
        ctx.run(&[&kernels::product_logit(&ctx, &ga, &gb, &gy).unwrap()]).unwrap();
        let y = ctx.read(&gy).unwrap();
        assert!(y.iter().all(|v| v.is_finite()), "{n}: {y:?}");
        let mut want = vec![0.0; n];
        cpu::product_logit(&to64(&a), &to64(&b), &mut want);
        let tol: Vec<f64> = want.iter().map(|w| 1e-5 * w.abs().max(1.0)).collect();
        common::assert_close(&format!("product_logit {n}"), &y, &want, &tol);
        for (at_b, acc) in [(false, false), (true, false), (true, true)] {
            let start = rng.vec_f32(n, -1.0, 1.0);
            let gd = ctx.upload(&start, &[n]).unwrap();
            ctx.run(&[&kernels::product_logit_grad(&ctx, &ga, &gb, &gdy, at_b, &gd, acc).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::product_logit_grad(&to64(&a), &to64(&b), &to64(&dy), at_b, &mut want, acc);
            let got = ctx.read(&gd).unwrap();
            assert!(got.iter().all(|v| v.is_finite()));
            assert_close_all(&format!("product_logit_grad {n} {at_b} {acc}"), &got, &want, 1e-5);
        }
    }
}

/// click, conversion and ctcvr = click × conversion on a hard-sharing trunk.
fn esmm(batch: usize) -> (MultiTaskModel, Vec<Vec<f32>>) {
    let tasks = ["click", "conversion", "ctcvr"].map(|n| TaskSpec { name: n.into(), loss: LossKind::Bce }).to_vec();
    let mut spec = ModelSpec::hard_sharing(3, &[4], &[], Activation::Tanh, tasks);
    spec.products = vec![(2, [0, 1])];
    let m = MultiTaskModel::build(&spec, batch).unwrap();
    let mut rng = Rng::new(9);
    let click: Vec<f32> = (0..batch).map(|_| (rng.next_u64() % 2) as f32).collect();
    let conv: Vec<f32> = (0..batch).map(|_| (rng.next_u64() % 2) as f32).collect();
    let buy: Vec<f32> = click.iter().zip(&conv).map(|(a, b)| a * b).collect();
    let inputs = vec![
        rng.vec_f32(batch * 3, -1.0, 1.0),
        click.clone(),
        vec![1.0; batch],
        conv,
        click, // conversion's labels count only after a click
        buy,
        vec![1.0; batch],
    ];
    (m, inputs)
}

#[test]
fn a_product_task_has_no_head_and_passes_finite_difference_checks() {
    let (m, inputs) = esmm(6);
    assert!(m.graph.params.iter().all(|p| !p.name.starts_with("heads.ctcvr")), "the product has no head");
    let params: Vec<Vec<f64>> = m.graph.init_params(1).unwrap().iter().map(|p| to64(p)).collect();
    let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    check_grads_fd("esmm", &m.graph, &params, &i64, &[1.0, 0.0, 1.0], None);
    check_grads_fd("esmm with every loss", &m.graph, &params, &i64, &[0.7, 0.4, 1.3], None);
    // The product's output is the logit of p(click)·p(conversion), by hand from the heads'.
    let run = gcpu::run(&m.graph, &params, &i64, &[1.0, 0.0, 1.0], false).unwrap();
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    for r in 0..6 {
        let (a, b, y) = (run.values[m.logits[0].0][r], run.values[m.logits[1].0][r], run.values[m.logits[2].0][r]);
        assert!(approx::relative_eq!(s(y), s(a) * s(b), max_relative = 1e-12), "row {r}");
    }
}

#[test]
fn a_product_task_on_the_gpu_equals_the_cpu() {
    for b in [1usize, 17, 257] {
        let (m, inputs) = esmm(b);
        let init = m.graph.init_params(2).unwrap();
        let mut gg = GpuGraph::new(ctx(), m.graph.clone(), &init, None).unwrap();
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        gg.set_task_weights(&[1.0, 0.5, 1.0]).unwrap();
        gg.feed(&refs).unwrap();
        gg.forward_backward().unwrap();
        let got = gg.read_grads().unwrap();
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let run = gcpu::run(&m.graph, &p64, &i64, &[1.0, 0.5, 1.0], true).unwrap();
        for (pi, want) in run.param_grads(&m.graph).iter().enumerate() {
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            assert_close_all(&format!("b {b} {}", m.graph.params[pi].name), &got[pi], want, 1e-6 + 1e-4 * scale);
        }
    }
}

const TASKS: &str = r#"
[data]
dataset = "recsys"
[[task]]
name = "click"
kind = "binary"
[[task]]
name = "conversion"
kind = "binary"
own_loss = false
[[task]]
name = "ctcvr"
target = "purchase"
kind = "binary"
product_of = ["click", "conversion"]
"#;

#[test]
fn product_of_and_own_loss_are_checked() {
    let parse = |t: &str| Config::parse("c.toml", t, ".".into()).map_err(|e| e.to_string());
    let c = parse(TASKS).unwrap();
    assert_eq!(c.tasks[2].product_of, vec!["click", "conversion"]);
    assert!(!c.tasks[1].own_loss && c.tasks[0].own_loss);
    let plain = TASKS.replace("own_loss = false\n", "");
    let e = parse(&plain.replace("[\"click\", \"conversion\"]", "[\"click\", \"later\"]")).unwrap_err();
    assert!(e.contains("task[2].product_of") && e.contains("later"), "{e}");
    let e = parse(
        &plain.replace("target = \"purchase\"\nkind = \"binary\"", "target = \"purchase\"\nkind = \"regression\""),
    )
    .unwrap_err();
    assert!(e.contains("task[2].product_of"), "{e}");
    let e = parse(
        &TASKS
            .replace("name = \"click\"\nkind = \"binary\"", "name = \"click\"\nkind = \"binary\"\nown_loss = false")
            .replace("product_of = [\"click\", \"conversion\"]", ""),
    )
    .unwrap_err();
    assert!(e.contains("own_loss"), "{e}");
}

#[test]
fn the_recsys_generator_has_its_documented_structure() {
    let t = hydra::data::recsys::recsys(30000, 1).unwrap();
    let col = |n: &str| t.column(n, "test").unwrap();
    let (dev, click, conv, dwell, buy) =
        (col("device"), col("click"), col("conversion"), col("dwell"), col("purchase"));
    let mut by_device = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for row in (0..t.len()).map(|r| t.row(r)) {
        let clicked = row[click] == "1";
        assert_eq!(row[conv].is_empty(), !clicked, "conversion is observed exactly after a click");
        assert_eq!(row[dwell].is_empty(), !clicked, "dwell likewise");
        assert_eq!(row[buy] == "1", clicked && row[conv] == "1", "purchase = click · conversion");
        let e = by_device.entry(row[dev].to_string()).or_default();
        e.0 += f64::from(u8::from(clicked));
        e.1 += 1.0;
    }
    let rate = |d: &str| by_device[d].0 / by_device[d].1;
    // Device effects on the click logit: mobile +0.3, desktop 0, tablet −0.3.
    assert!(rate("mobile") > rate("desktop") && rate("desktop") > rate("tablet"), "{by_device:?}");
    let rows = |t: &hydra::data::Table| (0..t.len()).map(|r| t.row(r).join(",")).collect::<Vec<_>>();
    let (a, b) = (hydra::data::recsys::recsys(50, 7).unwrap(), hydra::data::recsys::recsys(50, 7).unwrap());
    assert_eq!(rows(&a), rows(&b), "seeded");
}
