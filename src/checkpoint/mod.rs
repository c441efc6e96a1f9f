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

/// The precision a tensor is stored in. Hydra computes in f32; PyTorch often saves f16 or
/// bf16, and `train --save-dtype` writes them (through the `half` crate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// IEEE single precision (what Hydra computes in).
    #[default]
    F32,
    /// IEEE half precision: 11 significant bits, finite up to 65504.
    F16,
    /// bfloat16: f32's range with 8 significant bits.
    Bf16,
}

impl Precision {
    /// By name: f32, f16 or bf16 (`what` names the option, for the error).
    pub fn parse(name: &str, what: &str) -> Result<Precision> {
        match name {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::invalid(what, format!("{other:?} (expected f32, f16 or bf16)"))),
        }
    }

    fn dtype(self) -> &'static str {
        match self {
            Precision::F32 => "F32",
            Precision::F16 => "F16",
            Precision::Bf16 => "BF16",
        }
    }

    fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            _ => 2,
        }
    }

    fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            Precision::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            Precision::F16 => values.iter().for_each(|&v| out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes())),
            Precision::Bf16 => {
                values.iter().for_each(|&v| out.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()))
            }
        }
    }
}

/// Tensors (name → shape, values) and string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors by name.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// The precision each tensor was read in (f32 for one inserted in memory).
    pub stored: BTreeMap<String, Precision>,
}

fn ck_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Data { file: path.display().to_string(), line: None, column: None, message: message.into() }
}

impl Checkpoint {
    /// Adds a tensor.
    pub fn insert(&mut self, name: &str, shape: &[usize], values: Vec<f32>) {
        self.stored.insert(name.to_string(), Precision::F32);
        self.tensors.insert(name.to_string(), (shape.to_vec(), values));
    }

    /// The file's bytes: the safetensors layout (8-byte little-endian header length, a JSON
    /// header, then the tensors' data), with keys in sorted order so that the same contents
    /// always give the same bytes. Every tensor in f32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_as(Precision::F32)
    }

    /// Model tensors stored with `model`'s precision. The training state ([`schema`]'s
    /// prefixes: optimizer state, best parameters, the weighting's tensors) stays f32.
    pub fn to_bytes_as(&self, model: Precision) -> Result<Vec<u8>> {
        let precision = |name: &str| {
            if schema::STATE_PREFIXES.iter().any(|p| name.starts_with(p)) {
                Precision::F32
            } else {
                model
            }
        };
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
            let p = precision(name);
            let end = at + p.bytes() * n;
            header.insert(
                name.clone(),
                serde_json::json!({ "dtype": p.dtype(), "shape": shape, "data_offsets": [at, end] }),
            );
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
        for (name, (_, values)) in &self.tensors {
            precision(name).encode(values, &mut out);
        }
        Ok(out)
    }

    /// Writes atomically: a crash at any moment leaves either the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_as(path, Precision::F32)
    }

    /// Like [`Checkpoint::save`], model tensors in `model`'s precision.
    pub fn save_as(&self, path: &Path, model: Precision) -> Result<()> {
        let bytes = self.to_bytes_as(model)?;
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
            let d = view.data();
            let (precision, values): (Precision, Vec<f32>) = match view.dtype() {
                Dtype::F32 => {
                    (Precision::F32, d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
                }
                Dtype::F16 => (
                    Precision::F16,
                    d.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                ),
                Dtype::BF16 => (
                    Precision::Bf16,
                    d.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                ),
                other => {
                    return Err(ck_err(path, format!("tensor {name} is {other:?}; Hydra reads F32, F16 and BF16")))
                }
            };
            out.stored.insert(name.clone(), precision);
            out.tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(out)
    }

    /// The tensors stored in half precision (F16 or BF16).
    pub fn half_precision_tensors(&self) -> Vec<&str> {
        self.stored.iter().filter(|(_, p)| **p != Precision::F32).map(|(n, _)| n.as_str()).collect()
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
