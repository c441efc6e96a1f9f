//! What a run reports, in one place: the JSON line of each evaluation (`--log`), the final
//! metrics document (`--metrics-json`), and the tables `train` and `compare` print.

pub mod jsonl;
pub mod metrics_json;
pub mod table;

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `text` to `path` through a temporary file and a rename, so that a reader never
/// sees half of it.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })
}
