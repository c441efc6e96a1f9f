//! A minimal autograd: a tape of nodes ([`Graph`]), run by the CPU reference ([`cpu::run`])
//! or compiled once for the GPU ([`GpuGraph`]) and replayed each step.

pub mod cpu;
pub mod gpu;
pub mod graph;

pub use gpu::GpuGraph;
pub use graph::{Graph, Init, Node, NodeId, Op, ParamInfo};
