//! Forward passes over whole datasets, for evaluation and prediction.

use std::sync::Arc;

use crate::cpu;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::mtl::metrics::{self, Metrics};
use crate::mtl::{TaskDef, TaskKind};
use crate::nn::{ModelSpec, MultiTaskModel};
use crate::runtime::GpuGraph;

use super::{gather, Scaling};
use crate::compile::ParamStore;

/// Where an evaluation takes the parameters from.
#[derive(Clone, Copy)]
pub enum Params<'a> {
    /// Host values (in parameter order), written into the evaluation graph.
    Host(&'a [Vec<f32>]),
    /// A trainer's store, read where it is: no copy at all.
    Store(&'a ParamStore),
}

/// Runs a model's forward pass over whole datasets (in batches of up to 1024 rows, the last
/// padded) for evaluation and prediction; needs no optimizer.
pub struct Evaluator {
    ctx: Arc<Context>,
    spec: ModelSpec,
    tasks: Vec<TaskDef>,
    scaling: Scaling,
    /// Compiled forward graphs by batch size (the splits' sizes, each built once) and by
    /// whether they read a store.
    cache: Vec<(MultiTaskModel, GpuGraph, bool)>,
}

impl Evaluator {
    /// An evaluator for `spec` with `tasks` and the scaling its inputs were trained with.
    pub fn new(ctx: Arc<Context>, spec: &ModelSpec, tasks: &[TaskDef], scaling: Scaling) -> Evaluator {
        Evaluator { ctx, spec: spec.clone(), tasks: tasks.to_vec(), scaling, cache: Vec::new() }
    }

    /// The scaling.
    pub fn scaling(&self) -> &Scaling {
        &self.scaling
    }

    /// Per task, the raw outputs `[rows, outputs]` for every row of `d` (already scaled).
    pub fn outputs(&mut self, params: Params<'_>, d: &Dataset) -> Result<Vec<Vec<f32>>> {
        crate::gpu::wait::block("evaluating", self.outputs_async(params, d))
    }

    /// [`Evaluator::outputs`] as a future: the form a browser page uses.
    pub async fn outputs_async(&mut self, params: Params<'_>, d: &Dataset) -> Result<Vec<Vec<f32>>> {
        let n = d.rows();
        let mut outs: Vec<Vec<f32>> = self.tasks.iter().map(|t| Vec::with_capacity(n * t.loss.outputs())).collect();
        if n == 0 {
            return Ok(outs);
        }
        if d.width() != self.spec.inputs {
            return Err(Error::shape(
                "evaluate",
                format!("{} features, the model takes {}", d.width(), self.spec.inputs),
            ));
        }
        let batch = n.min(1024);
        let on_store = matches!(params, Params::Store(_));
        let slot = match self.cache.iter().position(|(m, _, st)| m.batch == batch && *st == on_store) {
            Some(i) => {
                // A graph on a store reads the store's current parameters as they are.
                if let Params::Host(p) = params {
                    self.cache[i].1.write_params(p)?;
                }
                i
            }
            None => {
                let m = MultiTaskModel::build(&self.spec, batch)?;
                let g = match params {
                    Params::Host(p) => GpuGraph::forward_only(self.ctx.clone(), m.graph.clone(), p)?,
                    Params::Store(s) => GpuGraph::forward_only_on(self.ctx.clone(), m.graph.clone(), s)?,
                };
                self.cache.push((m, g, on_store));
                self.cache.len() - 1
            }
        };
        let (model, eg, _) = &mut self.cache[slot];
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(batch) {
            let mut inputs = gather(d, chunk, batch)?;
            // Prediction data may carry no labels: feed empty (masked) ones.
            let features = usize::from(self.spec.inputs > 0) + 3 * self.spec.embeddings.len();
            while inputs.len() < features + 2 * self.tasks.len() {
                inputs.push(vec![0.0; batch]);
            }
            let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            eg.feed(&refs)?;
            eg.forward()?;
            // All tasks' outputs in one readback.
            let values = eg.read_values_async(&model.logits).await?;
            for (t, v) in values.iter().enumerate() {
                let k = self.tasks[t].loss.outputs();
                outs[t].extend_from_slice(&v[..chunk.len() * k]);
            }
        }
        Ok(outs)
    }

    /// Per task, the loss (scaled units) and metrics (original units) on `d` (already scaled).
    pub fn evaluate(&mut self, params: Params<'_>, d: &Dataset) -> Result<(Vec<f64>, Vec<Metrics>)> {
        crate::gpu::wait::block("evaluating", self.evaluate_async(params, d))
    }

    /// [`Evaluator::evaluate`] as a future: the form a browser page uses.
    pub async fn evaluate_async(&mut self, params: Params<'_>, d: &Dataset) -> Result<(Vec<f64>, Vec<Metrics>)> {
        if d.rows() == 0 {
            return Ok((vec![], vec![]));
        }
        d.check_labels(&self.tasks)?;
        let outs = self.outputs_async(params, d).await?;
        let mut losses = Vec::new();
        let mut mets = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            let o64: Vec<f64> = outs[t].iter().map(|&v| f64::from(v)).collect();
            let l64: Vec<f64> = d.labels[t].iter().map(|&v| f64::from(v)).collect();
            let m64: Vec<f64> = d.masks[t].iter().map(|&v| f64::from(v)).collect();
            let mut scratch = vec![0.0; o64.len()];
            losses.push(cpu::task_loss(task.loss, &o64, &l64, &m64, 1.0, &mut scratch));
            let mut out = outs[t].clone();
            let mut labels = d.labels[t].clone();
            if task.kind == TaskKind::Regression {
                self.scaling.unscale_outputs(t, &mut out);
                self.scaling.unscale_outputs(t, &mut labels);
            }
            mets.push(metrics::task_metrics(task.kind, &out, task.loss.outputs(), &labels, &d.masks[t]));
        }
        Ok((losses, mets))
    }

    /// Predictions in the user's units for raw (unscaled) feature rows: regression values,
    /// binary probabilities of 1, multiclass class indices. One vector per task.
    pub fn predict(&mut self, params: &[Vec<f32>], raw: &Dataset) -> Result<Vec<Vec<f32>>> {
        self.predict_with(params, raw, false)
    }

    /// As [`Evaluator::predict`], with each multiclass task's class probabilities (`classes`
    /// values per row, row-major) in place of the class when `probabilities`.
    pub fn predict_with(&mut self, params: &[Vec<f32>], raw: &Dataset, probabilities: bool) -> Result<Vec<Vec<f32>>> {
        let mut d = raw.clone();
        self.scaling.features.apply(&mut d.features);
        let outs = self.outputs(Params::Host(params), &d)?;
        let mut preds = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            let mut o = outs[t].clone();
            preds.push(match task.kind {
                TaskKind::Regression => {
                    self.scaling.unscale_outputs(t, &mut o);
                    o
                }
                TaskKind::Binary => o.iter().map(|&x| cpu::stable_sigmoid(x)).collect(),
                TaskKind::Multiclass if probabilities => {
                    let k = task.classes();
                    o.chunks(k)
                        .flat_map(|row| {
                            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let e: Vec<f32> = row.iter().map(|&v| (v - m).exp()).collect();
                            let s: f32 = e.iter().sum();
                            e.into_iter().map(move |v| v / s)
                        })
                        .collect()
                }
                TaskKind::Multiclass => {
                    let k = task.classes();
                    o.chunks(k)
                        .map(|row| {
                            row.iter()
                                .enumerate()
                                .fold((0, f32::NEG_INFINITY), |(a, m), (i, &v)| if v > m { (i, v) } else { (a, m) })
                                .0 as f32
                        })
                        .collect()
                }
            });
        }
        Ok(preds)
    }
}
