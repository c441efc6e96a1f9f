//! Activation gradients folded into products: where a product writes a Linear node's whole
//! gradient (it is that gradient's only contribution), it applies the activation's
//! derivative in its epilogue, and the node's gradient buffer then holds the gradient of the
//! pre-activation: no separate activation-gradient dispatch.

use std::collections::HashMap;

use super::memory::Memory;
use crate::ir::{Activation, Graph, NodeId, Op};
use crate::kernels::ActGrad;

/// What the pass needs to decide.
pub struct ActGradFusion<'a> {
    /// Whether the pass runs at all.
    pub enabled: bool,
    /// The graph.
    pub graph: &'a Graph,
    /// Each node's readers.
    pub consumers: &'a [Vec<usize>],
    /// Fused heads (their outputs have no activation to fold).
    pub member_of: &'a HashMap<usize, (usize, usize)>,
    /// Where the saved activations are.
    pub mem: &'a Memory,
}

impl<'a> ActGradFusion<'a> {
    /// The epilogue for the product written by the nodes `writers` into node `o`'s gradient,
    /// when those writers are all of `o`'s readers and `o` is a Linear node with an activation.
    pub fn epilogue(&self, o: NodeId, writers: &[usize]) -> Option<ActGrad<'a>> {
        let Op::Linear { act, .. } = self.graph.nodes[o.0].op else { return None };
        let mut readers = self.consumers[o.0].clone();
        readers.sort_unstable();
        let mut w = writers.to_vec();
        w.sort_unstable();
        if !self.enabled || act == Activation::Identity || self.member_of.contains_key(&o.0) || readers != w {
            return None;
        }
        Some(match &self.mem.pre[o.0] {
            Some(z) => ActGrad { act, saved: z, from_output: false },
            None => ActGrad { act, saved: self.mem.values[o.0].as_ref()?, from_output: true },
        })
    }
}
