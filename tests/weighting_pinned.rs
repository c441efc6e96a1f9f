//! Each gradient method's coefficients on two fixed sets of gradients (three tasks with a
//! conflict, two that agree), against values computed independently of Hydra's code by
//! `scripts/weighting_reference.py` (numpy, from the formulas of LibMTL's weighting/*.py and
//! TorchJD's UPGrad, by other solution methods: exact enumeration of active sets, mirror
//! descent, explicit gradients, Newton in log space). Regenerate the constants with
//! `target/py-interop/bin/python scripts/weighting_reference.py`.
//!

use hydra::cpu::Rng;
use hydra::mtl::weighting::*;

const CONFLICT_MGDA: [f64; 3] = [0.5104712041884817, 0.48952879581151837, 0.0];
const CONFLICT_CAGRAD: [f64; 3] = [0.46504215971284635, 0.5115944825949535, 0.26666666666666666];
const CONFLICT_IMTL: [f64; 3] = [0.5186127689739951, 0.49882220850307196, -0.017434977477067088];
const CONFLICT_NASH: [f64; 3] = [0.9654060671139042, 1.043212592701702, 0.6379403769774544];
const CONFLICT_FAIRGRAD2: [f64; 3] = [1.0170047448314092, 1.081747751837202, 0.4952937487785978];
const CONFLICT_ALIGNED: [f64; 3] = [0.6779446624790193, 0.6882351761421556, 0.32006749169781173];
const CONFLICT_UPGRAD: [f64; 3] = [0.48320413436692505, 0.4744525547445255, 0.3333333333333333];
const AGREE_MGDA: [f64; 2] = [0.2822966507177033, 0.7177033492822967];
const AGREE_CAGRAD: [f64; 2] = [0.4, 0.7958957936183271];
const AGREE_IMTL: [f64; 2] = [0.4699178535790123, 0.5300821464209877];
const AGREE_NASH: [f64; 2] = [0.3688032091254826, 0.4160216412533333];
const AGREE_FAIRGRAD2: [f64; 2] = [0.25755908358795027, 0.31847505649494673];
const AGREE_ALIGNED: [f64; 2] = [0.34564863292619125, 0.4450180106034716];
const AGREE_UPGRAD: [f64; 2] = [0.5, 0.5];
const AGREE_PCGRAD: [f64; 2] = [1.0, 1.0];
const CONFLICT2_PCGRAD: [f64; 2] = [1.449612403100775, 1.4233576642335766];

fn conflict() -> Gram {
    Gram::of(&[vec![1.0, 0.0, 0.5, 0.2], vec![-0.6, 1.0, 0.0, 0.1], vec![0.2, 0.3, 1.0, -0.4]])
}

fn agree() -> Gram {
    Gram::of(&[vec![2.0, 0.5, 0.0], vec![1.0, 1.5, 0.3]])
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: {got:?}, the reference says {want:?}");
    }
}

#[test]
fn every_method_gives_the_reference_coefficients_on_gradients_with_a_conflict() {
    let m = conflict();
    close("mgda", &mgda(&m, &[1.0; 3], MgdaNorm::None), &CONFLICT_MGDA, 1e-6);
    close("cagrad", &cagrad(&m, 0.5, 1), &CONFLICT_CAGRAD, 1e-5);
    close("imtl", &imtl(&m), &CONFLICT_IMTL, 1e-9);
    close("nash_mtl", &nash_alpha(&m, 20), &CONFLICT_NASH, 1e-8);
    close("fairgrad α=2", &fair_weights(&m, 2.0, 20), &CONFLICT_FAIRGRAD2, 1e-8);
    close("aligned_mtl", &aligned_mtl(&m), &CONFLICT_ALIGNED, 1e-9);
    close("upgrad", &upgrad(&m), &CONFLICT_UPGRAD, 1e-9);
    let two = Gram::new(2, vec![m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1)]);
    close("pcgrad", &pcgrad(&two, &mut Rng::new(1)).0, &CONFLICT2_PCGRAD, 1e-12);
}

#[test]
fn every_method_gives_the_reference_coefficients_on_agreeing_gradients() {
    let m = agree();
    close("mgda", &mgda(&m, &[1.0; 2], MgdaNorm::None), &AGREE_MGDA, 1e-6);
    close("cagrad", &cagrad(&m, 0.5, 1), &AGREE_CAGRAD, 1e-5);
    close("imtl", &imtl(&m), &AGREE_IMTL, 1e-9);
    close("nash_mtl", &nash_alpha(&m, 20), &AGREE_NASH, 1e-8);
    close("fairgrad α=2", &fair_weights(&m, 2.0, 20), &AGREE_FAIRGRAD2, 1e-8);
    close("aligned_mtl", &aligned_mtl(&m), &AGREE_ALIGNED, 1e-9);
    close("upgrad", &upgrad(&m), &AGREE_UPGRAD, 1e-9);
    close("pcgrad", &pcgrad(&m, &mut Rng::new(1)).0, &AGREE_PCGRAD, 1e-12);
}

#[test]
fn no_method_is_equal_weighting_on_the_conflict() {
    // The pinned values themselves are far from equal weighting (all ones, or 1/T each),
    // so a method that fell back to it would fail the tests above.
    for (name, c) in [
        ("mgda", &CONFLICT_MGDA[..]),
        ("cagrad", &CONFLICT_CAGRAD[..]),
        ("imtl", &CONFLICT_IMTL[..]),
        ("nash_mtl", &CONFLICT_NASH[..]),
        ("aligned_mtl", &CONFLICT_ALIGNED[..]),
        ("upgrad", &CONFLICT_UPGRAD[..]),
    ] {
        let s: f64 = c.iter().sum();
        let spread = c.iter().map(|v| (v / s - 1.0 / 3.0).abs()).fold(0.0, f64::max);
        assert!(spread > 0.01, "{name}: {c:?} is equal weighting up to scale");
    }
}

/// GradVac as LibMTL writes it, on explicit gradients: the reference for the Gram version.
fn gradvac_on_vectors(g: &[Vec<f64>], targets: &mut [f64], beta: f64, rng: &mut Rng) -> Vec<f64> {
    let t = g.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut total = vec![0.0; g[0].len()];
    for i in 0..t {
        let mut pc = g[i].clone();
        let mut order: Vec<usize> = (0..t).filter(|&j| j != i).collect();
        hydra::rng::shuffle(&mut order, rng);
        for j in order {
            let (np, nj) = (dot(&pc, &pc).sqrt(), dot(&g[j], &g[j]).sqrt());
            let rho = dot(&pc, &g[j]) / (np * nj);
            let target = targets[i * t + j];
            if rho < target {
                let w = np * (target * (1.0 - rho * rho).sqrt() - rho * (1.0 - target * target).sqrt())
                    / (nj * (1.0 - target * target).sqrt());
                pc.iter_mut().zip(&g[j]).for_each(|(p, q)| *p += w * q);
                targets[i * t + j] = (1.0 - beta) * target + beta * rho;
            }
        }
        total.iter_mut().zip(&pc).for_each(|(s, p)| *s += p);
    }
    total
}

#[test]
fn gradvac_matches_its_reference_on_explicit_gradients_and_starts_as_pcgrad() {
    let mut rng = Rng::new(4);
    for t in [2usize, 3, 4] {
        let (mut ta, mut tb) = (vec![0.0; t * t], vec![0.0; t * t]);
        let (mut ra, mut rb) = (Rng::new(9), Rng::new(9));
        for step in 0..6 {
            let g: Vec<Vec<f64>> = (0..t).map(|_| (0..5).map(|_| rng.normal()).collect()).collect();
            let m = Gram::of(&g);
            if step == 0 {
                let pc = pcgrad(&m, &mut Rng::new(9)).0;
                let gv = gradvac(&m, &mut vec![0.0; t * t], 0.5, &mut Rng::new(9));
                close("first step = pcgrad", &gv, &pc, 1e-12);
            }
            let c = gradvac(&m, &mut ta, 0.5, &mut ra);
            let want = gradvac_on_vectors(&g, &mut tb, 0.5, &mut rb);
            close(&format!("gradvac T={t} step {step}"), &combine(&g, &c), &want, 1e-10);
            close(&format!("targets T={t} step {step}"), &ta, &tb, 1e-12);
        }
        assert!(ta.iter().any(|&v| v != 0.0), "T={t}: the targets moved");
    }
}
