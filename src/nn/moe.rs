//! Mixtures of experts (MMoE, OMoE): every expert, an Mlp on the model's input, is shared;
//! each task mixes the experts' outputs with a softmax gate on the input (its own for MMoE,
//! one for all with OMoE) and its head reads the mixture.
//!
//! Tensor names: `experts.{e}.{i}.weight` / `.bias` (`[out, in]`, i counting the expert's
//! Linear layers), `gates.{task}.weight` (`[experts, inputs]`) / `.bias` for MMoE, or
//! `gate.weight` / `gate.bias` for OMoE, and `heads.{task}.{j}.*` as with hard sharing.
//!
//! DSelect-k (Hazimeh et al., NeurIPS 2021, per-example gates as in
//! google-research/dselect_k_moe) replaces each task's softmax gate by k selectors: their bits
//! `S(gates.{task}.selectors(x))` (`[k·log2 E, inputs]`; S the smooth step of width 1) weight
//! every expert by the product of its code's bits, and `softmax(gates.{task}.weights(x))`
//! (`[k, inputs]`) mixes the selectors. The paper's entropy regulariser is not applied.

use super::model::{head, Arch, ModelSpec, MultiTaskModel};
use super::{Experts, Linear};
use crate::error::{Error, Result};
use crate::ir::{Activation, Graph, NodeId};

/// The model's graph for `spec.arch` = mmoe or omoe. The experts' parameters come first (the
/// shared ones); the shared representation `z` is the experts' outputs side by side.
pub(crate) fn build(spec: &ModelSpec, batch: usize) -> Result<MultiTaskModel> {
    let mut g = Graph::new();
    let x = super::model::input(&mut g, spec, batch)?;
    let mut sizes = vec![spec.width()];
    sizes.extend(&spec.expert);
    let experts = Experts::new(&mut g, |e| format!("experts.{e}"), spec.experts, &sizes, spec.activation);
    let trunk_params = g.params.len();
    let z =
        experts.forward(&mut g, x)?.ok_or_else(|| Error::invalid("experts", "a mixture needs at least one expert"))?;
    // OMoE's one gate, after z: its gradient is the tasks' sum, as a head's would be.
    let shared_gate = match spec.arch {
        Arch::Omoe => Some(gate(&mut g, "gate", spec, x)?),
        _ => None,
    };
    let mut logits = Vec::new();
    let mut losses = Vec::new();
    for (t, task) in spec.tasks.iter().enumerate() {
        if spec.product_of(t).is_some() {
            // A product of other tasks' probabilities: no gate, no head.
            let (out, loss) = head(&mut g, spec, t, z, batch, &logits)?;
            logits.push(out);
            losses.push(loss);
            continue;
        }
        let gt = match (shared_gate, spec.arch) {
            (Some(gt), _) => gt,
            (None, Arch::DselectK) => dselect_gate(&mut g, &format!("gates.{}", task.name), spec, x)?,
            (None, _) => gate(&mut g, &format!("gates.{}", task.name), spec, x)?,
        };
        let mixed = g.mix(gt, z)?;
        let (out, loss) = head(&mut g, spec, t, mixed, batch, &logits)?;
        logits.push(out);
        losses.push(loss);
    }
    Ok(MultiTaskModel { spec: spec.clone(), graph: g, batch, x, z, logits, losses, trunk_params })
}

/// DSelect-k's gate: k selectors' smooth-step bits encode weights over the experts, mixed by
/// the selectors' softmax weights; each row sums to one.
fn dselect_gate(g: &mut Graph, name: &str, spec: &ModelSpec, x: NodeId) -> Result<NodeId> {
    let m = spec.experts.trailing_zeros() as usize;
    let selectors = Linear::new(g, &format!("{name}.selectors"), spec.width(), spec.k * m);
    let bits = selectors.forward(g, x, Activation::SmoothStep(1.0))?;
    let codes = g.encode(bits, spec.experts)?;
    let weights = Linear::new(g, &format!("{name}.weights"), spec.width(), spec.k);
    let w = weights.forward(g, x, Activation::Identity)?;
    let w = g.softmax(w)?;
    g.mix(w, codes)
}

/// A softmax gate over the experts: `softmax(x·Wᵀ + b)`, `{name}.weight` `[experts, inputs]`.
fn gate(g: &mut Graph, name: &str, spec: &ModelSpec, x: NodeId) -> Result<NodeId> {
    let l = Linear::new(g, name, spec.width(), spec.experts);
    let logits = l.forward(g, x, Activation::Identity)?;
    g.softmax(logits)
}
