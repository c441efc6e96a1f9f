//! Multi-task learning: tasks and their metrics.

pub mod metrics;
pub mod task;

pub use task::{TaskDef, TaskKind};
