//! The recorded program of a compiled graph: its dispatches in named segments. A run puts
//! the segments it needs, in order, into one queue submit.

use crate::error::{Error, Result};
use crate::gpu::Dispatch;
use crate::mtl::gpu::TaskStep;
use crate::optim::gpu::GpuOptim;

/// A segment of the step, in the order a training step runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// The forward pass and the losses (with UW's weights first).
    Forward,
    /// Loss weightings computed from this step's losses (GLS, FAMO, UW's gradient).
    LossWeighting,
    /// The backward pass; with per-task slots, its part after the shared representation.
    Backward,
    /// The per-task slots summed into the shared representation's gradient.
    CombineSum,
    /// With per-task slots: the backward pass below the shared representation.
    SharedBackward,
    /// Clipping's norm, the optimizer, the divergence guard.
    Update,
    /// For FAMO: the forward pass again on the same batch, then its logits' update from the
    /// loss change (nothing for other weightings).
    AfterUpdate,
}

/// The step's segments.
pub(crate) struct Program {
    pub(crate) forward: Vec<Dispatch>,
    /// The backward pass, when there is no multi-task step (else in `task`).
    pub(crate) backward: Vec<Dispatch>,
    pub(crate) task: Option<TaskStep>,
    pub(crate) update: Option<GpuOptim>,
}

impl Program {
    /// One segment's dispatches (empty where the program has none of it).
    pub(crate) fn segment(&self, s: Segment) -> Vec<&Dispatch> {
        let task = self.task.as_ref();
        match s {
            Segment::Forward => self.forward.iter().collect(),
            Segment::LossWeighting => task.map(|t| t.post.iter().collect()).unwrap_or_default(),
            Segment::Backward => match task {
                Some(t) => t.head_bw.iter().collect(),
                None => self.backward.iter().collect(),
            },
            Segment::CombineSum => {
                task.and_then(|t| t.slots.as_ref()).map(|sl| vec![&sl.combine_sum]).unwrap_or_default()
            }
            Segment::SharedBackward => task.map(|t| t.trunk_bw.iter().collect()).unwrap_or_default(),
            Segment::Update => match &self.update {
                Some(o) => o.clip.iter().chain(&o.dispatches).chain(std::iter::once(&o.guard)).collect(),
                None => Vec::new(),
            },
            Segment::AfterUpdate => match task.filter(|t| !t.after_update.is_empty()) {
                Some(t) => self.forward.iter().chain(&t.after_update).collect(),
                None => Vec::new(),
            },
        }
    }

    /// Several segments, in the order given.
    pub(crate) fn segments(&self, which: &[Segment]) -> Vec<&Dispatch> {
        which.iter().flat_map(|&s| self.segment(s)).collect()
    }

    /// Forward and backward: the gradient of every parameter (per-task slots summed).
    pub(crate) const GRADIENT: [Segment; 5] =
        [Segment::Forward, Segment::LossWeighting, Segment::Backward, Segment::CombineSum, Segment::SharedBackward];

    /// The update's dispatches, and what follows it (FAMO's); an error without an optimizer.
    pub(crate) fn update(&self) -> Result<Vec<&Dispatch>> {
        if self.update.is_none() {
            return Err(Error::invalid("step", "the graph was compiled without an optimizer"));
        }
        Ok(self.segments(&[Segment::Update, Segment::AfterUpdate]))
    }

    /// Every dispatch that exists in the step's program (upgrades are looked for here).
    pub(crate) fn all(&self) -> Vec<&Dispatch> {
        let mut d = self.segments(&Self::GRADIENT);
        d.extend(self.segment(Segment::Update));
        d
    }
}
