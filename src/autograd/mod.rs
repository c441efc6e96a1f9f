//! Autograd over the IR's [`Graph`]: the gradient rules once ([`backward::derive()`]), run by
//! the CPU reference ([`cpu::run`]) or compiled once for the GPU ([`GpuGraph`]) and replayed
//! each step.

pub mod backward;
pub mod cpu;
pub mod gpu;
mod slots;
mod update;

pub use crate::ir::{Graph, Init, Node, NodeId, Op, ParamInfo};
pub use gpu::GpuGraph;
