//! The background compilation of the step's larger-block matmuls
//! ([`crate::compile::upgrade`]): each replaces its quick form as soon as it is built.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::compile::upgrade::UpgradeJob;
use crate::gpu::Context;

/// The jobs not yet started, then the thread building them.
#[derive(Default)]
pub struct Upgrader {
    jobs: Vec<UpgradeJob>,
    /// The thread, and the flag that stops it between two jobs.
    thread: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
}

impl Upgrader {
    /// An upgrader for these jobs, not started.
    pub fn new(jobs: Vec<UpgradeJob>) -> Upgrader {
        Upgrader { jobs, thread: None }
    }

    /// Starts building every job on a background thread. Returns how many were started; a
    /// second call starts none. In a browser (wasm32, no threads) nothing starts: the step
    /// keeps its quick forms (the same results).
    #[cfg(target_arch = "wasm32")]
    pub fn start(&mut self, _ctx: &Arc<Context>) -> usize {
        let _not_built = std::mem::take(&mut self.jobs);
        0
    }

    /// Starts building every job on a background thread. Returns how many were started; a
    /// second call starts none.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start(&mut self, ctx: &Arc<Context>) -> usize {
        let jobs = std::mem::take(&mut self.jobs);
        let count = jobs.len();
        if count == 0 {
            return 0;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ctx, flag) = (ctx.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            for job in jobs {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                job.build(&ctx);
            }
        });
        self.thread = Some((handle, stop));
        count
    }

    /// Waits until every started job is built.
    pub fn wait(&mut self) {
        if let Some((handle, _)) = self.thread.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Upgrader {
    /// Stops the thread after the matmul it is compiling, and waits for it.
    fn drop(&mut self) {
        if let Some((handle, stop)) = self.thread.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}
