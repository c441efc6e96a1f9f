//! Checkpoints as safetensors files that load in PyTorch unchanged: `trunk.{i}.weight`
//! `[out, in]`, `trunk.{i}.bias`, `heads.{task}.{j}.weight/bias`, optimizer state under
//! `optim.{exp_avg|exp_avg_sq|momentum_buffer}.{param}`. The metadata holds the config, the
//! scaling, the tasks and the step, so `predict` needs nothing else; [`schema`] names every
//! tensor and key. Writes are atomic: a
//! temporary file in the same folder, synced, then renamed over the target.

pub mod schema;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::Dtype;

use crate::error::{Error, Result};

/// Tensors (name → shape, values) and string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors by name.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

fn ck_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Data { file: path.display().to_string(), line: None, column: None, message: message.into() }
}

impl Checkpoint {
    /// Adds a tensor.
    pub fn insert(&mut self, name: &str, shape: &[usize], values: Vec<f32>) {
        self.tensors.insert(name.to_string(), (shape.to_vec(), values));
    }

    /// The file's bytes: the safetensors layout (8-byte little-endian header length, a JSON
    /// header, then the tensors' data), with keys in sorted order so that the same contents
    /// always give the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut header = serde_json::Map::new();
        if !self.metadata.is_empty() {
            let meta: serde_json::Map<String, serde_json::Value> =
                self.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            header.insert("__metadata__".into(), serde_json::Value::Object(meta));
        }
        let mut at = 0usize;
        for (name, (shape, values)) in &self.tensors {
            let n: usize = shape.iter().product();
            if n != values.len() {
                return Err(Error::invalid(
                    format!("tensor {name}"),
                    format!("{} values for shape {shape:?}", values.len()),
                ));
            }
            let end = at + 4 * n;
            header
                .insert(name.clone(), serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [at, end] }));
            at = end;
        }
        // serde_json's map keeps insertion order only with a feature; sort explicitly.
        let sorted: BTreeMap<&String, &serde_json::Value> = header.iter().collect();
        let mut json =
            serde_json::to_string(&sorted).map_err(|e| Error::invalid("checkpoint header", e.to_string()))?;
        while json.len() % 8 != 0 {
            json.push(' ');
        }
        let mut out = Vec::with_capacity(8 + json.len() + at);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(json.as_bytes());
        for (_, values) in self.tensors.values() {
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Writes atomically: a crash at any moment leaves either the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "checkpoint".into());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Reads a checkpoint; a truncated or corrupt file is an error naming it.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses checkpoint bytes; `path` names them in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| ck_err(path, format!("not a valid safetensors checkpoint (truncated or corrupt?): {e}")))?;
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| ck_err(path, format!("not a valid safetensors checkpoint (truncated or corrupt?): {e}")))?;
        let mut out = Checkpoint {
            metadata: meta.metadata().clone().map(|m| m.into_iter().collect()).unwrap_or_default(),
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(ck_err(path, format!("tensor {name} is {:?}, Hydra reads F32", view.dtype())));
            }
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            out.tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(out)
    }

    /// The metadata value of `key`, or an error naming the file.
    pub fn meta(&self, path: &Path, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| ck_err(path, format!("metadata has no {key:?}: not a Hydra checkpoint?")))
    }

    /// Takes the tensors named `names` with `shapes`. Every name must be present with its
    /// shape; the error lists every missing and mis-shaped tensor by name.
    pub fn take(&self, path: &Path, names: &[String], shapes: &[Vec<usize>]) -> Result<Vec<Vec<f32>>> {
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for (n, s) in names.iter().zip(shapes) {
            match self.tensors.get(n) {
                None => problems.push(format!("missing {n} {s:?}")),
                Some((shape, v)) if shape != s => {
                    problems.push(format!("{n} is {shape:?}, the model needs {s:?}"));
                    out.push(v.clone());
                }
                Some((_, v)) => out.push(v.clone()),
            }
        }
        if !problems.is_empty() {
            return Err(ck_err(path, format!("does not fit the model: {}", problems.join("; "))));
        }
        Ok(out)
    }
}
