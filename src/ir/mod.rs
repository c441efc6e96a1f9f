//! The bottom layer: the op vocabulary ([`ops`]) and the graph of ops ([`graph`]). It knows
//! nothing of GPUs, kernels, models or training; everything above builds on it.

pub mod graph;
pub mod ops;

pub use graph::{Graph, Init, Node, NodeId, Op, ParamInfo};
pub use ops::{Activation, GroupedLayout, LossKind, MatmulShape};
