//! A bank of experts: E MLPs of the same sizes on one input, computed together. Their first
//! layers read the same input, so they are one product of all their outputs at once (the
//! weights packed, [`Graph::pack`]); each deeper layer is one grouped product
//! ([`Graph::grouped`]): one dispatch per layer for all the experts, not one per expert. The
//! parameters and their names are those of E separate [`Mlp`]s, created in the same order
//! (so seeded initial values do not change).

use super::Mlp;
use crate::error::Result;
use crate::ir::{Activation, Graph, NodeId};

/// E experts, `{name(e)}.{i}.weight` / `.bias`.
#[derive(Clone, Debug)]
pub struct Experts {
    /// Each expert, as the Mlp it computes.
    pub mlps: Vec<Mlp>,
}

impl Experts {
    /// `count` experts of `sizes` (input first), each hidden and last layer activated by `act`.
    pub fn new(
        g: &mut Graph,
        name: impl Fn(usize) -> String,
        count: usize,
        sizes: &[usize],
        act: Activation,
    ) -> Experts {
        Experts { mlps: (0..count).map(|e| Mlp::new(g, &name(e), sizes, act, true)).collect() }
    }

    /// The experts' outputs side by side, `[B, E·out]`: expert e's in columns e·out..(e+1)·out
    /// (None for a bank of no experts).
    pub fn forward(&self, g: &mut Graph, x: NodeId) -> Result<Option<NodeId>> {
        let e = self.mlps.len();
        let Some(first) = self.mlps.first() else { return Ok(None) };
        if e == 1 || first.layers.is_empty() {
            // One expert (exactly the Mlp), or experts that are the identity.
            let outs: Vec<NodeId> = self.mlps.iter().map(|m| m.forward(g, x)).collect::<Result<_>>()?;
            return super::concat_all(g, &outs).map(Some);
        }
        let mut h = x;
        for i in 0..first.layers.len() {
            let w = g.pack(&self.mlps.iter().map(|m| m.layers[i].weight).collect::<Vec<_>>())?;
            let b = g.pack(&self.mlps.iter().map(|m| m.layers[i].bias).collect::<Vec<_>>())?;
            h = if i == 0 { g.linear(h, w, Some(b), first.act)? } else { g.grouped(h, w, Some(b), first.act, e)? };
        }
        Ok(Some(h))
    }
}
