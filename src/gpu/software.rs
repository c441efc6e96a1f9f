//! Settings for the software driver (Mesa's lavapipe on llvmpipe) and the Vulkan loader that
//! must be in place before they start.

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

/// The environment variable the Vulkan loader's window-system probe (Wayland's client
/// library) reads; without it, every process that opens a Vulkan instance on Linux prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice, though nothing
/// is wrong.
pub const RUNTIME_DIR_VAR: &str = "XDG_RUNTIME_DIR";

/// Points [`RUNTIME_DIR_VAR`] at a private folder (`hydra-runtime-{uid}` in the temporary
/// folder, mode 0700, created if missing) when the environment sets none, so that a run prints
/// nothing Hydra did not write; returns the folder it set. A variable already set is left as
/// it is (a real session's, or a user's choice), and so is a folder that exists but is not
/// private to this user: then nothing is set and the probe may still complain. Linux only
/// (elsewhere the probe does not run); like [`prefer_software_threads`], call it first thing in
/// `main`, before any thread starts.
pub fn private_runtime_dir() -> Option<std::path::PathBuf> {
    if std::env::var_os(RUNTIME_DIR_VAR).is_some() {
        return None;
    }
    let dir = runtime_dir_candidate()?;
    std::env::set_var(RUNTIME_DIR_VAR, &dir);
    Some(dir)
}

#[cfg(target_os = "linux")]
fn runtime_dir_candidate() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // The process's own user: the owner of its /proc entry.
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let dir = std::env::temp_dir().join(format!("hydra-runtime-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let m = std::fs::metadata(&dir).ok()?;
    (m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0).then_some(dir)
}

#[cfg(not(target_os = "linux"))]
fn runtime_dir_candidate() -> Option<std::path::PathBuf> {
    None
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
