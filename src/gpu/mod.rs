//! The device layer: context (adapter choice, limits, errors), buffer pool, pipeline cache,
//! dispatches and plans, readback.

pub mod buffer;
pub mod context;
pub mod dispatch;
pub mod pipeline;
pub mod software;
mod tensor;
pub mod texture;
pub mod timer;
mod variant;
pub(crate) mod wait;

pub use buffer::{BufferKind, BufferPool, GpuBuffer};
pub use context::{AdapterSummary, Context, Counters, DeviceKind};
pub use dispatch::{Dispatch, KernelCall, Params};
pub use pipeline::{PipelineCache, PipelineKey};
pub use tensor::Tensor;
pub use texture::TexMirror;
pub use variant::MatmulVariant;
