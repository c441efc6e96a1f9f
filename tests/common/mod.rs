//! Shared by the integration tests: one GPU context per test binary, and comparisons.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use hydra::Context;

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
