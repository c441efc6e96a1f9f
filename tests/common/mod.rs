//! Shared by the integration tests: one GPU context per test binary, and comparisons.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use hydra::Context;

pub mod three_tasks;

/// The test context. No adapter is a test failure with the install hint, never a skip.
pub fn ctx() -> Arc<Context> {
    static CTX: OnceLock<Arc<Context>> = OnceLock::new();
    CTX.get_or_init(|| match Context::new() {
        Ok(c) => c,
        Err(e) => panic!("GPU tests need an adapter: {e}"),
    })
    .clone()
}

/// Asserts |got - want| <= tol[i] elementwise, naming the first index that fails.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let err = (f64::from(got[i]) - want[i]).abs();
        assert!(
            approx::abs_diff_eq!(f64::from(got[i]), want[i], epsilon = tol[i]) && got[i].is_finite(),
            "{what}: element {i}: got {}, want {}, |err| {err:e} > tol {:e}",
            got[i],
            want[i],
            tol[i]
        );
    }
}

/// Uniform tolerance.
pub fn assert_close_all(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_close(what, got, want, &vec![tol; want.len()]);
}

pub fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Checks the gradient of Σ_t w_t·L_t at each parameter of `g` against central differences
/// (h = 1e-6, in f64): every element, or with `parts`, about that many per parameter.
pub fn check_grads_fd(
    what: &str,
    g: &hydra::autograd::Graph,
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
    w: &[f64],
    parts: Option<usize>,
) {
    use hydra::autograd::cpu::run;
    let grads = run(g, params, inputs, w, true).unwrap().param_grads(g);
    let total = |p: &[Vec<f64>]| run(g, p, inputs, w, false).unwrap().total(w);
    let h = 1e-6;
    for (pi, p) in params.iter().enumerate() {
        let step = parts.map_or(1, |parts| 1 + p.len() / parts);
        for i in (0..p.len()).step_by(step) {
            let (mut up, mut dn) = (params.to_vec(), params.to_vec());
            up[pi][i] += h;
            dn[pi][i] -= h;
            let fd = (total(&up) - total(&dn)) / (2.0 * h);
            let an = grads[pi][i];
            assert!(
                approx::relative_eq!(fd, an, epsilon = 1e-6, max_relative = 1e-5),
                "{what}: d/d {}[{i}]: finite difference {fd} vs backward {an}",
                g.params[pi].name
            );
        }
    }
}
