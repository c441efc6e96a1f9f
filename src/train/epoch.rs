//! The end of an epoch and of a run: evaluation on every split, the gradient diagnostics, the
//! weights in force, which epoch to keep (early stopping), and the final report.

use super::trainer::Trainer;
use super::{gather, EvalRecord, Splits, TrainReport};
use crate::data::{Dataset, Split};
use crate::error::Result;
use crate::mtl::metrics::Metrics;
use crate::mtl::weighting::{Gram, Method};

impl Trainer {
    /// Per-task gradient norms and pairwise cosines at the shared representation on the
    /// training rows `rows` (one batch), without changing anything.
    pub(super) async fn diagnose(&mut self, train: &Dataset, rows: &[usize]) -> Result<(Vec<f64>, Vec<f64>)> {
        if !self.graph.has_task_grads() {
            return Ok((vec![], vec![]));
        }
        let inputs = gather(train, rows, self.graph_batch)?;
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        self.graph.feed(&refs)?;
        self.graph.diagnostics_phase()?;
        let (m, _) = self.graph.read_gram_async().await?;
        let t = self.tasks.len();
        let g = Gram::new(t, m.iter().map(|&v| f64::from(v)).collect());
        let norms = (0..t).map(|i| g.norm(i)).collect();
        let cos = (0..t * t).map(|k| g.cosine(k / t, k % t)).collect();
        Ok((norms, cos))
    }

    /// The task weights in force: a gradient method's last coefficients, what the GPU computed
    /// for uw, gls and famo, else the host's loss weights.
    pub(super) async fn current_weights(&mut self) -> Result<Vec<f32>> {
        if let Some(c) = &self.coefficients {
            return Ok(c.clone());
        }
        match self.weighter.method {
            Method::Uw | Method::Gls | Method::Famo { .. } => {
                self.weights = self.graph.read_task_weights_async().await?;
                Ok(self.weights.clone())
            }
            _ => Ok(self.weights.clone()),
        }
    }

    /// After the last epoch: the kept parameters back in place and the report.
    pub(super) async fn finish(
        &mut self,
        splits: &Splits,
        history: Vec<EvalRecord>,
        kept: Option<(usize, [Vec<Metrics>; 3])>,
    ) -> Result<TrainReport> {
        let (best_epoch, params) = match &self.best_params {
            Some(p) => {
                self.graph.write_params(p)?;
                (self.state.best_epoch, p.clone())
            }
            None => (self.state.epoch, self.graph.read_params_async().await?),
        };
        // The kept parameters were evaluated at their epoch: their metrics are reused, not
        // computed again (a resumed run whose best epoch came before it evaluates them anew).
        let mut per_split: Vec<Vec<Metrics>> = match kept {
            Some((epoch, m)) if epoch == best_epoch => m.into(),
            _ => {
                let mut v = Vec::new();
                for d in [&splits.train, &splits.val, &splits.test] {
                    v.push(self.evaluate_async(d).await?.1);
                }
                v
            }
        };
        for m in &mut per_split {
            if m.is_empty() {
                *m = vec![Metrics::new(); self.tasks.len()];
            }
        }
        let metrics = (0..self.tasks.len()).map(|t| Split::ALL.map(|s| per_split[s.index()][t].clone())).collect();
        Ok(TrainReport { history, best_epoch, metrics, params, steps: self.graph.steps() })
    }

    /// Evaluates the epoch just finished on every split, with the gradient diagnostics on
    /// the training rows `first` and the weights a per-epoch method sets now. Returns the
    /// record and the metrics on every split.
    pub(super) async fn evaluate_epoch(
        &mut self,
        splits: &Splits,
        first: &[usize],
    ) -> Result<(EvalRecord, [Vec<Metrics>; 3])> {
        let (train_loss, train_metrics) = self.evaluate_async(&splits.train).await?;
        let (val_loss, val_metrics) = self.evaluate_async(&splits.val).await?;
        let (test_loss, test_metrics) = self.evaluate_async(&splits.test).await?;
        let (grad_norms, grad_cosines) = self.diagnose(&splits.train, first).await?;
        if let Some(w) = self.weighter.epoch_weights(&train_loss) {
            self.set_weights(&w.iter().map(|&x| x as f32).collect::<Vec<_>>())?;
        }
        let weights = self.current_weights().await?;
        let metrics = [train_metrics, val_metrics.clone(), test_metrics.clone()];
        let rec = EvalRecord {
            epoch: self.state.epoch,
            step: self.graph.steps(),
            train_loss,
            val_loss,
            val_metrics,
            test_loss,
            test_metrics,
            weights,
            grad_norms,
            grad_cosines,
            affinity: self.state.affinity.as_ref().map(|a| a.mean()).unwrap_or_default(),
        };
        Ok((rec, metrics))
    }

    /// Keeps the epoch whose validation Δm% against `baselines` (per task, the single-task
    /// baselines' validation metrics) is best, instead of the epoch of the lowest validation
    /// loss; patience counts epochs without a better Δm%.
    pub fn select_by_delta_m(&mut self, baselines: Vec<Metrics>) {
        self.select_delta_m = Some(baselines);
    }

    /// Early stopping on the validation loss (or, with [`Trainer::select_by_delta_m`], on the
    /// validation Δm%): whether this epoch's parameters are the ones to keep (always, without
    /// a validation split), remembering them; stops after `patience` epochs without
    /// improvement (0: never).
    pub(super) async fn keeps(&mut self, rec: &EvalRecord, patience: usize) -> Result<bool> {
        if rec.val_loss.is_empty() {
            return Ok(true);
        }
        // Lower is better: the summed loss, or −Δm% (an undefined Δm% never improves).
        let v: f64 = match &self.select_delta_m {
            None => rec.val_loss.iter().sum(),
            Some(base) => {
                let per: Vec<crate::mtl::metrics::TaskDelta> = self
                    .tasks
                    .iter()
                    .enumerate()
                    .map(|(t, task)| crate::mtl::metrics::task_delta(task.kind, &rec.val_metrics[t], &base[t]))
                    .collect();
                crate::mtl::metrics::delta_m(&per).map_or(f64::INFINITY, |d| -d)
            }
        };
        if self.state.best_val.is_none_or(|bv| v < bv) {
            self.state.best_val = Some(v);
            self.state.best_epoch = self.state.epoch;
            self.best_params = Some(self.graph.read_params_async().await?);
            self.state.since_best = 0;
            return Ok(true);
        }
        self.state.since_best += 1;
        if patience > 0 && self.state.since_best >= patience {
            self.state.stopped = true;
        }
        Ok(false)
    }
}
