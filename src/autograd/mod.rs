//! Autograd over the IR's [`Graph`]: the gradient rules once ([`backward::derive()`]),
//! interpreted by the CPU reference ([`cpu::run`]) and lowered for the GPU by
//! [`crate::compile`].

pub mod backward;
pub mod cpu;

pub use crate::ir::{Graph, Init, Node, NodeId, Op, ParamInfo};
