//! The fused loss kernels against the CPU reference: value and gradient, with masks, with
//! logits of ±100, with the task weight applied, and a batch without any label.

mod common;

use common::{assert_close, ctx, to64};
use hydra::cpu::{self, Rng};
use hydra::kernels::{self, LossKind};

const KINDS: [LossKind; 6] = [
    LossKind::Mse,
    LossKind::L1,
    LossKind::Huber { delta: 1.0 },
    LossKind::Bce,
    LossKind::CrossEntropy { classes: 10 },
    LossKind::CrossEntropy { classes: 3 },
];

fn labels_for(kind: LossKind, rng: &mut Rng, b: usize) -> Vec<f32> {
    match kind {
        LossKind::Bce => (0..b).map(|_| (rng.below(2)) as f32).collect(),
        LossKind::CrossEntropy { classes } => (0..b).map(|_| rng.below(classes) as f32).collect(),
        _ => rng.vec_f32(b, -3.0, 3.0),
    }
}

/// Runs the kernel for task 1 of 3 with weight `w` and compares loss and gradient.
fn check(kind: LossKind, logits: &[f32], labels: &[f32], mask: &[f32], w: f32) {
    let ctx = ctx();
    let b = labels.len();
    let c = kind.outputs();
    let gl = ctx.upload(logits, &[b, c]).unwrap();
    let gy = ctx.upload(labels, &[b]).unwrap();
    let gm = ctx.upload(mask, &[b]).unwrap();
    let gw = ctx.upload(&[0.5, w, 2.0], &[3]).unwrap();
    let grad = ctx.upload(&vec![7.0; b * c], &[b, c]).unwrap(); // stale values must be overwritten
    let losses = ctx.upload(&[9.0, 9.0, 9.0], &[3]).unwrap();
    let d = kernels::task_loss(&ctx, kind, &gl, &gy, &gm, &gw, 1, &grad, &losses).unwrap();
    ctx.run(&[&d]).unwrap();
    let got_loss = ctx.read(&losses).unwrap();
    let got_grad = ctx.read(&grad).unwrap();

    let mut want_grad = vec![0.0f64; b * c];
    let want = cpu::task_loss(kind, &to64(logits), &to64(labels), &to64(mask), f64::from(w), &mut want_grad);
    let what = format!("{kind:?} b={b}");
    assert_eq!(got_loss[0], 9.0, "{what}: another task's slot was written");
    assert_eq!(got_loss[2], 9.0, "{what}: another task's slot was written");
    // Loss: a mean of per-row terms each within a few ulps; gradient: per-element rounding.
    assert_close(&format!("{what} loss"), &got_loss[1..2], &[want], &[1e-5 * (1.0 + want.abs())]);
    let tol: Vec<f64> = want_grad.iter().map(|g| 1e-6 + 1e-5 * g.abs()).collect();
    assert_close(&format!("{what} grad"), &got_grad, &want_grad, &tol);
}

#[test]
fn fused_losses_match_cpu_with_masks_on_odd_batches() {
    for kind in KINDS {
        for b in [1usize, 3, 17, 63, 257, 1000] {
            let mut rng = Rng::new(b as u64 * 31);
            let logits = rng.vec_f32(b * kind.outputs(), -4.0, 4.0);
            let labels = labels_for(kind, &mut rng, b);
            let mut mask: Vec<f32> = (0..b).map(|_| if rng.uniform() < 0.3 { 0.0 } else { 1.0 }).collect();
            mask[0] = 1.0;
            check(kind, &logits, &labels, &mask, 1.5);
        }
    }
}

#[test]
fn fused_losses_are_finite_and_exact_for_logits_of_plus_minus_100() {
    for kind in KINDS {
        let b = 8;
        let mut rng = Rng::new(5);
        let c = kind.outputs();
        let logits: Vec<f32> = (0..b * c).map(|i| if i % 2 == 0 { 100.0 } else { -100.0 }).collect();
        let labels = labels_for(kind, &mut rng, b);
        check(kind, &logits, &labels, &[1.0; 8], 1.0);
    }
}

#[test]
fn a_batch_without_labels_gives_zero_loss_and_zero_gradient() {
    let ctx = ctx();
    for kind in KINDS {
        let b = 5;
        let c = kind.outputs();
        let gl = ctx.upload(&vec![1.0; b * c], &[b, c]).unwrap();
        let gy = ctx.upload(&[0.0; 5], &[b]).unwrap();
        let gm = ctx.upload(&[0.0; 5], &[b]).unwrap();
        let gw = ctx.upload(&[1.0], &[1]).unwrap();
        let grad = ctx.upload(&vec![3.0; b * c], &[b, c]).unwrap();
        let losses = ctx.upload(&[5.0], &[1]).unwrap();
        ctx.run(&[&kernels::task_loss(&ctx, kind, &gl, &gy, &gm, &gw, 0, &grad, &losses).unwrap()]).unwrap();
        assert_eq!(ctx.read(&losses).unwrap(), vec![0.0], "{kind:?}");
        assert!(ctx.read(&grad).unwrap().iter().all(|&g| g == 0.0), "{kind:?}");
    }
}

#[test]
fn loss_gradients_match_finite_differences_in_f64() {
    let h = 1e-6;
    for kind in KINDS {
        let b = 6;
        let c = kind.outputs();
        let mut rng = Rng::new(11);
        let logits: Vec<f64> = (0..b * c).map(|_| rng.range(-3.0, 3.0)).collect();
        let labels = to64(&labels_for(kind, &mut rng, b));
        let mask = [1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let mut grad = vec![0.0; b * c];
        cpu::task_loss(kind, &logits, &labels, &mask, 1.0, &mut grad);
        for i in 0..b * c {
            let mut up = logits.clone();
            up[i] += h;
            let mut dn = logits.clone();
            dn[i] -= h;
            let mut scratch = vec![0.0; b * c];
            let fd = (cpu::task_loss(kind, &up, &labels, &mask, 1.0, &mut scratch)
                - cpu::task_loss(kind, &dn, &labels, &mask, 1.0, &mut scratch))
                / (2.0 * h);
            assert!(approx::abs_diff_eq!(fd, grad[i], epsilon = 1e-6), "{kind:?} logit {i}: fd {fd} vs {}", grad[i]);
        }
    }
}

/// With counts, the mean divides by the global batch's labelled rows: a batch split in two
/// slices, each divided by the whole batch's count, gives losses that sum to the whole
/// batch's loss and gradients that are its rows' (data-parallel training relies on both).
#[test]
fn counted_losses_of_slices_sum_to_the_whole_batch() {
    let ctx = ctx();
    for kind in KINDS {
        for b in [3usize, 17, 63, 257] {
            let mut rng = Rng::new(b as u64 * 7 + 1);
            let c = kind.outputs();
            let logits = rng.vec_f32(b * c, -4.0, 4.0);
            let labels = labels_for(kind, &mut rng, b);
            let mask: Vec<f32> = (0..b).map(|i| if i % 5 == 2 { 0.0 } else { 1.0 }).collect();
            let n = mask.iter().filter(|&&m| m != 0.0).count() as f64;
            let mut whole_grad = vec![0.0f64; b * c];
            let whole = cpu::task_loss(kind, &to64(&logits), &to64(&labels), &to64(&mask), 1.5, &mut whole_grad);
            let cut = b / 3 + 1;
            let mut sum = 0.0;
            for (lo, hi) in [(0, cut), (cut, b)] {
                let rows = hi - lo;
                let (lg, ly, lm) = (&logits[lo * c..hi * c], &labels[lo..hi], &mask[lo..hi]);
                let gl = ctx.upload(lg, &[rows, c]).unwrap();
                let gy = ctx.upload(ly, &[rows]).unwrap();
                let gm = ctx.upload(lm, &[rows]).unwrap();
                let gw = ctx.upload(&[1.5, 1.0], &[2]).unwrap();
                let counts = ctx.upload(&[n as f32, 0.0], &[2]).unwrap();
                let grad = ctx.upload(&vec![7.0; rows * c], &[rows, c]).unwrap();
                let losses = ctx.zeros(&[2]).unwrap();
                let d = kernels::task_loss_counted(&ctx, kind, [&gl, &gy, &gm, &gw], 0, &grad, &losses, Some(&counts))
                    .unwrap();
                ctx.run(&[&d]).unwrap();
                let (got_loss, got_grad) = (ctx.read(&losses).unwrap(), ctx.read(&grad).unwrap());
                let mut want_grad = vec![0.0f64; rows * c];
                let want = cpu::task_loss_over(kind, &to64(lg), &to64(ly), &to64(lm), 1.5, Some(n), &mut want_grad);
                let what = format!("{kind:?} b={b} rows {lo}..{hi}");
                assert_close(&format!("{what} loss"), &got_loss[..1], &[want], &[1e-5 * (1.0 + want.abs())]);
                let tol: Vec<f64> = want_grad.iter().map(|g| 1e-6 + 1e-5 * g.abs()).collect();
                assert_close(&format!("{what} grad"), &got_grad, &want_grad, &tol);
                // The slice's rows carry the whole batch's gradient.
                assert_close(&format!("{what} vs whole"), &got_grad, &whole_grad[lo * c..hi * c], &tol);
                sum += want;
            }
            approx::assert_relative_eq!(sum, whole, max_relative = 1e-12);
        }
    }
}
