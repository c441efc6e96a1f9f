//! Layers built on the autograd graph: [`Linear`] (PyTorch's nn.Linear layout and init) and
//! [`Mlp`].

mod cross_stitch;
mod experts;
pub mod model;
mod moe;
mod ple;

pub use experts::Experts;
pub use model::{Arch, EmbeddingSpec, ModelSpec, MultiTaskModel, TaskSpec};

use crate::error::Result;
use crate::ir::Activation;
use crate::ir::{Graph, Init, NodeId};

/// A fully connected layer: weight `[out, in]` and bias `[out]`, exactly as PyTorch's nn.Linear,
/// initialised as PyTorch does: U(−1/√in, 1/√in) for both (kaiming_uniform with a = √5).
#[derive(Clone, Copy, Debug)]
pub struct Linear {
    /// Weight node, `[out, in]`.
    pub weight: NodeId,
    /// Bias node, `[out]`.
    pub bias: NodeId,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

impl Linear {
    /// Adds the parameters `{name}.weight` and `{name}.bias` to `g`.
    pub fn new(g: &mut Graph, name: &str, inputs: usize, outputs: usize) -> Linear {
        let bound = 1.0 / (inputs.max(1) as f32).sqrt();
        let weight = g.param(&format!("{name}.weight"), &[outputs, inputs], Init::Uniform(bound));
        let bias = g.param(&format!("{name}.bias"), &[outputs], Init::Uniform(bound));
        Linear { weight, bias, inputs, outputs }
    }

    /// `act(x·Wᵀ + b)`.
    pub fn forward(&self, g: &mut Graph, x: NodeId, act: Activation) -> Result<NodeId> {
        g.linear(x, self.weight, Some(self.bias), act)
    }
}

/// A stack of Linear layers, `{name}.0`, `{name}.1`, …
#[derive(Clone, Debug)]
pub struct Mlp {
    /// The layers, first to last.
    pub layers: Vec<Linear>,
    /// Activation after each hidden layer.
    pub act: Activation,
    /// Whether the last layer is activated too (a trunk) or not (a head's logits).
    pub activate_last: bool,
}

impl Mlp {
    /// Layers of sizes `sizes[0] → sizes[1] → … → sizes[last]`.
    pub fn new(g: &mut Graph, name: &str, sizes: &[usize], act: Activation, activate_last: bool) -> Mlp {
        let layers =
            sizes.windows(2).enumerate().map(|(i, w)| Linear::new(g, &format!("{name}.{i}"), w[0], w[1])).collect();
        Mlp { layers, act, activate_last }
    }

    /// Applies every layer.
    pub fn forward(&self, g: &mut Graph, mut x: NodeId) -> Result<NodeId> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            let act = if i + 1 < n || self.activate_last { self.act } else { Activation::Identity };
            x = l.forward(g, x, act)?;
        }
        Ok(x)
    }
}

/// The nodes' columns side by side, in order (`parts` not empty).
pub(crate) fn concat_all(g: &mut Graph, parts: &[NodeId]) -> Result<NodeId> {
    let mut z = parts[0];
    for &p in &parts[1..] {
        z = g.concat(z, p)?;
    }
    Ok(z)
}
