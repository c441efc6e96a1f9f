//! A minimal autograd over the IR's [`Graph`]: run by the CPU reference ([`cpu::run`]) or
//! compiled once for the GPU ([`GpuGraph`]) and replayed each step.

pub mod cpu;
pub mod gpu;

pub use crate::ir::{Graph, Init, Node, NodeId, Op, ParamInfo};
pub use gpu::GpuGraph;
