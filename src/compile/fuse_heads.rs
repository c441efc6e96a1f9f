//! Head fusion: linear heads reading one representation run as one product.

use std::collections::HashMap;

use crate::ir::{Activation, Graph, NodeId, Op};

/// Linear nodes that read the same input, each with a weight (and a bias, or none) of its
/// own, no activation, and feed only a loss: the linear heads of a multi-task model. Their
/// weights are laid out one after another in the flat buffer, so the heads run as one product
/// of all their outputs at once, split into each head's output (with its bias) after, and
/// their weight gradients come from one product too. Under llvmpipe a head's product with
/// one output costs nearly what one with ten does.
#[derive(Clone, Debug)]
pub struct HeadGroup {
    /// The Linear nodes, in graph order.
    pub members: Vec<usize>,
    /// Their shared input.
    pub x: NodeId,
    /// Where each member's outputs start among the group's.
    pub cols: Vec<usize>,
    /// Outputs of all members together.
    pub width: usize,
    /// The members' weight parameters, in member order (laid out contiguously).
    pub weights: Vec<usize>,
}

/// The [`HeadGroup`]s of a graph, among parameters from `first_param` on (those before are
/// shared and keep their place at the start of the flat buffer).
pub fn head_groups(graph: &Graph, consumers: &[Vec<usize>], first_param: usize) -> Vec<HeadGroup> {
    let own_param = |id: NodeId, user: usize| -> Option<usize> {
        match graph.nodes[id.0].op {
            Op::Param(p) if p >= first_param && consumers[id.0] == [user] => Some(p),
            _ => None,
        }
    };
    // Keyed by (input, has a bias): the members as (node, weight parameter).
    type Members = Vec<(usize, usize)>;
    let mut groups: Vec<((NodeId, bool), Members)> = Vec::new();
    for (i, (node, users)) in graph.nodes.iter().zip(consumers).enumerate() {
        let Op::Linear { x, w, b, act: Activation::Identity } = node.op else { continue };
        let feeds_loss_only = matches!(users.as_slice(), [c] if matches!(graph.nodes[*c].op, Op::Loss { .. }));
        let Some(pw) = own_param(w, i) else { continue };
        if !feeds_loss_only || b.is_some_and(|b| own_param(b, i).is_none()) {
            continue;
        }
        let key = (x, b.is_some());
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push((i, pw)),
            None => groups.push((key, vec![(i, pw)])),
        }
    }
    groups
        .into_iter()
        .filter(|g| g.1.len() >= 2)
        .map(|((x, _), members)| {
            let mut cols = Vec::new();
            let mut width = 0;
            for &(i, _) in &members {
                cols.push(width);
                width += graph.nodes[i].shape[1];
            }
            HeadGroup {
                members: members.iter().map(|m| m.0).collect(),
                x,
                cols,
                width,
                weights: members.iter().map(|m| m.1).collect(),
            }
        })
        .collect()
}

/// Node index → (its group, its place in the group).
pub fn member_of(groups: &[HeadGroup]) -> HashMap<usize, (usize, usize)> {
    groups
        .iter()
        .enumerate()
        .flat_map(|(gi, g)| g.members.iter().enumerate().map(move |(j, &m)| (m, (gi, j))))
        .collect()
}
