//! TAG's lookahead-affinity probe of a compiled step, in one submit (see
//! [`crate::mtl::gpu::affinity`]), and its readback.

use super::{GpuGraph, Segment};
use crate::error::{Error, Result};
use crate::mtl::gpu::affinity::AffinityProbe;

/// What one probe measured on the fed batch.
#[derive(Clone, Debug)]
pub struct AffinityReadback {
    /// Each task's loss before any step.
    pub before: Vec<f32>,
    /// `after[i][j]`: task j's loss after the shared parameters took task i's own SGD step.
    pub after: Vec<Vec<f32>>,
    /// The Gram matrix `[T×T]` of the tasks' gradients of the shared parameters, as the loss
    /// weights left them (each row times its task's weight).
    pub gram: Vec<f32>,
    /// The loss weights in force.
    pub weights: Vec<f32>,
}

impl GpuGraph {
    fn probe(&self) -> Result<&AffinityProbe> {
        self.program.task.as_ref().and_then(|t| t.affinity.as_ref()).ok_or_else(|| {
            Error::invalid("affinity", "the graph was compiled without the affinity probe (or shares no parameters)")
        })
    }

    /// On the fed batch, without changing the parameters or the optimizer: every task's loss,
    /// each task's gradient of the shared parameters, and every task's loss after the shared
    /// parameters took one SGD step on each task's gradient alone. One submit; read it with
    /// [`GpuGraph::read_affinity`].
    pub fn affinity_probe(&self) -> Result<()> {
        let p = self.probe()?;
        let tg = self.program.task.as_ref().ok_or_else(|| Error::invalid("affinity", "no multi-task step"))?;
        let forward = self.dispatches(&[Segment::Forward]);
        let mut d = self.dispatches(&[Segment::Forward, Segment::Backward]);
        d.push(&p.keep_losses[0]);
        for t in 0..tg.tasks {
            d.push(&p.copy_in[t]);
            d.extend(&tg.trunk_bw);
            d.push(&p.copy_out[t]);
        }
        d.push(&p.save);
        for t in 0..tg.tasks {
            d.push(&p.look[t]);
            d.extend(&forward);
            d.push(&p.keep_losses[t + 1]);
        }
        d.push(&p.restore);
        d.push(&p.gram_dispatch);
        self.ctx.run(&d)
    }

    /// The last probe's losses, Gram matrix and loss weights, in one readback.
    pub fn read_affinity(&self) -> Result<AffinityReadback> {
        crate::gpu::wait::block("reading the graph back", self.read_affinity_async())
    }

    /// [`GpuGraph::read_affinity`] as a future: the form a browser page uses.
    pub async fn read_affinity_async(&self) -> Result<AffinityReadback> {
        let p = self.probe()?;
        let t = self.program.task.as_ref().map_or(0, |t| t.tasks);
        let mut v = self.ctx.read_many_async(&[&p.losses, &p.gram, &self.mem.weights]).await?.into_iter();
        let (losses, gram, weights) =
            (v.next().unwrap_or_default(), v.next().unwrap_or_default(), v.next().unwrap_or_default());
        let row = |r: usize| losses[r * p.loss_stride..r * p.loss_stride + t].to_vec();
        Ok(AffinityReadback { before: row(0), after: (1..=t).map(row).collect(), gram, weights })
    }
}
