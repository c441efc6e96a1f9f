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
}

impl Activation {
    /// Every activation kind (leaky ReLU with PyTorch's default slope).
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Tanh,
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
        }
    }

    /// Leaky ReLU's slope (0 for the others).
    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }

    /// Whether the derivative can be computed from the output alone (all but gelu), so a
    /// layer need not keep its pre-activation.
    pub fn grad_from_output(self) -> bool {
        !matches!(self, Activation::Gelu)
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
            other => {
                return Err(Error::invalid(
                    "activation",
                    format!("{other:?} (expected identity, relu, leaky_relu, gelu, sigmoid or tanh)"),
                ))
            }
        })
    }

    pub(crate) fn check(self) -> Result<()> {
        let s = self.slope();
        if !(s.is_finite() && s >= 0.0) {
            return Err(Error::invalid("leaky_relu slope", format!("{s} (must be finite and >= 0)")));
        }
        Ok(())
    }
}
