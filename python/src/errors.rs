//! `hydra.HydraError` and its subclasses, and the mapping of every `hydra::Error` onto them
//! with the library's own message.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(_native, HydraError, PyException, "Every error Hydra raises.");
create_exception!(_native, ConfigError, HydraError, "A bad config: the message names the key.");
create_exception!(_native, DataError, HydraError, "Bad data: the message names the row, column or task.");
create_exception!(_native, CheckpointError, HydraError, "A checkpoint that cannot be read or written.");
create_exception!(_native, DeviceError, HydraError, "No adapter, a lost device, or out of GPU memory.");

/// The exception of a library error, with its message.
pub fn to_py(e: hydra::Error) -> PyErr {
    use hydra::Error as E;
    let msg = e.to_string();
    match e {
        E::Config { .. } => ConfigError::new_err(msg),
        E::Data { .. } | E::Shape { .. } | E::TooLarge { .. } => DataError::new_err(msg),
        E::NoAdapter { .. }
        | E::RequestDevice { .. }
        | E::DeviceLost(_)
        | E::OutOfMemory { .. }
        | E::HostOutOfMemory { .. }
        | E::Validation { .. }
        | E::Shader { .. }
        | E::Limit { .. } => DeviceError::new_err(msg),
        E::Invalid { ref what, .. } if what.contains("checkpoint") => CheckpointError::new_err(msg),
        E::Invalid { ref what, .. } if what.starts_with("task ") || what == "dataset" => DataError::new_err(msg),
        _ => HydraError::new_err(msg),
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HydraError", py.get_type::<HydraError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    Ok(())
}
