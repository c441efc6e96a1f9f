//! Hydra: a GPU compute engine, written by hand in Rust on wgpu, that trains multi-task models
//! (one shared trunk, many task heads) without an ML framework.
//!
//! The kernels are WGSL compute shaders under `shaders/`; each has a Rust wrapper in
//! [`kernels`] and a plain-Rust reference in [`cpu`] that the tests compare it with. A model
//! is a graph of ops ([`ir::Graph`]) compiled once into GPU dispatches ([`compile`]) and
//! replayed ([`runtime::GpuGraph`]): one queue submit per training step, nothing read back
//! until you ask.
//!
//! # Train a multi-task model from memory
//! ```
//! use hydra::{Activation, Context, Dataset, Method, Optimizer, Target, TaskDef, Trainer, TrainSettings, Weighter};
//! use hydra::train::{Scaling, Splits};
//! # fn main() -> hydra::Result<()> {
//! let ctx = Context::new()?;
//! // 200 rows of 3 features; a regression and a binary task (every label present).
//! let n = 200;
//! let x: Vec<f32> = (0..n * 3).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
//! let y: Vec<f32> = (0..n).map(|r| x[r * 3] - 2.0 * x[r * 3 + 1]).collect();
//! let b: Vec<f32> = (0..n).map(|r| f32::from(u8::from(x[r * 3 + 2] > 0.0))).collect();
//! let names = vec!["a".into(), "b".into(), "c".into()];
//! let data = Dataset::from_slices(names, x, vec![y, b], vec![vec![1.0; n], vec![1.0; n]])?;
//! let tasks = [TaskDef::regression("y", "y"), TaskDef::binary("b", "b")];
//!
//! let scaling = Scaling::fit(&data, &tasks, true);
//! let train = scaling.apply(&data);
//! let splits = Splits { val: train.subset(&[]), test: train.subset(&[]), train };
//! let spec = Trainer::spec_for(3, &[32], &[], Activation::Relu, &tasks);
//! let settings = TrainSettings { optimizer: Optimizer::adam(1e-2), batch_size: 50, epochs: 20, ..Default::default() };
//! let weighting = Weighter::new(Method::by_name("cagrad")?, Target::Representation, &[1.0, 1.0], 0);
//! let mut trainer = Trainer::with_weighting(ctx, &spec, &tasks, settings, scaling, None, weighting)?;
//! let report = trainer.fit(&splits, &mut |r| println!("epoch {} losses {:?}", r.epoch, r.train_loss))?;
//! let (first, last) = (&report.history[0].train_loss, &report.history.last().unwrap().train_loss);
//! assert!(last[0] < first[0] && last[1] < first[1]);
//! # Ok(()) }
//! ```
//!
//! # Run one kernel on your own data
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
//!
//! More in `examples/`: `embed_train.rs` (a custom loop), `kernels.rs`, `weighting.rs`.
#![warn(missing_docs)]

pub mod autograd;
#[cfg(feature = "cli")]
pub mod bench;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod commands;
pub mod compile;
pub mod config;
pub mod cpu;
pub mod data;
pub mod dist;
mod error;
pub mod experiment;
pub mod gpu;
pub mod ir;
pub mod kernels;
pub mod mtl;
pub mod nn;
pub mod optim;
#[cfg(feature = "cli")]
pub mod plot;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod shaders;
pub mod train;

pub use checkpoint::Checkpoint;
pub use data::Dataset;
pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Context, Counters, DeviceKind, Tensor};
pub use ir::{Activation, LossKind};
pub use mtl::weighting::{Method, Target, Weighter};
pub use mtl::TaskDef;
pub use nn::{ModelSpec, TaskSpec};
pub use optim::Optimizer;
pub use runtime::GpuGraph;
pub use train::{TrainSettings, Trainer};
