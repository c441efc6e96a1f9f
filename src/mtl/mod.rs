//! Multi-task learning: tasks and their metrics, the weighting methods, and the multi-task
//! segments of a GPU training step ([`gpu`]).

pub mod affinity;
pub mod gpu;
pub mod metrics;
pub mod task;
pub mod weighting;

pub use task::{TaskDef, TaskKind};
