//! `hydra._native.Model`: a config, and after `fit` (or `load`) a trained model that predicts,
//! evaluates, saves and shows its parameters.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use hydra::config::Config;
use hydra::experiment::{self, arrays, Prepared, Start};
use hydra::mtl::{TaskDef, TaskKind};
use hydra::nn::ModelSpec;
use hydra::train::{EvalRecord, Evaluator, Scaling, Trainer};
use hydra::Context;

use crate::errors::{to_py, DataError, HydraError};

/// A parameter as (name, shape, values).
type Parameter = (String, Vec<usize>, Vec<f32>);

/// What predicting needs: the model, its tasks, its scaling and its parameters.
struct Trained {
    spec: ModelSpec,
    tasks: Vec<TaskDef>,
    scaling: Scaling,
    params: Vec<Vec<f32>>,
    names: Vec<String>,
    /// The run it came from (a fitted model; None when loaded from a checkpoint).
    run: Option<(Prepared, Trainer)>,
}

/// A multi-task model: its config, and once trained its parameters.
#[pyclass(module = "hydra._native", unsendable)]
pub struct Model {
    cfg: Option<Config>,
    tasks: Vec<TaskDef>,
    trained: Option<Trained>,
    ctx: Option<Arc<Context>>,
}

fn context(py: Python<'_>, slot: &mut Option<Arc<Context>>) -> PyResult<Arc<Context>> {
    if let Some(c) = slot {
        return Ok(c.clone());
    }
    let c = py.allow_threads(Context::new).map_err(to_py)?;
    *slot = Some(c.clone());
    Ok(c)
}

fn rows(x: &PyReadonlyArray2<'_, f32>) -> (Vec<f32>, usize, usize) {
    let a = x.as_array();
    (a.iter().copied().collect(), a.nrows(), a.ncols())
}

fn labels(y: &[PyReadonlyArray1<'_, f32>]) -> Vec<Vec<f32>> {
    y.iter().map(|a| a.as_array().to_vec()).collect()
}

fn task_kind(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Regression => "regression",
        TaskKind::Binary => "binary",
        TaskKind::Multiclass => "multiclass",
    }
}

#[pymethods]
impl Model {
    /// A model from config text (`kind` "toml" or "json"); `name` names it in messages and
    /// `base` is where relative paths start.
    #[new]
    fn new(text: &str, kind: &str, name: &str, base: &str) -> PyResult<Model> {
        let toml_text = match kind {
            "toml" => text.to_string(),
            "json" => {
                let v: toml::Value = serde_json::from_str(text)
                    .map_err(|e| crate::errors::ConfigError::new_err(format!("{name}: {e}")))?;
                toml::to_string(&v).map_err(|e| crate::errors::ConfigError::new_err(format!("{name}: {e}")))?
            }
            other => return Err(HydraError::new_err(format!("config kind {other:?} (toml or json)"))),
        };
        let cfg = Config::parse_for_arrays(name, &toml_text, PathBuf::from(base)).map_err(to_py)?;
        Ok(Model { tasks: cfg.tasks.clone(), cfg: Some(cfg), trained: None, ctx: None })
    }

    /// The tasks as (name, kind, classes).
    fn tasks(&self) -> Vec<(String, &'static str, usize)> {
        self.tasks.iter().map(|t| (t.name.clone(), task_kind(t.kind), t.classes())).collect()
    }

    /// Whether the model has parameters (fitted or loaded).
    fn is_trained(&self) -> bool {
        self.trained.is_some()
    }

    /// Trains on `x` `[n, f]` and per-task labels in task order; returns the history as
    /// `(epochs, train_loss [epoch][task], val_loss [epoch][task], val_metrics [epoch][task] as
    /// dicts, best_epoch, steps, interrupted)`. `callback(epoch, metrics)` returning False stops
    /// after the current step; Ctrl-C stops too (checked between steps) and is raised after.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (x, y, x_val=None, y_val=None, callback=None))]
    fn fit<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        y: Vec<PyReadonlyArray1<'py, f32>>,
        x_val: Option<PyReadonlyArray2<'py, f32>>,
        y_val: Option<Vec<PyReadonlyArray1<'py, f32>>>,
        callback: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cfg = self.cfg.clone().ok_or_else(|| HydraError::new_err("a loaded model has no config to train with"))?;
        let ctx = context(py, &mut self.ctx)?;
        let (xv, _, f) = rows(&x);
        let train = arrays::dataset(&cfg, xv, f, labels(&y)).map_err(to_py)?;
        let val = match (x_val, y_val) {
            (Some(xv), Some(yv)) => {
                let (v, _, fv) = rows(&xv);
                Some(arrays::dataset(&cfg, v, fv, labels(&yv)).map_err(to_py)?)
            }
            (None, None) => None,
            _ => return Err(DataError::new_err("give X_val and y_val together")),
        };
        let prepared = arrays::prepare(&cfg, train, val).map_err(to_py)?;
        let mut tr = experiment::build_trainer(&ctx, &cfg, &prepared, Start::Fresh, &mut |_| {}).map_err(to_py)?;
        let stop = tr.stop_handle();
        // The first Python error raised in a callback or by a signal, and whether a signal came.
        let pending: std::sync::Mutex<(Option<PyErr>, bool)> = std::sync::Mutex::new((None, false));
        let keep = |e: PyErr, signal: bool| {
            if let Ok(mut p) = pending.lock() {
                p.0.get_or_insert(e);
                p.1 |= signal;
            }
        };
        let splits = &prepared.splits;
        let report = py.allow_threads(|| {
            let mut on_eval = |r: &EvalRecord| {
                if let Some(cb) = &callback {
                    Python::with_gil(|py| {
                        let metrics = record_dict(py, &cfg.tasks, r);
                        match metrics.and_then(|m| cb.call1(py, (r.epoch, m))) {
                            Ok(v) if v.bind(py).is(&*pyo3::types::PyBool::new(py, false)) => {
                                stop.store(true, Ordering::Relaxed)
                            }
                            Ok(_) => {}
                            Err(e) => {
                                keep(e, false);
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    });
                }
            };
            let mut on_step = |_: &Trainer| -> hydra::Result<()> {
                if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                    keep(e, true);
                    stop.store(true, Ordering::Relaxed);
                }
                Ok(())
            };
            tr.fit_with_checkpoints(splits, &mut on_eval, 1, &mut on_step)
        });
        let report = report.map_err(to_py)?;
        // The model's own parameters: a weighting's (UW's log-variances) come after them.
        let spec = experiment::model_spec(&cfg, &prepared.splits.train);
        let n = hydra::nn::MultiTaskModel::build(&spec, 1).map_err(to_py)?.graph.params.len();
        let names = tr.param_names().into_iter().map(|(n, _)| n).take(n).collect();
        self.trained = Some(Trained {
            spec,
            tasks: cfg.tasks.clone(),
            scaling: prepared.scaling.clone(),
            params: report.params.iter().take(n).cloned().collect(),
            names,
            run: None,
        });
        if let Some(t) = self.trained.as_mut() {
            t.run = Some((prepared, tr));
        }
        let (pending, interrupted) = pending.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = pending {
            return Err(e);
        }
        history_dict(py, &cfg.tasks, &report.history, report.best_epoch, report.steps, interrupted)
    }

    /// Per task in order: regression values `[n]`, binary probabilities `[n]`, multiclass
    /// class probabilities `[n, classes]` (flat here; the Python layer reshapes).
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<f32>>>> {
        let ctx = context(py, &mut self.ctx)?;
        let t = self.trained.as_ref().ok_or_else(|| HydraError::new_err("the model is not trained: call fit first"))?;
        let (xv, _, f) = rows(&x);
        let names = (0..f).map(|i| format!("x{i}")).collect();
        let n = xv.len() / f.max(1);
        let masks = vec![vec![0.0; n]; t.tasks.len()];
        let labels = vec![vec![0.0; n]; t.tasks.len()];
        let d = hydra::data::Dataset::from_slices(names, xv, labels, masks).map_err(to_py)?;
        let (spec, tasks, scaling, params) = (&t.spec, &t.tasks, t.scaling.clone(), &t.params);
        let preds = py
            .allow_threads(|| Evaluator::new(ctx, spec, tasks, scaling).predict_with(params, &d, true))
            .map_err(to_py)?;
        Ok(preds.into_iter().map(|p| PyArray1::from_vec(py, p)).collect())
    }

    /// Per task in order, its metrics on `x` and labels `y` (missing labels masked).
    fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        y: Vec<PyReadonlyArray1<'py, f32>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let ctx = context(py, &mut self.ctx)?;
        let t = self.trained.as_ref().ok_or_else(|| HydraError::new_err("the model is not trained: call fit first"))?;
        let (xv, _, f) = rows(&x);
        let cfg_like = Config::parse_for_arrays("evaluate", &tasks_toml(&t.tasks), PathBuf::from("."));
        let cfg = cfg_like.map_err(to_py)?;
        let raw = arrays::dataset(&cfg, xv, f, labels(&y)).map_err(to_py)?;
        let d = t.scaling.apply(&raw);
        let (spec, tasks, scaling, params) = (&t.spec, &t.tasks, t.scaling.clone(), &t.params);
        let (_, mets) = py
            .allow_threads(|| {
                Evaluator::new(ctx, spec, tasks, scaling).evaluate(hydra::train::Params::Host(params), &d)
            })
            .map_err(to_py)?;
        mets.iter().map(|m| metrics_dict(py, m)).collect()
    }

    /// Writes the trained model as the same safetensors checkpoint the command writes.
    fn save(&self, path: &str) -> PyResult<()> {
        let t = self.trained.as_ref().ok_or_else(|| HydraError::new_err("the model is not trained: call fit first"))?;
        let (cfg, (prepared, tr)) = match (&self.cfg, &t.run) {
            (Some(c), Some(r)) => (c, r),
            _ => return Err(HydraError::new_err("a loaded model is saved as the file it came from")),
        };
        let ck = experiment::snapshot_checkpoint(cfg, prepared, tr).map_err(to_py)?;
        ck.save(Path::new(path)).map_err(to_py)
    }

    /// A trained model from a checkpoint (`hydra train --save` or `Model.save`).
    #[staticmethod]
    fn load(path: &str) -> PyResult<Model> {
        // Whatever stops the file from loading (missing, unreadable, not a Hydra model) is the
        // checkpoint's error.
        let (info, params) = experiment::load_model(Path::new(path))
            .map_err(|e| crate::errors::CheckpointError::new_err(e.to_string()))?;
        let graph = hydra::nn::MultiTaskModel::build(&info.spec, 1).map_err(to_py)?.graph;
        let names = graph.params.iter().map(|p| p.name.clone()).collect();
        let tasks = info.tasks.clone();
        let trained = Trained { spec: info.spec, tasks: info.tasks, scaling: info.scaling, params, names, run: None };
        Ok(Model { cfg: None, tasks, trained: Some(trained), ctx: None })
    }

    /// Every parameter as (name, shape, values), PyTorch's names and layouts.
    fn parameters(&self) -> PyResult<Vec<Parameter>> {
        let t = self.trained.as_ref().ok_or_else(|| HydraError::new_err("the model is not trained: call fit first"))?;
        let graph = hydra::nn::MultiTaskModel::build(&t.spec, 1).map_err(to_py)?.graph;
        Ok(t.names
            .iter()
            .zip(&graph.params)
            .zip(&t.params)
            .map(|((n, p), v)| (n.clone(), p.shape.clone(), v.clone()))
            .collect())
    }
}

/// A minimal config text for these tasks (evaluation builds its labels' masks with it).
fn tasks_toml(tasks: &[TaskDef]) -> String {
    let mut s = String::new();
    for t in tasks {
        s.push_str(&format!(
            "[[task]]\nname = {:?}\ntarget = {:?}\nkind = {:?}\n",
            t.name,
            t.target,
            task_kind(t.kind)
        ));
        if t.kind == TaskKind::Multiclass {
            s.push_str(&format!("classes = {}\n", t.classes()));
        }
    }
    s
}

fn metrics_dict<'py>(py: Python<'py>, m: &hydra::mtl::metrics::Metrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m.iter() {
        d.set_item(k, *v)?;
    }
    Ok(d)
}

fn record_dict<'py>(py: Python<'py>, tasks: &[TaskDef], r: &EvalRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (t, task) in tasks.iter().enumerate() {
        let m = PyDict::new(py);
        if let Some(l) = r.train_loss.get(t) {
            m.set_item("train_loss", *l)?;
        }
        if let Some(l) = r.val_loss.get(t) {
            m.set_item("val_loss", *l)?;
        }
        if let Some(vm) = r.val_metrics.get(t) {
            for (k, v) in vm.iter() {
                m.set_item(format!("val_{k}"), *v)?;
            }
        }
        d.set_item(&task.name, m)?;
    }
    Ok(d)
}

fn history_dict<'py>(
    py: Python<'py>,
    tasks: &[TaskDef],
    history: &[EvalRecord],
    best_epoch: usize,
    steps: u64,
    interrupted: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", history.iter().map(|r| r.epoch).collect::<Vec<_>>())?;
    for (t, task) in tasks.iter().enumerate() {
        let m = PyDict::new(py);
        m.set_item("train_loss", history.iter().map(|r| r.train_loss.get(t).copied()).collect::<Vec<_>>())?;
        m.set_item("val_loss", history.iter().map(|r| r.val_loss.get(t).copied()).collect::<Vec<_>>())?;
        let names: Vec<String> = history
            .first()
            .and_then(|r| r.val_metrics.get(t))
            .map(|vm| vm.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        for k in names {
            let v: Vec<Option<f64>> =
                history.iter().map(|r| r.val_metrics.get(t).and_then(|vm| vm.get(&k).copied())).collect();
            m.set_item(format!("val_{k}"), v)?;
        }
        d.set_item(&task.name, m)?;
    }
    d.set_item("best_epoch", best_epoch)?;
    d.set_item("steps", steps)?;
    d.set_item("interrupted", interrupted)?;
    Ok(d)
}
