//! The op vocabulary shared by every layer: activations, loss kinds and the shape of a
//! product. No wgpu here: the CPU reference, the graph, the configs and the kernels all speak
//! these words, and only the kernels know how a GPU computes them.

use crate::error::{Error, Result};

/// An elementwise activation, the same on the GPU (activation.wgsl) and in [`crate::cpu`].
#[derive(Clone, Copy, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// y = x.
    #[default]
    Identity,
    /// y = max(x, 0).
    Relu,
    /// y = x if x > 0 else slope·x (slope ≥ 0; PyTorch's default is 0.01).
    LeakyRelu(f32),
    /// y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (PyTorch's `approximate="tanh"`).
    Gelu,
    /// y = 1 / (1 + e^{−x}).
    Sigmoid,
    /// y = tanh(x).
    Tanh,
    /// The smooth step of width γ (DSelect-k's, Hazimeh et al. 2021): 0 below −γ/2, 1 above
    /// γ/2, and −2x³/γ³ + 3x/(2γ) + ½ between (γ > 0).
    SmoothStep(f32),
}

impl Activation {
    /// Every activation kind (leaky ReLU with PyTorch's default slope).
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::SmoothStep(1.0),
    ];

    /// The code activation.wgsl switches on.
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Gelu => 3,
            Activation::Sigmoid => 4,
            Activation::Tanh => 5,
            Activation::SmoothStep(_) => 6,
        }
    }

    /// Leaky ReLU's slope, or the smooth step's width γ (0 for the others): the value the
    /// kernels take beside the code.
    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) | Activation::SmoothStep(s) => s,
            _ => 0.0,
        }
    }

    /// Whether the derivative can be computed from the output alone (all but gelu and the
    /// smooth step, flat at both ends), so a layer need not keep its pre-activation.
    pub fn grad_from_output(self) -> bool {
        !matches!(self, Activation::Gelu | Activation::SmoothStep(_))
    }

    /// Parses a name as written in configs: identity, relu, leaky_relu, gelu, sigmoid, tanh.
    pub fn parse(name: &str) -> Result<Activation> {
        Ok(match name {
            "identity" | "linear" | "none" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "gelu" => Activation::Gelu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "smooth_step" => Activation::SmoothStep(1.0),
            other => {
                return Err(Error::invalid(
                    "activation",
                    format!("{other:?} (expected identity, relu, leaky_relu, gelu, sigmoid, tanh or smooth_step)"),
                ))
            }
        })
    }

    pub(crate) fn check(self) -> Result<()> {
        let s = self.slope();
        if let Activation::SmoothStep(g) = self {
            if !(g.is_finite() && g > 0.0) {
                return Err(Error::invalid("smooth_step gamma", format!("{g} (must be finite and > 0)")));
            }
        }
        if !(s.is_finite() && s >= 0.0) {
            return Err(Error::invalid("leaky_relu slope", format!("{s} (must be finite and >= 0)")));
        }
        Ok(())
    }
}

/// A task's loss on its logits. Every loss is a mean over the rows whose label is present.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// (y − t)², one output.
    Mse,
    /// |y − t|, one output.
    L1,
    /// ½d² if |d| ≤ δ else δ(|d| − ½δ), d = y − t, one output (PyTorch's HuberLoss).
    Huber {
        /// δ (1 by default).
        delta: f32,
    },
    /// Binary cross-entropy on a logit x with label t ∈ {0, 1}: softplus(x) − x·t.
    Bce,
    /// Softmax cross-entropy over `classes` logits; the label is the class index.
    CrossEntropy {
        /// Number of classes.
        classes: usize,
    },
}

impl LossKind {
    /// Logits per row.
    pub fn outputs(self) -> usize {
        match self {
            LossKind::CrossEntropy { classes } => classes,
            _ => 1,
        }
    }
    pub(crate) fn code(self) -> u32 {
        match self {
            LossKind::Mse => 0,
            LossKind::L1 => 1,
            LossKind::Huber { .. } => 2,
            LossKind::Bce => 3,
            LossKind::CrossEntropy { .. } => 4,
        }
    }
    pub(crate) fn delta(self) -> f32 {
        match self {
            LossKind::Huber { delta } => delta,
            _ => 0.0,
        }
    }
    pub(crate) fn check(self) -> Result<()> {
        match self {
            LossKind::Huber { delta } if !(delta.is_finite() && delta > 0.0) => {
                Err(Error::invalid("huber delta", format!("{delta} (must be > 0)")))
            }
            LossKind::CrossEntropy { classes } if classes < 2 => {
                Err(Error::invalid("classes", format!("{classes} (cross-entropy needs at least 2)")))
            }
            _ => Ok(()),
        }
    }
}

/// M, N, K of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

impl MatmulShape {
    /// Infers M, N, K from A's and B's shapes and the transposes.
    pub fn infer(a: (usize, usize), b: (usize, usize), trans_a: bool, trans_b: bool) -> Result<Self> {
        let (m, k) = if trans_a { (a.1, a.0) } else { a };
        let (kb, n) = if trans_b { (b.1, b.0) } else { b };
        if k != kb {
            return Err(Error::shape("matmul", format!("op(A) is {m}x{k} but op(B) is {kb}x{n}")));
        }
        Ok(MatmulShape { m, n, k })
    }
}

/// Where G products side by side keep their operands ([`crate::ir::Op::Grouped`] and its
/// gradients): each stored matrix (`[rows, cols]` per group, before any transpose) is either G
/// blocks of columns side by side in one `[rows, G·cols]` matrix, or G matrices stacked one
/// after another (`[G·rows, cols]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupedLayout {
    /// A is stored `[K, M]` per group and used transposed.
    pub trans_a: bool,
    /// B is stored `[N, K]` per group and used transposed.
    pub trans_b: bool,
    /// A's groups are stacked (else side by side).
    pub a_stacked: bool,
    /// B's groups are stacked.
    pub b_stacked: bool,
    /// C's groups are stacked.
    pub c_stacked: bool,
}

impl GroupedLayout {
    /// The forward product: blocks of the input times the stacked weights, transposed, into
    /// blocks.
    pub const FORWARD: GroupedLayout =
        GroupedLayout { trans_a: false, trans_b: true, a_stacked: false, b_stacked: true, c_stacked: false };
    /// The input's gradient: blocks of dz times the stacked weights, into blocks.
    pub const GRAD_INPUT: GroupedLayout =
        GroupedLayout { trans_a: false, trans_b: false, a_stacked: false, b_stacked: true, c_stacked: false };
    /// The weights' gradient: blocks of dz, transposed, times blocks of the input, stacked.
    pub const GRAD_WEIGHT: GroupedLayout =
        GroupedLayout { trans_a: true, trans_b: false, a_stacked: false, b_stacked: false, c_stacked: true };

    /// The flat index of element (r, c) of group g of a stored `[rows, cols]` matrix.
    pub fn index(stacked: bool, groups: usize, g: usize, rows: usize, cols: usize, r: usize, c: usize) -> usize {
        if stacked {
            (g * rows + r) * cols + c
        } else {
            r * groups * cols + g * cols + c
        }
    }
}
