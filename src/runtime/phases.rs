//! The two submits of a gradient method's step, and the per-task gradients they expose:
//! phase one computes each task's gradient of the shared part and their Gram matrix, the host
//! solves for coefficients, phase two combines and updates.

use super::{GpuGraph, Segment};
use crate::error::{Error, Result};
use crate::gpu::Dispatch;
use crate::mtl::gpu::slots::Slots;
use crate::mtl::gpu::{TaskGradSpec, TaskStep};

/// What phase one of a gradient method's step leaves for the host.
#[derive(Clone, Debug)]
pub struct GramReadback {
    /// The Gram matrix `[R×R]`, R the slots' rows: T, or 2T with moving averages (the
    /// gradients, then the averages).
    pub gram: Vec<f32>,
    /// The task losses.
    pub losses: Vec<f32>,
    /// For a method that keeps sums of squares (ExcessMTL), each task's statistic.
    pub stats: Option<Vec<f32>>,
}

impl GpuGraph {
    pub(super) fn task_grads(&self) -> Result<(&TaskStep, &Slots)> {
        let tg = self
            .program
            .task
            .as_ref()
            .ok_or_else(|| Error::invalid("graph", "compiled without per-task gradients (GpuGraph::multi_task)"))?;
        let sl = tg.slots.as_ref().ok_or_else(|| {
            Error::invalid("graph", "the model shares no parameters (empty trunk): there are no shared gradients")
        })?;
        Ok((tg, sl))
    }

    /// Phase one of a gradient-method step: forward, the heads' backward, the per-task
    /// gradients of the target (for `params`, one trunk backward per task) and their Gram
    /// matrix. One submit; read M with [`GpuGraph::read_gram`], then call
    /// [`GpuGraph::apply_coefficients`] or [`GpuGraph::apply_graddrop`].
    pub fn gram_phase(&self) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        let mut d = self.dispatches(&[Segment::Forward, Segment::LossWeighting, Segment::Backward]);
        if sl.gp.is_some() {
            for t in 0..tg.tasks {
                d.push(&sl.copy_in[t]);
                d.extend(&tg.trunk_bw);
                d.push(&sl.copy_out[t]);
            }
        }
        if let Some((excess, _)) = &sl.excess {
            d.push(excess);
        }
        d.push(&sl.gram_target);
        self.ctx.run(&d)
    }

    /// Per-task gradient diagnostics at the shared representation, without updating anything:
    /// forward, heads' backward, Gram matrix. One submit.
    pub fn diagnostics_phase(&self) -> Result<()> {
        let (_, sl) = self.task_grads()?;
        let mut d = self.dispatches(&[Segment::Forward, Segment::Backward]);
        d.push(&sl.gram_repr);
        self.ctx.run(&d)
    }

    /// The Gram matrix `[T×T]` and the task losses, in one readback.
    /// (With moving averages, the block of the gradients themselves.)
    pub fn read_gram(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        crate::gpu::wait::block("reading the graph back", self.read_gram_async())
    }

    /// [`GpuGraph::read_gram`] as a future: the form a browser page uses.
    pub async fn read_gram_async(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let (tg, sl) = self.task_grads()?;
        let mut v = self.ctx.read_many_async(&[&sl.gram, &self.mem.losses]).await?;
        let l = v.pop().unwrap_or_default();
        let m = v.pop().unwrap_or_default();
        let (t, r) = (tg.tasks, sl.rows);
        Ok(((0..t * t).map(|k| m[(k / t) * r + k % t]).collect(), l))
    }

    /// What phase one leaves for the host, in one readback: see [`GramReadback`].
    pub fn read_gram_and_stats(&self) -> Result<GramReadback> {
        crate::gpu::wait::block("reading the graph back", self.read_gram_and_stats_async())
    }

    /// [`GpuGraph::read_gram_and_stats`] as a future: the form a browser page uses.
    pub async fn read_gram_and_stats_async(&self) -> Result<GramReadback> {
        let (_, sl) = self.task_grads()?;
        let mut bufs = vec![&sl.gram, &self.mem.losses];
        if let Some((_, w)) = &sl.excess {
            bufs.push(w);
        }
        let mut v = self.ctx.read_many_async(&bufs).await?.into_iter();
        let gram = v.next().unwrap_or_default();
        let losses = v.next().unwrap_or_default();
        Ok(GramReadback { gram, losses, stats: v.next() })
    }

    /// The rows the Gram matrix and the coefficients cover: T, or 2T with moving averages.
    pub fn gram_rows(&self) -> Result<usize> {
        Ok(self.task_grads()?.1.rows)
    }

    /// Phase two: d = Σ_t c_t g_t into the shared gradient (then, for the representation
    /// target, the trunk's backward) and the optimizer update. One upload, one submit.
    pub fn apply_coefficients(&mut self, c: &[f32]) -> Result<()> {
        self.apply_plan(c, None, None)
    }

    /// Phase two in full: the combination with coefficients `c` over the Gram matrix's rows;
    /// with moving averages, their update by `mix` (2T: `Y_t ← mix[t]·Y_t + mix[T+t]·G_t`, after
    /// the combination read them); with `heads`, each head parameter's gradient times its
    /// task's weight; then as [`GpuGraph::apply_coefficients`]. One upload (the plan buffer),
    /// one submit.
    pub fn apply_plan(&mut self, c: &[f32], mix: Option<&[f32]>, heads: Option<&[f32]>) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        match (&sl.mix, mix) {
            (Some(_), Some(_)) | (None, None) => {}
            (Some(_), None) => return Err(Error::invalid("apply_plan", "the moving averages need their update")),
            (None, Some(_)) => return Err(Error::invalid("apply_plan", "this graph keeps no moving averages")),
        }
        tg.plan.write(&self.ctx, c, mix, heads)?;
        self.next_update()?;
        let (tg, sl) = self.task_grads()?;
        let mut d = vec![&sl.combine_coef];
        if let Some(m) = &sl.mix {
            d.push(m);
        }
        if heads.is_some() {
            d.extend(&tg.head_scale);
        }
        self.finish(d)
    }

    /// Phase two with GradDrop (representation target): the sign-purity drop of the per-task
    /// gradients at the representation, with this step's `seed` and `leak`, then as
    /// [`GpuGraph::apply_coefficients`].
    pub fn apply_graddrop(&mut self, seed: u32, leak: f32) -> Result<()> {
        let (tg, sl) = self.task_grads()?;
        let gd = sl.graddrop.as_ref().ok_or_else(|| {
            Error::invalid("graddrop", "takes the representation target (LibMTL refuses parameter gradients)")
        })?;
        let d = self.graph().shape(tg.spec.z).last().copied().unwrap_or(1);
        let (u, f) = crate::kernels::graddrop_params(tg.tasks, (sl.len_z, d), sl.stride_z, (seed, leak));
        gd.set_params(&self.ctx, u, f);
        self.next_update()?;
        let (_, sl) = self.task_grads()?;
        match &sl.graddrop {
            Some(gd) => self.finish(vec![gd]),
            None => Err(Error::invalid("graddrop", "takes the representation target")),
        }
    }

    /// `combine` (and what goes with it), then the trunk's backward where the gradients were
    /// taken at the representation, then the update: one submit.
    fn finish<'a>(&'a self, mut d: Vec<&'a Dispatch>) -> Result<()> {
        let (_, sl) = self.task_grads()?;
        if sl.gp.is_none() {
            d.extend(self.dispatches(&[Segment::SharedBackward]));
        }
        d.extend(self.program.update()?);
        self.ctx.run(&d)
    }

    /// Whether per-task gradients of shared parameters exist (a non-empty trunk).
    pub fn has_task_grads(&self) -> bool {
        self.program.task.as_ref().is_some_and(|t| t.slots.is_some())
    }

    /// Reads the per-task gradients of the weighting target back, one row per task.
    pub fn read_task_grads(&self) -> Result<Vec<Vec<f32>>> {
        let (tg, sl) = self.task_grads()?;
        let (flat, p, stride) = match &sl.gp {
            Some(g) => (g, sl.len_p, sl.stride_p),
            None => (&sl.gz, sl.len_z, sl.stride_z),
        };
        let all = self.ctx.read(flat)?;
        Ok((0..tg.tasks).map(|t| all[t * stride..t * stride + p].to_vec()).collect())
    }

    /// The weighting spec this graph was compiled with.
    pub fn task_grad_spec(&self) -> Option<TaskGradSpec> {
        self.program.task.as_ref().map(|t| t.spec)
    }

    /// The GPU-side state of the weighting (FAMO's), if it keeps one.
    pub fn read_weighting_state(&self) -> Result<Option<Vec<f32>>> {
        crate::gpu::wait::block("reading the graph back", self.read_weighting_state_async())
    }

    /// [`GpuGraph::read_weighting_state`] as a future: the form a browser page uses.
    pub async fn read_weighting_state_async(&self) -> Result<Option<Vec<f32>>> {
        match self.program.task.as_ref().and_then(|t| t.weighting_state.as_ref()) {
            Some(t) => Ok(Some(self.ctx.read_async(t).await?)),
            None => Ok(None),
        }
    }

    /// Writes one value of the GPU-side state of the weighting (STCH's epoch).
    pub fn write_weighting_state_at(&self, index: usize, v: f32) -> Result<()> {
        match self.program.task.as_ref().and_then(|t| t.weighting_state.as_ref()) {
            Some(t) => self.ctx.write(&t.view(index, &[1])?, &[v]),
            None => Err(Error::invalid("weighting state", "this weighting keeps no GPU state")),
        }
    }

    /// Restores the GPU-side state of the weighting.
    pub fn write_weighting_state(&self, v: &[f32]) -> Result<()> {
        match self.program.task.as_ref().and_then(|t| t.weighting_state.as_ref()) {
            Some(t) => self.ctx.write(t, v),
            None => Err(Error::invalid("weighting state", "this weighting keeps no GPU state")),
        }
    }
}
