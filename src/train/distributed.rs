//! The trainer's data-parallel side ([`crate::dist`]): the config's `batch_size` stays the
//! global batch, each rank takes its contiguous share of every batch, divides its losses by
//! the global batch's label counts, and the ranks sum their gradients (for a gradient method,
//! the per-task gradients before the Gram matrix, and the losses) before every rank applies
//! the same update. Early-stopping decisions are rank 0's, and the parameters are checked to
//! be the same bits on every rank at every evaluation.

use std::time::Instant;

use super::trainer::Trainer;
use crate::data::Dataset;
use crate::dist::{self, Collective};
use crate::error::{Error, Result};
use crate::mtl::weighting::{Method, Runs, Target, Weighter};

/// A trainer's collective and what it has cost.
pub(super) struct Dist {
    pub(super) coll: Box<dyn Collective>,
    /// Test hook (`HYDRA_DIST_FAIL=rank:step`, or `rank:step:error`): before that step this
    /// rank's process ends abruptly, as a crashed one would (or fails with an error, as one
    /// whose disk or device failed).
    fail_at: Option<(u64, bool)>,
    pub(super) cost: DistCost,
}

/// What data-parallel training cost this rank: how much it sent and how long it waited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DistCost {
    /// The ranks.
    pub ranks: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Floats each rank contributes to the sums of one step (4 bytes each).
    pub floats_per_step: usize,
    /// Seconds in the sums, from the end of the rank's computation: reading the gradients
    /// back, the collective (waiting for the slowest rank included), writing them back.
    pub sum_seconds: f64,
    /// Seconds of the whole steps, the sums included.
    pub step_seconds: f64,
}

impl Dist {
    pub(super) fn new(coll: Box<dyn Collective>) -> Dist {
        let rank = coll.rank();
        let fail_at = std::env::var("HYDRA_DIST_FAIL").ok().and_then(|v| {
            let mut parts = v.split(':');
            let (r, s) = (parts.next()?.parse::<usize>().ok()?, parts.next()?.parse::<u64>().ok()?);
            (r == rank).then_some((s, parts.next() == Some("error")))
        });
        let cost = DistCost { ranks: coll.size(), ..DistCost::default() };
        Dist { coll, fail_at, cost }
    }
}

/// Whether data-parallel training runs `weighter`'s method as a single process would: the
/// loss weightings that do not read the step's losses on the GPU (UW's read only through its
/// gradient, which the sums make global), and gradient methods on the parameters without
/// state kept on the GPU.
pub(super) fn check_method(w: &Weighter) -> Result<()> {
    let m = &w.method;
    let refuse =
        |why: &str| Err(Error::invalid("weighting.method", format!("{} cannot train data-parallel: {why}", m.name())));
    match m.entry().runs {
        Runs::Fixed | Runs::HostPerStep | Runs::HostPerEpoch => Ok(()),
        Runs::GpuInStep if matches!(m, Method::Uw) => Ok(()),
        Runs::GpuInStep => refuse("its weights come from each step's losses on the GPU, which are a rank's share"),
        Runs::GpuElementwise => refuse("it combines the per-task gradients element by element on the GPU"),
        Runs::GramThenHost if w.target != Target::Params => refuse(
            "data-parallel gradient methods take target = \"params\" (the representation's gradients are per row)",
        ),
        Runs::GramThenHost if m.slot_state() != crate::mtl::gpu::SlotState::None => {
            refuse("it keeps per-task state on the GPU")
        }
        Runs::GramThenHost => Ok(()),
    }
}

impl Trainer {
    /// The rows of the global batch `chunk` this rank takes (all of them on one process).
    pub(super) fn rows_of<'a>(&self, chunk: &'a [usize]) -> &'a [usize] {
        match &self.dist {
            Some(d) => &chunk[dist::share(chunk.len(), d.coll.rank(), d.coll.size())],
            None => chunk,
        }
    }

    /// Sets the global batch's label counts (each rank knows every row of it).
    pub(super) fn set_global_counts(&self, train: &Dataset, chunk: &[usize]) -> Result<()> {
        if self.dist.is_none() {
            return Ok(());
        }
        let counts: Vec<f32> =
            train.masks.iter().map(|m| chunk.iter().filter(|&&r| m[r] != 0.0).count() as f32).collect();
        self.graph.set_label_counts(&counts)
    }

    /// The data-parallel part of a step: this rank's gradients of its share (per-task ones for
    /// a gradient method), summed over the ranks in place; a rank whose losses are not finite
    /// (or that fails) stops every rank with an error naming it.
    pub(super) async fn sum_partials(&mut self, gradient_method: bool) -> Result<()> {
        let step = self.graph.steps() + 1;
        match self.dist.as_ref().and_then(|d| d.fail_at) {
            Some((at, false)) if at == step => std::process::exit(3),
            Some((at, true)) if at == step => {
                return Err(Error::invalid("HYDRA_DIST_FAIL", format!("a failure injected before step {step}")))
            }
            _ => {}
        }
        self.graph.partial_phase(gradient_method)?;
        // The computation finished first, so the sums' time is theirs alone.
        self.ctx.sync_async().await?;
        let summing = Instant::now();
        let mut p = self.graph.read_partials_async(gradient_method).await?;
        // 0: finite; 1 + t: task t's loss is not; u64::MAX: a gradient is not.
        let code = match p.losses().iter().position(|l| !l.is_finite()) {
            Some(t) => t as u64 + 1,
            None if p.flat.iter().any(|v| !v.is_finite()) => u64::MAX,
            None => 0,
        };
        let Some(d) = self.dist.as_mut() else { return Ok(()) };
        let status = d.coll.gather(code)?;
        if let Some((rank, &code)) = status.iter().enumerate().find(|(_, &c)| c != 0) {
            let what = match self.tasks.get((code as usize).wrapping_sub(1)) {
                Some(t) => format!("task {:?}'s loss", t.name),
                None => "a gradient".to_string(),
            };
            return Err(Error::Distributed {
                rank,
                message: format!("training diverged at step {step}: {what} on its share of the batch is not finite"),
            });
        }
        d.coll.sum(&mut p.flat)?;
        self.graph.write_partials(&p)?;
        if gradient_method {
            self.graph.gram_of_partials()?;
        }
        if let Some(d) = self.dist.as_mut() {
            d.cost.floats_per_step = p.flat.len();
            d.cost.sum_seconds += summing.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// Runs one step, timing it when data-parallel (only then: a browser has no clock here).
    pub(super) async fn timed_step(&mut self) -> Result<()> {
        let start = self.dist.is_some().then(Instant::now);
        self.train_step().await?;
        if let (Some(d), Some(start)) = (self.dist.as_mut(), start) {
            d.cost.steps += 1;
            d.cost.step_seconds += start.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// After an evaluation: every rank keeps rank 0's decision (whether to keep this epoch,
    /// whether to stop), and the parameters must be the same bits on every rank.
    pub(super) async fn agree_on_epoch(&mut self, kept: bool) -> Result<bool> {
        if self.dist.is_none() {
            return Ok(kept);
        }
        let params = self.graph.read_params_async().await?;
        let d = self.dist.as_mut().ok_or_else(|| Error::invalid("distributed", "no collective"))?;
        let hashes = d.coll.gather(fingerprint(&params))?;
        if let Some(rank) = hashes.iter().position(|&h| h != hashes[0]) {
            return Err(Error::Distributed { rank, message: "its parameters differ from rank 0's".into() });
        }
        let decision = d.coll.gather(u64::from(kept) | (u64::from(self.state.stopped) << 1))?;
        self.state.stopped = decision[0] & 2 != 0;
        Ok(decision[0] & 1 != 0)
    }

    /// What data-parallel training has cost so far (None on one process).
    pub fn distributed_cost(&self) -> Option<DistCost> {
        self.dist.as_ref().map(|d| d.cost)
    }

    /// This trainer's rank and the number of ranks ((0, 1) on one process).
    pub fn rank(&self) -> (usize, usize) {
        self.dist.as_ref().map_or((0, 1), |d| (d.coll.rank(), d.coll.size()))
    }
}

/// FNV-1a over the parameters' bits: equal on two ranks only if (all but surely) every bit is.
fn fingerprint(params: &[Vec<f32>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in params.iter().flatten() {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
