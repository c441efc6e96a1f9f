//! The gradient methods' solvers at every gradient scale: finite coefficients in bounded time
//! for gradient norms from 1e-8 to 1e8, with exactly collinear, opposite and zero gradients;
//! UPGrad leaves no conflict whatever the scales (it once looped forever on two conflicting
//! gradients of norms 0.1 and 1e-7); the methods that are scale-free give the same
//! coefficients for the gradients scaled by 1e-6 and 1e6.

use std::sync::mpsc;
use std::time::Duration;

use hydra::cpu::Rng;
use hydra::mtl::weighting::*;

/// Runs `f` on a thread and fails if it takes more than 20 s (a solver that never returns).
fn bounded<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what}: no answer within 20 s"))
}

/// Two gradients at cosine `cos`, of norms `n1` and `n2`.
fn pair(n1: f64, n2: f64, cos: f64) -> Gram {
    let sin = (1.0 - cos * cos).sqrt();
    Gram::of(&[vec![n1, 0.0], vec![n2 * cos, n2 * sin]])
}

fn conflicts(m: &Gram, c: &[f64]) -> Vec<f64> {
    // g_i · d / (‖g_i‖ ‖d‖): the cosine of each task's gradient with the update.
    let md = m.mul(c);
    let nd = m.quad(c).max(0.0).sqrt();
    (0..m.t).map(|i| if m.norm(i) * nd > 0.0 { md[i] / (m.norm(i) * nd) } else { 0.0 }).collect()
}

#[test]
fn upgrad_returns_without_conflict_for_conflicting_gradients_of_any_scale() {
    for (n1, n2) in [(0.1, 1e-7), (5e-7, 5e-7), (1.0, 1e-7), (1e8, 1e-8), (1e-8, 1e-8), (1e8, 1e8)] {
        let m = pair(n1, n2, -0.5);
        let c = bounded(format!("upgrad {n1} {n2}"), move || upgrad(&m));
        let m = pair(n1, n2, -0.5);
        assert!(c.iter().all(|v| v.is_finite()), "{n1} {n2}: {c:?}");
        let cos = conflicts(&m, &c);
        assert!(cos.iter().all(|&x| x >= -1e-9), "norms {n1}, {n2}: cosines with the update {cos:?}");
        assert!(m.quad(&c) > 0.0, "norms {n1}, {n2}: a zero update");
    }
}

/// Random gradients of norms drawn log-uniformly in [1e-8, 1e8], and the degenerate cases.
fn cases(rng: &mut Rng) -> Vec<(String, Gram)> {
    let mut out = Vec::new();
    for t in [2usize, 3, 5] {
        for k in 0..6 {
            let g: Vec<Vec<f64>> = (0..t)
                .map(|_| {
                    let s = 10f64.powf(rng.range(-8.0, 8.0));
                    (0..6).map(|_| s * rng.normal()).collect()
                })
                .collect();
            out.push((format!("random T={t} #{k}"), Gram::of(&g)));
        }
    }
    let u: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
    let w: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
    let scaled = |v: &[f64], s: f64| v.iter().map(|x| x * s).collect::<Vec<f64>>();
    for s in [1e-8, 1.0, 1e8] {
        out.push((format!("collinear at {s}"), Gram::of(&[scaled(&u, s), scaled(&u, 3.0 * s), scaled(&w, s)])));
        out.push((format!("opposite at {s}"), Gram::of(&[scaled(&u, s), scaled(&u, -s), scaled(&w, s)])));
        out.push((format!("a zero gradient at {s}"), Gram::of(&[scaled(&u, s), vec![0.0; 6], scaled(&w, s)])));
    }
    out
}

/// A gradient method on a Gram matrix and the losses.
type Solver = fn(&Gram, &[f64]) -> Vec<f64>;

#[test]
fn every_gradient_method_returns_finite_coefficients_at_every_scale() {
    let mut rng = Rng::new(11);
    for (name, m) in cases(&mut rng) {
        let losses = vec![1.0; m.t];
        let methods: Vec<(&str, Solver)> = vec![
            ("mgda", |m, l| mgda(m, l, MgdaNorm::None)),
            ("mgda l2", |m, l| mgda(m, l, MgdaNorm::L2)),
            ("cagrad", |m, _| cagrad(m, 0.4, 0)),
            ("imtl", |m, _| imtl(m)),
            ("nash_mtl", |m, _| nash_mtl(m, 20, 0.0)),
            ("aligned_mtl", |m, _| aligned_mtl(m)),
            ("upgrad", |m, _| upgrad(m)),
            ("fairgrad", |m, _| fair_weights(m, 2.0, 20)),
            ("gradvac", |m, _| gradvac(m, &mut vec![-0.5; m.t * m.t], 0.5, &mut Rng::new(1))),
        ];
        for (method, f) in methods {
            let (mm, ll) = (m.clone(), losses.clone());
            let c = bounded(format!("{method} on {name}"), move || f(&mm, &ll));
            assert!(c.iter().all(|v| v.is_finite()), "{method} on {name}: {c:?}");
            if method == "upgrad" {
                let cos = conflicts(&m, &c);
                assert!(cos.iter().all(|&x| x >= -1e-9), "upgrad on {name}: cosines {cos:?}");
            }
        }
    }
}

#[test]
fn scale_free_methods_give_the_same_coefficients_for_scaled_gradients() {
    let mut rng = Rng::new(5);
    let g: Vec<Vec<f64>> = (0..3).map(|_| (0..6).map(|_| rng.normal()).collect()).collect();
    let m = Gram::of(&g);
    for s in [1e-6, 1e6] {
        let ms = m.scaled(&[s, s, s]);
        let same = |what: &str, a: &[f64], b: &[f64]| {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    approx::relative_eq!(x, y, max_relative = 1e-6, epsilon = 1e-12),
                    "{what} at {s}: {a:?} vs {b:?}"
                );
            }
        };
        same("upgrad", &upgrad(&m), &upgrad(&ms));
        same("imtl", &imtl(&m), &imtl(&ms));
        same("mgda", &mgda(&m, &[1.0; 3], MgdaNorm::None), &mgda(&ms, &[1.0; 3], MgdaNorm::None));
        // Nash-MTL's α scales as 1/s: (sα)_t (s⁻¹…) — α(sG) = α(G)/s.
        let a: Vec<f64> = nash_alpha(&m, 20).iter().map(|v| v / s).collect();
        same("nash_mtl", &a, &nash_alpha(&ms, 20));
    }
}

#[test]
fn nash_mtl_solves_its_equations_on_small_gradients_too() {
    let mut rng = Rng::new(3);
    for s in [1e-7, 1.0, 1e7] {
        let g: Vec<Vec<f64>> = (0..3).map(|_| (0..5).map(|_| s * rng.normal()).collect()).collect();
        let m = Gram::of(&g);
        let a = nash_alpha(&m, 20);
        let ma = m.mul(&a);
        for t in 0..3 {
            assert!(approx::relative_eq!(ma[t] * a[t], 1.0, max_relative = 1e-4), "s {s}: (Mα)α = {}", ma[t] * a[t]);
        }
    }
}

#[test]
fn non_finite_coefficients_are_an_error_never_equal_weighting() {
    let mut w = Weighter::new(Method::by_name("upgrad").unwrap(), hydra::Target::Params, &[1.0, 1.0], 0);
    let bad = Gram::new(2, vec![f64::NAN, 0.0, 0.0, 1.0]);
    let e = w.coefficients(&bad, &[1.0, 1.0], 1e-3).unwrap_err().to_string();
    assert!(e.contains("weighting upgrad") && e.contains("diverged"), "{e}");
    let ok = w.coefficients(&pair(1.0, 1e-7, -0.5), &[1.0, 1.0], 1e-3).unwrap();
    assert!(ok.iter().all(|v| v.is_finite()));
}

#[test]
fn fairgrad_solves_its_alpha_fair_equations_and_is_nash_mtl_at_alpha_one() {
    let mut rng = Rng::new(21);
    for t in [2usize, 3, 5] {
        let g: Vec<Vec<f64>> = (0..t).map(|_| (0..6).map(|_| rng.normal()).collect()).collect();
        let m = Gram::of(&g);
        for p in [0.5, 1.0, 2.0, 5.0] {
            let w = fair_weights(&m, p, 20);
            let mw = m.mul(&w);
            for i in 0..t {
                assert!(w[i] > 0.0);
                let want = w[i].powf(-1.0 / p);
                assert!(
                    approx::relative_eq!(mw[i], want, max_relative = 1e-6),
                    "T={t} α={p}: (Mw)_{i} {} vs {want}",
                    mw[i]
                );
            }
            // Scaled gradients: w(sG) = s^{−2α/(α+1)} w(G).
            let s = 1e-4;
            let ws = fair_weights(&m.scaled(&vec![s; t]), p, 20);
            let k = s.powf(-2.0 * p / (p + 1.0));
            for i in 0..t {
                assert!(approx::relative_eq!(ws[i], k * w[i], max_relative = 1e-6), "T={t} α={p} scaled");
            }
        }
        let (a, b) = (fair_weights(&m, 1.0, 20), nash_alpha(&m, 20));
        assert_eq!(a, b, "α = 1 is Nash-MTL's bargaining solution");
    }
    // Registered, with α from the config.
    let c = hydra::config::Config::parse(
        "c.toml",
        "[data]\ndataset = \"energy\"\n[[task]]\nname = \"a\"\ntarget = \"heating_load\"\nkind = \"regression\"\n[weighting]\nmethod = \"fairgrad\"\nalpha = 2.0\n",
        ".".into(),
    )
    .unwrap();
    assert_eq!(c.weighting, Method::FairGrad { alpha: 2.0 });
}

#[test]
fn the_log_loss_transform_combines_the_gradients_of_log_l() {
    let mut rng = Rng::new(8);
    let g: Vec<Vec<f64>> = (0..3).map(|_| (0..5).map(|_| rng.normal()).collect()).collect();
    let losses = [0.5, 2.0, 8.0];
    // By hand: the gradients of log L_t are g_t / L_t; MGDA's min-norm point of those, as
    // coefficients of the g_t.
    let logs: Vec<Vec<f64>> = g.iter().zip(&losses).map(|(gt, l)| gt.iter().map(|v| v / l).collect()).collect();
    let on_logs = mgda(&Gram::of(&logs), &losses, MgdaNorm::None);
    let want: Vec<f64> = on_logs.iter().zip(&losses).map(|(c, l)| c / l).collect();
    let mut w =
        Weighter::new(Method::Mgda { norm: MgdaNorm::None }, hydra::Target::Params, &[1.0; 3], 0).with_log_losses(true);
    let got = w.coefficients(&Gram::of(&g), &losses, 1e-3).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!(approx::relative_eq!(a, b, max_relative = 1e-9), "{got:?} vs {want:?}");
    }
    let mut plain = Weighter::new(Method::Mgda { norm: MgdaNorm::None }, hydra::Target::Params, &[1.0; 3], 0);
    assert_ne!(plain.coefficients(&Gram::of(&g), &losses, 1e-3).unwrap(), got, "the transform changes the answer");
    // Configured for methods on the Gram matrix only.
    let cfg = |m: &str| {
        hydra::config::Config::parse(
            "c.toml",
            &format!("[data]\ndataset = \"energy\"\n[[task]]\nname = \"a\"\ntarget = \"heating_load\"\nkind = \"regression\"\n[weighting]\nmethod = \"{m}\"\nloss_transform = \"log\"\n"),
            ".".into(),
        )
        .map_err(|e| e.to_string())
    };
    assert!(cfg("pcgrad").unwrap().log_losses);
    let e = cfg("uw").unwrap_err();
    assert!(e.contains("weighting.loss_transform") && e.contains("uw"), "{e}");
}

#[test]
fn the_methods_with_state_return_finite_plans_at_every_scale() {
    let mut rng = Rng::new(13);
    for (name, m) in cases(&mut rng) {
        let t = m.t;
        // The joint Gram matrix of [g; y] with y = g/2 (a later step's averages).
        let joint = Gram::new(
            2 * t,
            (0..4 * t * t)
                .map(|k| {
                    let (i, j) = (k / (2 * t), k % (2 * t));
                    let f = if i < t { 1.0 } else { 0.5 } * if j < t { 1.0 } else { 0.5 };
                    f * m.at(i % t, j % t)
                })
                .collect(),
        );
        let losses = vec![1.0; t];
        for method in ["db_mtl", "moco", "excess_mtl"] {
            let mut w = Weighter::new(Method::by_name(method).unwrap(), Target::Params, &losses, 0);
            let stats: Vec<f64> = (0..t).map(|i| m.at(i, i).sqrt()).collect();
            for step in 0..3 {
                let plan = if method == "excess_mtl" {
                    w.plan(&m, &losses, 1e-3, Some(&stats))
                } else {
                    w.plan(&joint, &losses, 1e-3, None)
                };
                let plan = plan.unwrap_or_else(|e| panic!("{method} on {name}, step {step}: {e}"));
                let all = plan.coef.iter().chain(plan.mix.iter().flatten()).chain(plan.heads.iter().flatten());
                assert!(all.clone().all(|v| v.is_finite()), "{method} on {name}, step {step}: {plan:?}");
            }
        }
    }
}
