//! Multi-task learning: tasks and their metrics.

pub mod metrics;
pub mod task;
pub mod weighting;

pub use task::{TaskDef, TaskKind};
