//! The pieces of a data-parallel step ([`crate::dist`]): each rank computes the gradients of
//! its slice of the global batch without updating, the ranks sum what they computed, and each
//! applies the same update. Natively one submit per piece; the sums go through the host.

use super::{GpuGraph, Program, Segment};
use crate::error::{Error, Result};
use crate::mtl::gpu::GpuLossWeighting;

/// What a rank computed for its slice of the batch and the ranks sum, read in one readback:
/// every parameter's gradient, the task losses, and (a gradient method on the parameters) the
/// per-task gradients of the shared parameters.
#[derive(Clone, Debug, Default)]
pub struct Partials {
    /// Everything, one flat vector: gradients, then losses, then the per-task gradients.
    pub flat: Vec<f32>,
    grads: usize,
    losses: usize,
}

impl Partials {
    /// The task losses (the rank's share of each: summed over the ranks, the batch's losses).
    pub fn losses(&self) -> &[f32] {
        &self.flat[self.grads..self.grads + self.losses]
    }
}

impl GpuGraph {
    /// Sets each task's count of labelled rows in the global batch the fed batch is a slice
    /// of: the loss kernels divide by it, so the ranks' losses and gradients sum to the global
    /// batch's. Zeros go back to the fed batch's own counts.
    pub fn set_label_counts(&self, counts: &[f32]) -> Result<()> {
        self.ctx.write(&self.mem.counts, counts)
    }

    /// UW's constant term's share on this rank: 1 on one rank, 0 on the others, so the sum
    /// over ranks of the log-variances' gradients is the global one.
    pub fn set_uw_share(&self, share: f32) -> Result<()> {
        if let Some(t) = self.program.task.as_ref() {
            if let (GpuLossWeighting::Uw { .. }, Some(d)) = (t.spec.loss_weighting, t.post.first()) {
                let (u, f) = crate::kernels::uw_grad_params(t.tasks, share);
                d.set_params(&self.ctx, u, f);
            }
        }
        Ok(())
    }

    /// Forward and backward on the fed batch, nothing updated: every parameter's gradient
    /// (or, for a gradient method on the parameters, the per-task gradients and the heads').
    /// One submit.
    pub fn partial_phase(&self, gradient_method: bool) -> Result<()> {
        if !gradient_method {
            return self.ctx.run(&self.program.segments(&Program::GRADIENT));
        }
        let (tg, sl) = self.task_grads()?;
        let Some(_) = &sl.gp else {
            return Err(Error::invalid(
                "weighting.target",
                "data-parallel training combines per-task gradients of the parameters only (target = \"params\")",
            ));
        };
        let mut d = self.program.segments(&[Segment::Forward, Segment::LossWeighting, Segment::Backward]);
        for t in 0..tg.tasks {
            d.push(&sl.copy_in[t]);
            d.extend(&tg.trunk_bw);
            d.push(&sl.copy_out[t]);
        }
        self.ctx.run(&d)
    }

    /// Reads what [`GpuGraph::partial_phase`] left, in one readback.
    pub async fn read_partials_async(&self, gradient_method: bool) -> Result<Partials> {
        let grads = &self.mem.store.grads;
        let mut bufs = vec![grads, &self.mem.losses];
        if gradient_method {
            let (_, sl) = self.task_grads()?;
            bufs.extend(sl.gp.as_ref());
        }
        let parts = self.ctx.read_many_async(&bufs).await?;
        let (g, l) = (parts[0].len(), parts[1].len());
        Ok(Partials { flat: parts.concat(), grads: g, losses: l })
    }

    /// [`GpuGraph::read_partials_async`], blocking.
    pub fn read_partials(&self, gradient_method: bool) -> Result<Partials> {
        crate::gpu::wait::block("reading the step's gradients", self.read_partials_async(gradient_method))
    }

    /// Puts the ranks' sums back where [`GpuGraph::read_partials_async`] read them.
    pub fn write_partials(&self, p: &Partials) -> Result<()> {
        let (g, l) = (p.grads, p.losses);
        self.ctx.write(&self.mem.store.grads, &p.flat[..g])?;
        self.ctx.write(&self.mem.losses, &p.flat[g..g + l])?;
        if p.flat.len() > g + l {
            let (_, sl) = self.task_grads()?;
            if let Some(gp) = &sl.gp {
                self.ctx.write(gp, &p.flat[g + l..])?;
            }
        }
        Ok(())
    }

    /// The Gram matrix of the (summed) per-task gradients: what phase one of a gradient
    /// method ends with, read by [`GpuGraph::read_gram_and_stats`]. One submit.
    pub fn gram_of_partials(&self) -> Result<()> {
        let (_, sl) = self.task_grads()?;
        self.ctx.run(&[&sl.gram_target])
    }

    /// The update alone, on the gradients in place (one submit): what follows the sums of a
    /// loss-weighted step.
    pub fn update_phase(&mut self) -> Result<()> {
        self.next_update()?;
        self.ctx.run(&self.program.update()?)
    }
}
