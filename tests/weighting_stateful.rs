//! The methods that keep state across steps (DB-MTL, MoCo, ExcessMTL) and Nash-MTL's heads,
//! through the same [`Weighter::plan`] the trainer calls, against values computed independently
//! of Hydra's code by `scripts/weighting_reference.py` (numpy, LibMTL's `DB_MTL`, `MoCo`,
//! `ExcessMTL` and `Nash_MTL` backward passes written out on explicit gradients, three steps).
//! Here the GPU's rows are kept explicitly: this step's gradients, then the moving averages
//! (or the sums of squares), so the joint Gram matrix and the statistics are what the GPU
//! reads back, and the update d = Σ coef·rows is what its combination computes.

use hydra::cpu::{excess_rows, mix_rows};
use hydra::mtl::weighting::*;
use hydra::Optimizer;

const CONFLICT_NASH_LIBMTL_SHARED: [f64; 3] = [0.5573774527255106, 0.602299071218335, 0.3683150483748646];
const CONFLICT_NASH_LIBMTL_HEADS: [f64; 3] = [1.5523869848674432, 1.677501008670239, 1.0258173965094683];
const AGREE_NASH_LIBMTL_SHARED: [f64; 2] = [0.2607832500959891, 0.29417172365058913];
const AGREE_NASH_LIBMTL_HEADS: [f64; 2] = [0.9517024869003275, 1.07355039432545];
const SMALL_NASH_LIBMTL_SHARED: [f64; 3] = [1.5523869848674432, 1.677501008670239, 1.0258173965094681];
const SMALL_NASH_LIBMTL_HEADS: [f64; 3] = [1.5523869848674432, 1.677501008670239, 1.0258173965094681];
const DB_MTL_D1: [f64; 4] = [0.12355634262879872, 0.25407272403045794, 0.2999999781518847, -0.020592725708458152];
const DB_MTL_HEADS1: [f64; 3] = [1.249999984375, 0.7692307633136095, 1.9999999600000007];
const DB_MTL_D2: [f64; 4] = [0.16477559899620764, 0.3937243515739367, 0.4625666726705364, 0.003671471574354754];
const DB_MTL_HEADS2: [f64; 3] = [1.6666666388888893, 0.9090909008264463, 2.222222172839507];
const DB_MTL_D3: [f64; 4] = [0.18612273474210794, 0.4581200274196713, 0.7654608012963053, -0.012191555127764708];
const DB_MTL_HEADS3: [f64; 3] = [1.9999999600000007, 1.1111110987654322, 2.4999999375000015];
const MOCO_D1: [f64; 4] = [0.02190310973869601, 0.2062789819624814, 0.1323746965102901, 0.012568219944408529];
const MOCO_LAMBDA1: [f64; 3] = [0.3343128300383289, 0.3317424136692947, 0.33394475629237647];
const MOCO_D2: [f64; 4] = [0.011957407156220155, 0.26577967890968607, 0.18851391695728692, 0.028321467074702227];
const MOCO_LAMBDA2: [f64; 3] = [0.3349036056376838, 0.33083960888644925, 0.334256785475867];
const MOCO_D3: [f64; 4] = [-0.012479726639073693, 0.23959523350488474, 0.21543713268757725, 0.026394044923545086];
const MOCO_LAMBDA3: [f64; 3] = [0.3350238677579042, 0.33090810275029775, 0.33406802949179804];
const EXCESS_W1: [f64; 3] = [1.0, 1.0, 1.0];
const EXCESS_W2: [f64; 3] = [1.0006343162484308, 0.9999521032378442, 0.9994135805137248];
const EXCESS_W3: [f64; 3] = [0.9998348187108725, 1.0011850759241443, 0.9989801053649834];
const GRADNORM_SCALES1: [f64; 3] = [1.0, 1.0, 1.0];
const GRADNORM_SCALES2: [f64; 3] = [1.0133774788850851, 0.9933112605544964, 0.9933112605604185];
const GRADNORM_SCALES3: [f64; 3] = [1.0168563071107886, 0.9913350152919014, 0.9918086775973104];

const G_CONFLICT: [[f64; 4]; 3] = [[1.0, 0.0, 0.5, 0.2], [-0.6, 1.0, 0.0, 0.1], [0.2, 0.3, 1.0, -0.4]];

/// The script's three steps: gradients (rows) and losses.
fn steps() -> Vec<(Vec<Vec<f64>>, Vec<f64>)> {
    let g1: Vec<Vec<f64>> = G_CONFLICT.iter().map(|r| r.to_vec()).collect();
    // 0.5·G + 0.1·(G with its columns rolled right by one).
    let g2 = g1.iter().map(|r| (0..4).map(|k| 0.5 * r[k] + 0.1 * r[(k + 3) % 4]).collect()).collect();
    let g3 = vec![vec![0.3, -0.2, 0.4, 0.0], vec![-0.5, 0.6, 0.1, 0.2], vec![0.1, 0.1, 0.7, -0.3]];
    vec![(g1, vec![0.8, 1.3, 0.5]), (g2, vec![0.6, 1.1, 0.45]), (g3, vec![0.5, 0.9, 0.4])]
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: {got:?}, the reference says {want:?}");
    }
}

/// The slots as the GPU keeps them: `[2T, P]`, the gradients then the state rows.
struct Rows {
    t: usize,
    p: usize,
    v: Vec<f64>,
}

impl Rows {
    fn new(t: usize, p: usize) -> Rows {
        Rows { t, p, v: vec![0.0; 2 * t * p] }
    }
    fn put(&mut self, g: &[Vec<f64>]) {
        for (i, r) in g.iter().enumerate() {
            self.v[i * self.p..(i + 1) * self.p].copy_from_slice(r);
        }
    }
    fn all(&self) -> Vec<Vec<f64>> {
        self.v.chunks(self.p).map(<[f64]>::to_vec).collect()
    }
    fn combine(&self, coef: &[f64]) -> Vec<f64> {
        let rows = self.all();
        (0..self.p).map(|k| coef.iter().zip(&rows).map(|(c, r)| c * r[k]).sum()).collect()
    }
}

fn run_momentum(method: Method) -> Vec<(Vec<f64>, Plan)> {
    let mut w = Weighter::new(method, Target::Params, &[1.0; 3], 0);
    let mut rows = Rows::new(3, 4);
    let mut out = Vec::new();
    for (g, l) in steps() {
        rows.put(&g);
        let plan = w.plan(&Gram::of(&rows.all()), &l, 1e-3, None).unwrap();
        let d = rows.combine(&plan.coef);
        mix_rows(&mut rows.v, plan.mix.as_ref().unwrap(), rows.t, rows.p, rows.p);
        out.push((d, plan));
    }
    out
}

#[test]
fn db_mtl_follows_libmtl_step_after_step() {
    let method = Method::by_name("db_mtl").unwrap();
    let want = [(DB_MTL_D1, DB_MTL_HEADS1), (DB_MTL_D2, DB_MTL_HEADS2), (DB_MTL_D3, DB_MTL_HEADS3)];
    for (k, ((d, plan), (wd, wh))) in run_momentum(method).iter().zip(want).enumerate() {
        close(&format!("db_mtl d, step {}", k + 1), d, &wd, 1e-9);
        close(&format!("db_mtl heads, step {}", k + 1), plan.heads.as_ref().unwrap(), &wh, 1e-9);
    }
}

#[test]
fn moco_follows_libmtl_step_after_step() {
    let method = Method::by_name("moco").unwrap();
    let want = [(MOCO_D1, MOCO_LAMBDA1), (MOCO_D2, MOCO_LAMBDA2), (MOCO_D3, MOCO_LAMBDA3)];
    for (k, ((d, plan), (wd, wl))) in run_momentum(method).iter().zip(want).enumerate() {
        close(&format!("moco d, step {}", k + 1), d, &wd, 1e-9);
        close(&format!("moco λ, step {}", k + 1), &plan.weights, &wl, 1e-9);
        assert!((plan.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(plan.heads.is_none(), "MoCo leaves the heads unweighted, as LibMTL");
    }
}

#[test]
fn excess_mtl_follows_libmtl_step_after_step() {
    let mut w = Weighter::new(Method::by_name("excess_mtl").unwrap(), Target::Params, &[1.0; 3], 0);
    let mut rows = Rows::new(3, 4);
    for (k, ((g, l), want)) in steps().into_iter().zip([EXCESS_W1, EXCESS_W2, EXCESS_W3]).enumerate() {
        rows.put(&g);
        let stats = excess_rows(&mut rows.v, 3, 4, 4);
        let plan = w.plan(&Gram::of(&g), &l, 1e-3, Some(&stats)).unwrap();
        close(&format!("excess_mtl weights, step {}", k + 1), &plan.coef, &want, 1e-9);
        assert_eq!(plan.heads.as_ref(), Some(&plan.coef), "ExcessMTL weights the heads too");
        assert!((plan.coef.iter().sum::<f64>() - 3.0).abs() < 1e-12);
    }
    // Without the statistics it says what is missing.
    let err = w.plan(&Gram::of(&steps()[0].0), &[1.0; 3], 1e-3, None).unwrap_err().to_string();
    assert!(err.contains("excess_mtl") && err.contains("statistic"), "{err}");
}

#[test]
fn nash_mtl_weights_the_heads_and_clips_the_shared_gradient_as_libmtl() {
    let agree = vec![vec![2.0, 0.5, 0.0], vec![1.0, 1.5, 0.3]];
    let conflict: Vec<Vec<f64>> = G_CONFLICT.iter().map(|r| r.to_vec()).collect();
    let small: Vec<Vec<f64>> = conflict.iter().map(|r| r.iter().map(|v| 1e-3 * v).collect()).collect();
    for (what, g, shared, heads) in [
        ("conflict", &conflict, &CONFLICT_NASH_LIBMTL_SHARED[..], &CONFLICT_NASH_LIBMTL_HEADS[..]),
        ("agree", &agree, &AGREE_NASH_LIBMTL_SHARED[..], &AGREE_NASH_LIBMTL_HEADS[..]),
        // Small gradients: LibMTL's update is below max_norm, so not clipped.
        ("small", &small, &SMALL_NASH_LIBMTL_SHARED[..], &SMALL_NASH_LIBMTL_HEADS[..]),
    ] {
        let t = g.len();
        let mut w = Weighter::new(Method::by_name("nash_mtl").unwrap(), Target::Params, &vec![1.0; t], 0);
        let plan = w.plan(&Gram::of(g), &vec![1.0; t], 1e-3, None).unwrap();
        close(&format!("nash_mtl shared, {what}"), &plan.coef, shared, 1e-7);
        close(&format!("nash_mtl heads, {what}"), plan.heads.as_ref().unwrap(), heads, 1e-7);
    }
}

#[test]
fn fairgrad_weights_the_heads_and_the_log_transform_gives_them_the_log_losses_gradients() {
    let g: Vec<Vec<f64>> = G_CONFLICT.iter().map(|r| r.to_vec()).collect();
    let mut w = Weighter::new(Method::by_name("fairgrad").unwrap(), Target::Params, &[1.0; 3], 0);
    let plan = w.plan(&Gram::of(&g), &[1.0; 3], 1e-3, None).unwrap();
    assert_eq!(plan.heads.as_ref(), Some(&plan.coef), "FairGrad backpropagates Σ w_t L_t, heads included");
    let losses = [0.5, 2.0, 4.0];
    let mut w = Weighter::new(Method::by_name("pcgrad").unwrap(), Target::Params, &[1.0; 3], 0).with_log_losses(true);
    let plan = w.plan(&Gram::of(&g), &losses, 1e-3, None).unwrap();
    close("pcgrad heads under the log transform", plan.heads.as_ref().unwrap(), &[2.0, 0.5, 0.25], 1e-15);
    let mut w = Weighter::new(Method::by_name("pcgrad").unwrap(), Target::Params, &[1.0; 3], 0);
    assert!(w.plan(&Gram::of(&g), &losses, 1e-3, None).unwrap().heads.is_none(), "PCGrad's heads: unweighted");
}

#[test]
fn gradnorm_follows_libmtl_after_an_equal_first_epoch() {
    let method = Method::by_name("gradnorm").unwrap();
    let mut w = Weighter::new(method, Target::Params, &[1.0; 3], 0).with_optimizer(Optimizer::adam(0.01));
    // The first epoch (two steps): equal weights, and its mean losses become L(0).
    for (g, l) in &steps()[..2] {
        assert_eq!(w.plan(&Gram::of(g), l, 0.01, None).unwrap().coef, vec![1.0; 3], "equal in the first epoch");
    }
    assert!(w.epoch_weights(&[1.0; 3]).is_none(), "GradNorm sets no loss weights between epochs");
    for (k, ((g, l), want)) in steps().iter().zip([GRADNORM_SCALES1, GRADNORM_SCALES2, GRADNORM_SCALES3]).enumerate() {
        let plan = w.plan(&Gram::of(g), l, 0.01, None).unwrap();
        close(&format!("gradnorm scales, step {}", k + 1), &plan.coef, &want, 1e-7);
        assert!(plan.heads.is_none(), "GradNorm leaves the heads unweighted, as LibMTL");
        assert!((plan.coef.iter().sum::<f64>() - 3.0).abs() < 1e-12);
    }
}
