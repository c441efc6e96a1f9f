//! Hydra in a browser tab: a [`Session`] opens the visitor's GPU through WebGPU, reads a
//! config (the same keys as `hydra train`) and its data (a built-in dataset or a CSV the
//! visitor picked), trains while streaming each epoch's record to the page, and hands back
//! the final metrics document and the checkpoint, byte for byte what `hydra train --save`
//! writes.
//!
//! Everything the engine does here it does natively too: this crate only converts between
//! JavaScript values and the library's, and applies the page's overrides to the config.

mod overrides;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use hydra::config::Config;
use hydra::data::Table;
use hydra::experiment::{self, Prepared, RunOptions};
use hydra::train::Trainer;
use hydra::Context;
use wasm_bindgen::prelude::*;

pub use overrides::apply_overrides;

/// One config, its data and the GPU: what the page trains.
#[wasm_bindgen]
pub struct Session {
    /// Empty while a call that waits for the GPU has it: a second call meanwhile is refused.
    inner: Rc<RefCell<Option<Inner>>>,
}

struct Inner {
    ctx: Arc<Context>,
    /// The config text with the page's overrides applied: what `hydra train --config` would
    /// read to run the same thing natively.
    text: String,
    cfg: Config,
    prepared: Prepared,
    trainer: Option<Trainer>,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

const BUSY: &str = "the session is busy: wait for its training to end";

/// Takes the session's state for a call that waits for the GPU (no borrow is held across
/// the wait); [`put_back`] returns it, whatever the call's outcome.
fn take(inner: &Rc<RefCell<Option<Inner>>>) -> Result<Inner, JsError> {
    inner.try_borrow_mut().ok().and_then(|mut slot| slot.take()).ok_or_else(|| JsError::new(BUSY))
}

fn put_back(inner: &Rc<RefCell<Option<Inner>>>, state: Inner) {
    if let Ok(mut slot) = inner.try_borrow_mut() {
        *slot = Some(state);
    }
}

impl Session {
    /// Reads the state between calls that wait for the GPU.
    fn with<T>(&self, f: impl FnOnce(&Inner) -> T) -> Result<T, JsError> {
        let slot = self.inner.try_borrow().map_err(|_| JsError::new(BUSY))?;
        slot.as_ref().map(f).ok_or_else(|| JsError::new(BUSY))
    }
}

/// The config the page asked for: `toml_text` with `overrides` (a JSON object of dotted keys,
/// `{"weighting.method": "pcgrad", "train.epochs": 20}`) applied, and its text.
pub fn page_config(toml_text: &str, overrides: &str) -> hydra::Result<(Config, String)> {
    let text = apply_overrides(toml_text, overrides)?;
    Ok((Config::parse("<page config>", &text, PathBuf::new())?, text))
}

/// Prepares the config's data: a file it names is the one the visitor picked (`file_name`,
/// `file_bytes`), read from memory.
pub fn page_data(cfg: &Config, file: Option<(&str, &[u8])>) -> hydra::Result<Prepared> {
    experiment::prepare_with(cfg, &mut |rel| match file {
        Some((name, bytes)) if rel == name => Table::parse(name, bytes),
        _ => Err(hydra::Error::invalid(
            "data",
            format!("{rel:?}: a page reads only the file picked in it (or a built-in dataset)"),
        )),
    })
}

#[wasm_bindgen]
impl Session {
    /// Opens WebGPU, applies `overrides` to the config text, and reads and splits its data.
    /// Rejects with the library's message (naming the key, file, row or column) on bad input,
    /// and with a plain sentence when the browser has no WebGPU.
    pub async fn open(
        config: String,
        overrides: String,
        file_name: Option<String>,
        file_bytes: Option<Vec<u8>>,
    ) -> Result<Session, JsError> {
        let (cfg, text) = page_config(&config, &overrides).map_err(js_err)?;
        let file = match (&file_name, &file_bytes) {
            (Some(n), Some(b)) => Some((n.as_str(), b.as_slice())),
            _ => None,
        };
        let prepared = page_data(&cfg, file).map_err(js_err)?;
        let ctx = Context::new_async().await.map_err(js_err)?;
        Ok(Session { inner: Rc::new(RefCell::new(Some(Inner { ctx, text, cfg, prepared, trainer: None }))) })
    }

    /// What is about to train, as JSON: the adapter, the tasks, the rows of each split, the
    /// weighting method and the architecture.
    pub fn summary(&self) -> Result<String, JsError> {
        self.with(|g| {
            let s = &g.prepared.splits;
            serde_json::json!({
                "adapter": g.ctx.adapter().name,
                "backend": g.ctx.adapter().backend,
                "tasks": g.cfg.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
                "rows": {"train": s.train.rows(), "val": s.val.rows(), "test": s.test.rows()},
                "method": g.cfg.raw.weighting.method,
                "arch": g.cfg.raw.model.arch,
                "epochs": g.cfg.train.epochs,
                "reported_split": s.reported().name(),
            })
            .to_string()
        })
    }

    /// The config text that trains, the page's overrides applied: saved to a file, `hydra
    /// train --config` runs the same thing natively.
    pub fn config(&self) -> Result<String, JsError> {
        self.with(|g| g.text.clone())
    }

    /// Trains (and, with `baselines`, one single-task model per task), calling `on_epoch`
    /// with each evaluation's record as JSON (the lines of `hydra train --log`). Resolves to
    /// the final metrics document (`hydra train --metrics-json`), with the run's seconds.
    pub fn train(&self, baselines: bool, on_epoch: js_sys::Function) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut state = take(&inner)?;
            let result = train(&mut state, baselines, &on_epoch).await;
            put_back(&inner, state);
            result.map(|doc| JsValue::from_str(&doc))
        })
    }

    /// The trained model and its training state as a safetensors file (the bytes `hydra
    /// train --save` writes; `hydra predict --model` reads them natively). Rejects before
    /// training.
    pub fn checkpoint(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let state = take(&inner)?;
            let result = checkpoint(&state).await;
            put_back(&inner, state);
            result.map(|bytes| js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// The run behind [`Session::train`]: the metrics document as JSON text.
async fn train(state: &mut Inner, baselines: bool, on_epoch: &js_sys::Function) -> Result<String, JsValue> {
    let names: Vec<String> = state.cfg.tasks.iter().map(|t| t.name.clone()).collect();
    let mut call_err = None;
    let mut on_eval = |r: &hydra::train::EvalRecord| {
        let line = hydra::report::jsonl::record(&names, r).to_string();
        if let Err(e) = on_epoch.call1(&JsValue::NULL, &JsValue::from_str(&line)) {
            call_err.get_or_insert(e);
        }
    };
    let opts = RunOptions { baselines, ..RunOptions::default() };
    let start = js_sys::Date::now();
    let Inner { ctx, cfg, prepared, .. } = &*state;
    let (out, trainer) =
        experiment::run_async(ctx, cfg, prepared, &opts, &mut on_eval, &mut |_| {}).await.map_err(js_err)?;
    let seconds = (js_sys::Date::now() - start) / 1000.0;
    if let Some(e) = call_err {
        return Err(e);
    }
    let doc = hydra::report::metrics_json::document(&cfg.tasks, &out, prepared.splits.reported(), seconds);
    state.trainer = Some(trainer);
    Ok(doc.to_string())
}

/// The checkpoint behind [`Session::checkpoint`].
async fn checkpoint(state: &Inner) -> Result<Vec<u8>, JsValue> {
    let Some(tr) = &state.trainer else {
        return Err(JsError::new("nothing is trained yet").into());
    };
    let ck = experiment::snapshot_checkpoint_async(&state.cfg, &state.prepared, tr).await.map_err(js_err)?;
    Ok(ck.to_bytes().map_err(js_err)?)
}

/// The built-in example configs the page offers, as JSON `{name: toml}`.
#[wasm_bindgen]
pub fn examples() -> String {
    serde_json::json!({
        "energy": include_str!("../../examples/energy.toml"),
        "energy_mmoe": include_str!("../../examples/energy_mmoe.toml"),
        "parkinsons": include_str!("../../examples/parkinsons.toml"),
        "recsys": include_str!("../../examples/recsys.toml"),
    })
    .to_string()
}

/// The weighting methods, as JSON `[[name, how it is computed], …]`, from the library's
/// registry (README's table).
#[wasm_bindgen]
pub fn methods() -> String {
    let v: Vec<(&str, &str)> = hydra::mtl::weighting::registry::REGISTRY.iter().map(|m| (m.name, m.computed)).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}
