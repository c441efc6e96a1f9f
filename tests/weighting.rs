//! The weighting library on its own: each method's invariant on random gradients, and the
//! two-objective toy problem of the Nash-MTL and CAGrad papers.

use hydra::cpu::Rng;
use hydra::mtl::weighting::*;

fn random_grads(t: usize, p: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    (0..t).map(|_| (0..p).map(|_| rng.normal()).collect()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn uw_with_fixed_losses_learns_s_equal_log_loss() {
    for loss in [0.05, 1.0, 7.5] {
        let mut s: f64 = 0.0;
        for _ in 0..5000 {
            let (_, ds) = uw(s, loss);
            s -= 0.05 * ds;
        }
        assert!(
            approx::abs_diff_eq!(s, f64::ln(loss), epsilon = 1e-6),
            "loss {loss}: s = {s}, log L = {}",
            f64::ln(loss)
        );
        let (w, _) = uw(s, loss);
        assert!(approx::abs_diff_eq!(w, 1.0 / (2.0 * loss), epsilon = 1e-6));
    }
}

#[test]
fn dwa_weights_sum_to_t_and_rlw_weights_to_one() {
    let mut rng = Rng::new(1);
    let hist = vec![vec![1.0, 2.0, 3.0], vec![0.5, 1.9, 3.1]];
    let w = dwa(&hist, 2.0);
    assert!(approx::abs_diff_eq!(w.iter().sum::<f64>(), 3.0, epsilon = 1e-12));
    assert!(w[2] > w[1] && w[1] > w[0], "the slowest-falling loss gets the largest weight: {w:?}");
    assert_eq!(dwa(&hist[..1], 2.0), vec![1.0; 3]);
    for _ in 0..100 {
        let w = rlw(4, &mut rng);
        assert!(approx::abs_diff_eq!(w.iter().sum::<f64>(), 1.0, epsilon = 1e-12) && w.iter().all(|&x| x > 0.0));
    }
}

#[test]
fn pcgrad_removes_conflict_and_keeps_agreeing_gradients() {
    let mut rng = Rng::new(2);
    let g = vec![vec![1.0, 0.2, 0.0], vec![-0.8, 1.0, 0.3]];
    assert!(dot(&g[0], &g[1]) < 0.0);
    let (c, rows) = pcgrad(&Gram::of(&g), &mut rng);
    let p0 = combine(&g, &rows[0]);
    let p1 = combine(&g, &rows[1]);
    assert!(dot(&p0, &g[1]).abs() < 1e-12, "g1_PC . g2 = {}", dot(&p0, &g[1]));
    assert!(dot(&p1, &g[0]).abs() < 1e-12, "g2_PC . g1 = {}", dot(&p1, &g[0]));
    let d = combine(&g, &c);
    let want: Vec<f64> = p0.iter().zip(&p1).map(|(a, b)| a + b).collect();
    assert!(d.iter().zip(&want).all(|(a, b)| approx::abs_diff_eq!(a, b, epsilon = 1e-12)));
    let agree = vec![vec![1.0, 0.5], vec![0.5, 1.0]];
    assert_eq!(pcgrad(&Gram::of(&agree), &mut rng).0, vec![1.0, 1.0]);
}

#[test]
fn mgda_meets_the_kkt_conditions_and_the_two_task_closed_form() {
    let mut rng = Rng::new(3);
    for t in 2..=8 {
        for trial in 0..20 {
            let g = random_grads(t, 5 + trial % 7, &mut rng);
            let m = Gram::of(&g);
            let a = min_norm(&m, 2000, 1e-12);
            assert!(approx::abs_diff_eq!(a.iter().sum::<f64>(), 1.0, epsilon = 1e-9) && a.iter().all(|&x| x >= -1e-12));
            let ma = m.mul(&a);
            let q = m.quad(&a);
            let scale = (0..t).map(|i| m.at(i, i)).fold(0.0, f64::max);
            for i in 0..t {
                assert!(ma[i] >= q - 1e-3 * scale, "T={t}: (Ma)_{i} = {} < a'Ma = {q}", ma[i]);
                if a[i] > 1e-3 {
                    assert!(
                        approx::abs_diff_eq!(ma[i], q, epsilon = 1e-3 * scale),
                        "T={t}: active {i}: {} vs {q}",
                        ma[i]
                    );
                }
            }
        }
    }
    for _ in 0..50 {
        let g = random_grads(2, 4, &mut rng);
        let m = Gram::of(&g);
        let diff: Vec<f64> = g[1].iter().zip(&g[0]).map(|(b, a)| b - a).collect();
        let closed = (dot(&diff, &g[1]) / dot(&diff, &diff)).clamp(0.0, 1.0);
        let a = min_norm(&m, 250, 1e-5);
        assert!(approx::abs_diff_eq!(a[0], closed, epsilon = 1e-9), "{} vs closed form {closed}", a[0]);
    }
}

#[test]
fn cagrad_with_c_zero_is_the_mean_gradient() {
    let mut rng = Rng::new(4);
    for t in 2..6 {
        let m = Gram::of(&random_grads(t, 6, &mut rng));
        let c = cagrad(&m, 0.0, 1);
        assert!(c.iter().all(|&x| approx::abs_diff_eq!(x, 1.0 / t as f64, epsilon = 1e-12)), "{c:?}");
    }
}

#[test]
fn cagrad_with_large_c_points_like_mgda() {
    let mut rng = Rng::new(44);
    let g = random_grads(3, 8, &mut rng);
    let m = Gram::of(&g);
    let d = combine(&g, &cagrad(&m, 100.0, 0));
    let a = min_norm(&m, 2000, 1e-12);
    let dm = combine(&g, &a);
    let cos = dot(&d, &dm) / (dot(&d, &d).sqrt() * dot(&dm, &dm).sqrt());
    assert!(cos > 0.95, "cosine to the MGDA direction {cos}");
}

#[test]
fn imtl_projects_equally_on_every_unit_gradient() {
    let mut rng = Rng::new(5);
    for t in 2..=6 {
        let g = random_grads(t, 10, &mut rng);
        let a = imtl(&Gram::of(&g));
        assert!(approx::abs_diff_eq!(a.iter().sum::<f64>(), 1.0, epsilon = 1e-9));
        let d = combine(&g, &a);
        let proj: Vec<f64> = g.iter().map(|gt| dot(&d, gt) / dot(gt, gt).sqrt()).collect();
        for p in &proj {
            assert!(approx::relative_eq!(*p, proj[0], epsilon = 1e-8, max_relative = 1e-8), "T={t}: {proj:?}");
        }
    }
}

#[test]
fn nash_mtl_solves_the_bargaining_equations() {
    let mut rng = Rng::new(6);
    for t in 2..=6 {
        let m = Gram::of(&random_grads(t, 12, &mut rng));
        let a = nash_alpha(&m, 20);
        let ma = m.mul(&a);
        let worst = (0..t).map(|i| (a[i] * ma[i] - 1.0).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-6, "T={t}: |a (Ma) - 1|_inf = {worst}");
        assert!(a.iter().all(|&x| x > 0.0));
    }
    // Orthogonal gradients: each task normalised.
    let m = Gram::new(2, vec![4.0, 0.0, 0.0, 0.25]);
    let a = nash_alpha(&m, 20);
    assert!(
        approx::abs_diff_eq!(a[0], 0.5, epsilon = 1e-8) && approx::abs_diff_eq!(a[1], 2.0, epsilon = 1e-8),
        "{a:?}"
    );
    // The update is clipped to norm 1.
    let c = nash_mtl(&m, 20, 1.0);
    assert!(approx::abs_diff_eq!(m.quad(&c).sqrt(), 1.0, epsilon = 1e-9));
}

#[test]
fn upgrad_never_conflicts_with_a_task() {
    let mut rng = Rng::new(7);
    for t in 2..=6 {
        for _ in 0..10 {
            let m = Gram::of(&random_grads(t, 4, &mut rng));
            let c = upgrad(&m);
            let mc = m.mul(&c);
            let scale = (0..t).map(|i| m.at(i, i)).fold(0.0, f64::max);
            assert!(mc.iter().all(|&x| x >= -1e-6 * scale), "T={t}: Gd = {mc:?}");
        }
    }
}

#[test]
fn aligned_mtl_equalises_orthogonal_gradients() {
    let m = Gram::new(3, vec![4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.25]);
    let a = aligned_mtl(&m);
    // α_t = ‖g‖_min / ‖g_t‖: every task moves by the same amount along its own gradient.
    let want = [0.25, 0.5, 1.0];
    for i in 0..3 {
        assert!(approx::abs_diff_eq!(a[i], want[i], epsilon = 1e-9), "{a:?}");
    }
}

#[test]
fn graddrop_keeps_signs_by_purity() {
    // One row of three columns with a positive representation: the signed sums are the
    // gradients themselves.
    let g = vec![vec![1.0, -1.0, 2.0], vec![3.0, -2.0, -1.0]];
    let x = [1.0; 3];
    // Columns 0 and 1 are pure (P ≈ 1 and ≈ 0): everything is kept whatever u is.
    let d = graddrop(&g, &x, 3, &[0.99, 0.01, 0.5], 0.0);
    assert_eq!(d[0], 4.0);
    assert_eq!(d[1], -3.0);
    // Column 2: P = (1 + 1/3)/2 = 2/3: u = 0.5 keeps the positive part, u = 0.9 the negative.
    assert_eq!(d[2], 2.0);
    assert_eq!(graddrop(&g, &x, 3, &[0.0, 0.0, 0.9], 0.0)[2], -1.0);
}

#[test]
fn graddrop_decides_per_column_from_batch_sums_signed_by_the_representation() {
    // Two rows of one column; the representation is negative in the second row, so task 0's
    // signed sum is 1 − 1 = 0 and task 1's is 1 + 3 = 4: P ≈ 1, task 0 is dropped in both
    // rows though its gradient is positive in both (a per-element purity would keep it).
    let g = vec![vec![1.0, 1.0], vec![1.0, -3.0]];
    let x = [0.5, -2.0];
    assert_eq!(graddrop(&g, &x, 1, &[0.5], 0.0), vec![1.0, -3.0]);
    // LibMTL's leak keeps that share of a dropped gradient.
    assert_eq!(graddrop(&g, &x, 1, &[0.5], 0.25), vec![1.25, -2.75]);
}

#[test]
fn gls_weights_are_the_geometric_mean_gradient() {
    let l = [0.5, 2.0];
    let w = gls(&l);
    let g = (0.5f64 * 2.0).sqrt();
    assert!(
        approx::abs_diff_eq!(w[0], g / (2.0 * 0.5), epsilon = 1e-12)
            && approx::abs_diff_eq!(w[1], g / 4.0, epsilon = 1e-12)
    );
}

// ---- The two-objective toy problem (nash-mtl experiments/toy/problem.py), analytic gradients.

#[derive(Clone, Copy)]
struct D {
    v: f64,
    d: [f64; 2],
}

impl D {
    fn c(v: f64) -> D {
        D { v, d: [0.0; 2] }
    }
    fn add(self, o: D) -> D {
        D { v: self.v + o.v, d: [self.d[0] + o.d[0], self.d[1] + o.d[1]] }
    }
    fn mul(self, o: D) -> D {
        D { v: self.v * o.v, d: [self.d[0] * o.v + self.v * o.d[0], self.d[1] * o.v + self.v * o.d[1]] }
    }
    fn k(self, s: f64) -> D {
        D { v: self.v * s, d: [self.d[0] * s, self.d[1] * s] }
    }
    fn f(self, v: f64, dv: f64) -> D {
        D { v, d: [self.d[0] * dv, self.d[1] * dv] }
    }
    fn tanh(self) -> D {
        let t = self.v.tanh();
        self.f(t, 1.0 - t * t)
    }
    // PyTorch's clamp(min = 0) passes the gradient at 0 itself.
    fn relu(self) -> D {
        if self.v >= 0.0 {
            self
        } else {
            D::c(0.0)
        }
    }
    fn ln_abs_clamped(self, lo: f64) -> D {
        let a = self.v.abs();
        if a < lo {
            D::c(lo.ln())
        } else {
            self.f(a.ln(), 1.0 / self.v)
        }
    }
}

fn toy(x: [f64; 2]) -> [D; 2] {
    let x1 = D { v: x[0], d: [1.0, 0.0] };
    let x2 = D { v: x[1], d: [0.0, 1.0] };
    let c1 = x2.k(0.5).tanh().relu();
    let c2 = x2.k(-0.5).tanh().relu();
    let tn = x2.k(-1.0).tanh();
    let quad = |s: f64| {
        let a = x1.k(-1.0).add(D::c(s));
        let b = x2.k(-1.0).add(D::c(-8.0));
        a.mul(a).add(b.mul(b).k(0.1)).k(0.1).add(D::c(-20.0))
    };
    let f1 = c1
        .mul(x1.k(-1.0).add(D::c(-7.0)).k(0.5).add(tn.k(-1.0)).ln_abs_clamped(5e-6).add(D::c(6.0)))
        .add(c2.mul(quad(7.0)));
    let f2 = c1
        .mul(x1.k(-1.0).add(D::c(3.0)).k(0.5).add(tn).add(D::c(2.0)).ln_abs_clamped(5e-6).add(D::c(6.0)))
        .add(c2.mul(quad(-7.0)));
    [f1.k(0.1), f2]
}

/// Runs 35,000 Adam steps (lr 1e-3) along the method's direction; returns the end point's
/// Pareto-stationarity: the min-norm point of conv{∇f1, ∇f2} relative to the gradients.
fn run_toy(method: Method, start: [f64; 2]) -> (f64, [f64; 2]) {
    let mut w = Weighter::new(method, Target::Params, &[1.0, 1.0], 0);
    let mut x = start;
    let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
    for step in 1..=35_000 {
        let f = toy(x);
        let g = vec![f[0].d.to_vec(), f[1].d.to_vec()];
        let gram = Gram::of(&g);
        let c = w.coefficients(&gram, &[f[0].v, f[1].v], 1e-3).unwrap();
        let d = combine(&g, &c);
        for i in 0..2 {
            m[i] = 0.9 * m[i] + 0.1 * d[i];
            v[i] = 0.999 * v[i] + 0.001 * d[i] * d[i];
            let mh = m[i] / (1.0 - 0.9f64.powi(step));
            let vh = v[i] / (1.0 - 0.999f64.powi(step));
            x[i] -= 1e-3 * mh / (vh.sqrt() + 1e-8);
        }
    }
    let f = toy(x);
    let g = vec![f[0].d.to_vec(), f[1].d.to_vec()];
    let gram = Gram::of(&g);
    let a = min_norm(&gram, 250, 1e-9);
    let stationarity = gram.quad(&a).max(0.0).sqrt() / gram.norm(0).max(gram.norm(1));
    (stationarity, x)
}

#[test]
fn cagrad_and_nash_mtl_reach_the_pareto_set_of_the_toy_problem_from_every_start() {
    let starts = [[-8.5, 7.5], [0.0, 0.0], [9.0, 9.0], [-7.5, -0.5], [9.0, -1.0]];
    for method in [Method::CaGrad { c: 0.5, rescale: 1 }, Method::NashMtl { iters: 20, max_norm: 1.0 }] {
        for s in starts {
            let (stat, end) = run_toy(method, s);
            assert!(stat < 0.05, "{} from {s:?} ended at {end:?}, not Pareto-stationary ({stat:.3})", method.name());
        }
    }
}

/// MGDA's gradient normalisations (LibMTL's `mgda_gn`) on two orthogonal gradients of norms 1
/// and 2 with losses 1 and 4: l2 divides by the norms, loss by the losses, loss+ by both; the
/// min-norm weights of the normalised gradients have a closed form here, and the
/// coefficients are α_t / s_t (LibMTL's).
#[test]
fn mgda_normalisations_divide_by_norm_loss_or_both() {
    let g = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
    let m = Gram::of(&g);
    let losses = [1.0, 4.0];
    // Orthogonal normalised gradients of norms a and b: α = (b², a²) / (a² + b²).
    let want = |a: f64, b: f64, s: [f64; 2]| {
        let (a2, b2) = (a * a, b * b);
        [b2 / (a2 + b2) / s[0], a2 / (a2 + b2) / s[1]]
    };
    for (norm, s) in [(MgdaNorm::L2, [1.0, 2.0]), (MgdaNorm::Loss, [1.0, 4.0]), (MgdaNorm::LossPlus, [1.0, 8.0])] {
        let c = mgda(&m, &losses, norm);
        let w = want(1.0 / s[0], 2.0 / s[1], s);
        for k in 0..2 {
            assert!(approx::abs_diff_eq!(c[k], w[k], epsilon = 1e-3), "{norm:?}: {c:?} vs {w:?}");
        }
    }
}
