//! Settings for the software driver (Mesa's lavapipe on llvmpipe) that must be in place before
//! it starts.

/// The environment variable that sets llvmpipe's worker thread count.
pub const THREADS_VAR: &str = "LP_NUM_THREADS";

/// The llvmpipe worker threads Hydra asks for when the environment does not say: twice the
/// CPU threads, at most 16.
///
/// llvmpipe runs a dispatch's workgroups on a pool of worker threads, one per CPU thread by
/// default, and hands each worker an equal share of them up front. A training step is a
/// few dozen dispatches of four to a few hundred workgroups, and with one worker per CPU the
/// workers of a dispatch often ran one after the other instead of side by side (`perf` on
/// this project's 2-CPU machine: one worker busy, the other idle, for most of a 256×256×256
/// product). With more workers than CPUs the scheduler keeps both CPUs busy: the peer
/// model's step went from 18–24 to 12–16 ms with 3, 4 or 8 workers on 2 CPUs (README,
/// Benchmarks). Results do not depend on it: each workgroup computes the same values on
/// any worker.
pub fn preferred_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cpus).min(16)
}

/// Sets [`THREADS_VAR`] to [`preferred_threads`] unless the environment already sets it, and
/// returns the value in force. It changes the process environment, which is not safe while
/// other threads may read it: call it first thing in `main`, before creating a
/// [`crate::Context`] or starting threads. (The `hydra` command does; a library user may, or
/// may set `LP_NUM_THREADS` themselves.) Adapters other than llvmpipe ignore the variable.
pub fn prefer_software_threads() -> String {
    match std::env::var(THREADS_VAR) {
        Ok(v) => v,
        Err(_) => {
            let n = preferred_threads().to_string();
            std::env::set_var(THREADS_VAR, &n);
            n
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn preferred_threads_are_twice_the_cpus_within_16() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = super::preferred_threads();
        assert_eq!(n, (2 * cpus).min(16));
        assert!((2..=16).contains(&n));
    }
}
