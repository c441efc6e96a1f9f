//! Hydra: a GPU compute engine, written by hand in Rust on wgpu, that trains multi-task models
//! (one shared trunk, many task heads) without an ML framework.
//!
//! The kernels are WGSL compute shaders under `shaders/`; each has a Rust wrapper in
//! [`kernels`] and a plain-Rust reference in [`cpu`] that the tests compare it with.
//!
//! ```
//! use hydra::{kernels, Context};
//! # fn main() -> hydra::Result<()> {
//! let ctx = Context::new()?;
//! let a = ctx.upload(&[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = ctx.upload(&[1.0, 0.0, 0.0, 1.0], &[2, 2])?;
//! let c = ctx.empty(&[2, 2])?;
//! let d = kernels::matmul(&ctx, &a, &b, None, &c, &Default::default())?;
//! ctx.run(&[&d])?;
//! assert_eq!(ctx.read(&c)?, vec![1.0, 2.0, 3.0, 4.0]);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod autograd;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod data;
mod error;
pub mod experiment;
pub mod gpu;
pub mod kernels;
pub mod mtl;
pub mod nn;
pub mod optim;
pub mod shaders;
mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Context, Counters, DeviceKind};
pub use kernels::{Activation, LossKind};
pub use optim::Optimizer;
pub use tensor::Tensor;
