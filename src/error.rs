//! The one error type of the crate: every fallible public function returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong in Hydra, with what the user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter (hardware or software) could be found.
    #[error(
        "no GPU adapter found{detail}. Install a GPU driver, or the software Vulkan driver: \
         `apt-get install -y mesa-vulkan-drivers` (Debian/Ubuntu). \
         HYDRA_ADAPTER=<part of name> picks an adapter, WGPU_BACKEND=vulkan|gl|metal|dx12 a backend"
    )]
    NoAdapter {
        /// Why: the filter that matched nothing, or the adapters that were seen.
        detail: String,
    },
    /// The device could not be created with the features and limits Hydra asked for.
    #[error("could not open the GPU device on adapter {adapter}: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// Driver message.
        message: String,
    },
    /// wgpu reported a validation error: a bug in Hydra or a misuse of the API.
    #[error("GPU validation error in {context}: {message}")]
    Validation {
        /// What Hydra was doing.
        context: String,
        /// wgpu's description.
        message: String,
    },
    /// The GPU ran out of memory.
    #[error("GPU out of memory in {context}: a smaller batch_size or model needs less")]
    OutOfMemory {
        /// What Hydra was doing.
        context: String,
    },
    /// The host ran out of memory for a large buffer (parameters, a batch, a readback).
    #[error("out of host memory: {what} needs {bytes} bytes")]
    HostOutOfMemory {
        /// What was being allocated.
        what: String,
        /// Bytes asked for.
        bytes: u64,
    },
    /// The device was lost (driver reset, hang, removal).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// A buffer would exceed an adapter limit.
    #[error("{what} needs {needed} bytes, over the adapter's {limit_name} of {limit} bytes")]
    Limit {
        /// What was being allocated.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Name of the limit.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
    },
    /// A size past what can be addressed at all (a product of dimensions that would wrap).
    #[error("{what} is too large: over {limit}")]
    TooLarge {
        /// What it is, with its dimensions.
        what: String,
        /// The limit, in words.
        limit: &'static str,
    },
    /// Shapes that do not fit together.
    #[error("shape mismatch in {op}: {message}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// Expected vs found.
        message: String,
    },
    /// A WGSL shader failed to parse or validate (a bug in Hydra).
    #[error("shader {file}: {message}")]
    Shader {
        /// The shader file.
        file: &'static str,
        /// naga's message.
        message: String,
    },
    /// Training diverged: a loss or a parameter stopped being finite.
    #[error("training diverged at step {step}: {what} is {value}")]
    Diverged {
        /// The first optimizer step where it was seen.
        step: u64,
        /// "task NAME's loss" or "a parameter".
        what: String,
        /// The non-finite value.
        value: f32,
    },
    /// A value was out of its allowed range.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The setting or argument.
        what: String,
        /// Why.
        message: String,
    },
    /// Bad data in an input file.
    #[error("{file}{}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default(), column.as_ref().map(|c| format!(", column {c:?}")).unwrap_or_default())]
    Data {
        /// The file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// Column name, when known.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A bad configuration value.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The config file.
        file: String,
        /// The key (dotted path), e.g. `train.lr` or `task[1].classes`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Data-parallel training failed on a rank (its own error, or a rank that diverged or
    /// ended): every rank stops with this.
    #[error("rank {rank} of the data-parallel run failed: {message}")]
    Distributed {
        /// The rank that failed.
        rank: usize,
        /// What happened there.
        message: String,
    },
    /// A blocking call was made where the host may not block (a browser's page): the
    /// async form of the same call works there.
    #[error("{what} waits for the GPU, and a browser page cannot block: call its async form")]
    Blocking {
        /// The call.
        what: String,
    },
    /// File input/output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shape error.
    pub fn shape(op: &'static str, message: impl Into<String>) -> Self {
        Error::Shape { op, message: message.into() }
    }
    /// An error about a whole file (no line or column), e.g. a checkpoint.
    pub fn file(file: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::Data { file: file.to_string(), line: None, column: None, message: message.into() }
    }
    /// An invalid-value error.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), message: message.into() }
    }
}

/// The largest number of f32 values one buffer may hold: its bytes must fit in an `isize`.
pub const MAX_ELEMENTS: usize = (isize::MAX as usize) / 4;

/// The number of elements of `shape`, or [`Error::TooLarge`] naming `what` when the product
/// would pass [`MAX_ELEMENTS`] (or wrap): sizes the user controls (batch size, layer widths,
/// rows) are checked here before anything is allocated or indexed.
pub fn elements(shape: &[usize], what: impl FnOnce() -> String) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS).ok_or_else(|| {
        Error::TooLarge { what: what(), limit: "2^61 f32 values (isize::MAX bytes), the most one buffer can address" }
    })
}

/// A vector of `n` copies of `value`, or [`Error::HostOutOfMemory`] naming `what` when the
/// allocation fails (a plain `vec!` would abort the process). For buffers whose size the user
/// controls: parameters, batches, readbacks.
pub(crate) fn host_vec<T: Clone>(n: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::HostOutOfMemory {
        what: what.to_string(),
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })?;
    v.resize(n, value);
    Ok(v)
}
