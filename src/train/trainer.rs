//! The training loop and its state: one recorded GPU step per batch, as the weighting method
//! wants it, evaluation after each epoch, early stopping, exact snapshots.

use std::sync::Arc;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Context;
use crate::mtl::gpu::TaskGradSpec;
use crate::mtl::metrics::Metrics;
use crate::mtl::weighting::{Gram, Method, Target, Weighter};
use crate::mtl::TaskDef;
use crate::nn::{ModelSpec, MultiTaskModel, TaskSpec};
use crate::rng::shuffle;
use crate::rng::Rng;
use crate::runtime::GpuGraph;

use super::evaluator::Params;
use super::setup;
use super::{
    frozen_params, gather, EvalRecord, Evaluator, Scaling, Splits, TrainReport, TrainSettings, UPGRADE_AFTER_STEPS,
};

/// Trains a multi-task model on the GPU.
pub struct Trainer {
    pub(super) ctx: Arc<Context>,
    pub(super) tasks: Vec<TaskDef>,
    model: MultiTaskModel,
    pub(super) graph: GpuGraph,
    pub(super) evaluator: Evaluator,
    pub(super) settings: TrainSettings,
    scaling: Scaling,
    /// The loss weights in the GPU's weights buffer.
    pub(super) weights: Vec<f32>,
    /// A gradient method's last combination coefficients (reported, never loss weights).
    pub(super) coefficients: Option<Vec<f32>>,
    pub(super) weighter: Weighter,
    pub(super) state: LoopState,
    pub(super) best_params: Option<Vec<Vec<f32>>>,
    /// Per task, the single-task baselines' validation metrics: when set, the kept epoch is the
    /// one of the best validation Δm% against them (LibMTL's choice), not of the lowest
    /// validation loss.
    pub(super) select_delta_m: Option<Vec<Metrics>>,
    /// Set from anywhere (another thread, a callback) to end the run at the next step: the
    /// epoch so far is evaluated and the report returned as after early stopping.
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Data-parallel training: this rank's collective (see [`Trainer::distributed`]).
    pub(super) dist: Option<super::distributed::Dist>,
    /// The rows the training graph takes: the batch, or a rank's largest share of it.
    pub(super) graph_batch: usize,
}

/// Where the training loop stands: enough to continue a run exactly.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches done in the current epoch.
    pub pos: usize,
    /// The current epoch's row order (shuffled in place each epoch).
    pub order: Vec<usize>,
    /// The shuffling generator's state.
    pub rng: u64,
    /// Optimizer steps done.
    pub step: usize,
    /// Best validation loss so far.
    pub best_val: Option<f64>,
    /// Its epoch.
    pub best_epoch: usize,
    /// Evaluations since it.
    pub since_best: usize,
    /// Early stopping triggered.
    pub stopped: bool,
    /// The lookahead affinity measured so far (with `affinity_every`).
    #[serde(default)]
    pub affinity: Option<crate::mtl::affinity::Affinity>,
}

impl Trainer {
    /// A trainer for `spec` (its tasks must match `tasks`) with equal task weights, with
    /// parameters from `init` or, when None, initialised from the seed.
    pub fn new(
        ctx: Arc<Context>,
        spec: &ModelSpec,
        tasks: &[TaskDef],
        settings: TrainSettings,
        scaling: Scaling,
        init: Option<Vec<Vec<f32>>>,
    ) -> Result<Trainer> {
        let w = Weighter::new(Method::Ew, Target::Representation, &vec![1.0; tasks.len()], settings.seed);
        Self::with_weighting(ctx, spec, tasks, settings, scaling, init, w)
    }

    /// A trainer with a weighting method. `init` may omit the weighting's own parameters
    /// (uw's `weighting.log_var`), which then start at their defaults.
    pub fn with_weighting(
        ctx: Arc<Context>,
        spec: &ModelSpec,
        tasks: &[TaskDef],
        settings: TrainSettings,
        scaling: Scaling,
        init: Option<Vec<Vec<f32>>>,
        weighter: Weighter,
    ) -> Result<Trainer> {
        Self::build(ctx, spec, tasks, settings, scaling, init, weighter, None)
    }

    /// A trainer that is one rank of data-parallel training over `collective`: the settings'
    /// `batch_size` is the global batch, of which this rank takes its contiguous share every
    /// step; the ranks' gradients are summed before each update, so every rank holds the same
    /// parameters. Every rank must build its trainer from the same data, settings and seed.
    #[allow(clippy::too_many_arguments)]
    pub fn distributed(
        ctx: Arc<Context>,
        spec: &ModelSpec,
        tasks: &[TaskDef],
        settings: TrainSettings,
        scaling: Scaling,
        init: Option<Vec<Vec<f32>>>,
        weighter: Weighter,
        collective: Box<dyn crate::dist::Collective>,
    ) -> Result<Trainer> {
        super::distributed::check_method(&weighter)?;
        if settings.affinity_every > 0 {
            return Err(Error::invalid("train.affinity_every", "the affinity probes do not run data-parallel"));
        }
        let d = super::distributed::Dist::new(collective);
        let tr = Self::build(ctx, spec, tasks, settings, scaling, init, weighter, Some(d))?;
        // UW's constant term once over the ranks.
        tr.graph.set_uw_share(if tr.rank().0 == 0 { 1.0 } else { 0.0 })?;
        Ok(tr)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        ctx: Arc<Context>,
        spec: &ModelSpec,
        tasks: &[TaskDef],
        settings: TrainSettings,
        scaling: Scaling,
        init: Option<Vec<Vec<f32>>>,
        weighter: Weighter,
        dist: Option<super::distributed::Dist>,
    ) -> Result<Trainer> {
        for t in tasks {
            t.check()?;
        }
        // GradNorm's logits are the model's parameters in LibMTL: they take its optimizer's steps.
        let weighter = weighter.with_optimizer(settings.optimizer);
        if settings.batch_size == 0 {
            return Err(Error::invalid("train.batch_size", "must be at least 1"));
        }
        let graph_batch = match &dist {
            Some(d) => crate::dist::local_batch(settings.batch_size, d.coll.size()),
            None => settings.batch_size,
        };
        let mut model = MultiTaskModel::build(spec, graph_batch)?;
        model.graph.check_sizes()?;
        let t = tasks.len();
        let loss_weighting = setup::loss_weighting(&mut model, &weighter.method, t);
        let seeded = model.graph.init_params(settings.seed)?;
        let init = match init {
            None => seeded,
            Some(mut p) => {
                p.extend(seeded[p.len().min(seeded.len())..].iter().cloned());
                p
            }
        };
        setup::check_weighting(spec, &model, &weighter)?;
        let tspec = TaskGradSpec {
            z: model.z,
            shared_params: model.trunk_params,
            target: weighter.target,
            loss_weighting,
            max_grad_norm: settings.max_grad_norm,
            state: weighter.method.slot_state(),
            affinity_lr: (settings.affinity_every > 0).then(|| settings.optimizer.lr()),
        };
        let mut graph = GpuGraph::multi_task(ctx.clone(), model.graph.clone(), &init, Some(settings.optimizer), tspec)?;
        if !settings.freeze.is_empty() {
            graph.freeze(&frozen_params(&model.graph, tasks, &settings.freeze)?)?;
        }
        let weights: Vec<f32> = weighter.initial_weights().iter().map(|&w| w as f32).collect();
        graph.set_task_weights(&weights)?;
        let evaluator = Evaluator::new(ctx.clone(), spec, tasks, scaling.clone());
        Ok(Trainer {
            ctx,
            tasks: tasks.to_vec(),
            model,
            graph,
            evaluator,
            settings,
            scaling,
            weights,
            coefficients: None,
            weighter,
            state: LoopState::default(),
            best_params: None,
            select_delta_m: None,
            stop: Arc::default(),
            dist,
            graph_batch,
        })
    }

    /// The model spec of a task list: one head per task.
    pub fn spec_for(
        inputs: usize,
        trunk: &[usize],
        head: &[usize],
        activation: crate::Activation,
        tasks: &[TaskDef],
    ) -> ModelSpec {
        let specs = tasks.iter().map(|t| TaskSpec { name: t.name.clone(), loss: t.loss }).collect();
        let mut spec = ModelSpec::hard_sharing(inputs, trunk, head, activation, specs);
        let index = |n: &String| tasks.iter().position(|t| &t.name == n);
        spec.products = tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.product_of.as_slice() {
                [a, b] => Some((i, [index(a)?, index(b)?])),
                _ => None,
            })
            .collect();
        spec
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The compiled training graph (parameters, optimizer state).
    pub fn graph(&self) -> &GpuGraph {
        &self.graph
    }

    /// The compiled training graph, mutably (to restore optimizer state).
    pub fn graph_mut(&mut self) -> &mut GpuGraph {
        &mut self.graph
    }

    /// The model.
    pub fn model(&self) -> &MultiTaskModel {
        &self.model
    }

    /// The scaling in use.
    pub fn scaling(&self) -> &Scaling {
        &self.scaling
    }

    /// Sets the task weights w_t of Σ_t w_t·L_t.
    pub fn set_weights(&mut self, w: &[f32]) -> Result<()> {
        if w.len() != self.tasks.len() {
            return Err(Error::shape("weights", format!("{} weights for {} tasks", w.len(), self.tasks.len())));
        }
        self.graph.set_task_weights(w)?;
        self.weights = w.to_vec();
        Ok(())
    }

    /// Current parameters (one readback).
    pub fn params(&self) -> Result<Vec<Vec<f32>>> {
        crate::gpu::wait::block("training", self.params_async())
    }

    /// [`Trainer::params`] as a future: the form a browser page uses.
    pub async fn params_async(&self) -> Result<Vec<Vec<f32>>> {
        self.graph.read_params_async().await
    }

    /// Per task, the loss (scaled units) and metrics (original units) on `d` (already scaled),
    /// with the current parameters.
    pub fn evaluate(&mut self, d: &Dataset) -> Result<(Vec<f64>, Vec<Metrics>)> {
        crate::gpu::wait::block("training", self.evaluate_async(d))
    }

    /// [`Trainer::evaluate`] as a future: the form a browser page uses.
    pub async fn evaluate_async(&mut self, d: &Dataset) -> Result<(Vec<f64>, Vec<Metrics>)> {
        if d.rows() == 0 {
            return Ok((vec![], vec![]));
        }
        // The evaluation graphs read the trainer's parameter store: only the guard's
        // verdict comes back, not the parameters.
        self.fail_if_diverged(self.graph.divergence_async().await?)?;
        let (losses, mets) = self.evaluator.evaluate_async(Params::Store(self.graph.store()), d).await?;
        if let Some((t, &l)) = losses.iter().enumerate().find(|(_, l)| !l.is_finite()) {
            self.fail_if_diverged(Some((self.graph.steps(), t, l as f32)))?;
        }
        Ok((losses, mets))
    }

    /// One optimizer step on the fed batch, as the weighting method wants it.
    pub(super) async fn train_step(&mut self) -> Result<()> {
        let gradient_method = self.weighter.method.uses_gradients();
        if !gradient_method {
            if let Some(w) = self.weighter.step_weights() {
                let w: Vec<f32> = w.iter().map(|&x| x as f32).collect();
                self.set_weights(&w)?;
            }
        }
        if self.dist.is_some() {
            self.sum_partials(gradient_method).await?;
        } else if gradient_method {
            self.graph.gram_phase()?;
        }
        if gradient_method {
            let read = self.graph.read_gram_and_stats_async().await?;
            let (m, l, stats) = (read.gram, read.losses, read.stats);
            let t = self.tasks.len();
            let gram = Gram::new(self.graph.gram_rows()?, m.iter().map(|&v| f64::from(v)).collect());
            let losses: Vec<f64> = l.iter().map(|&v| f64::from(v)).collect();
            // The step's losses came back with the Gram matrix: a non-finite one stops the run
            // before the update, as the guard would after it.
            if let Some((i, &v)) = losses.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                self.fail_if_diverged(Some((self.graph.steps() + 1, i, v as f32)))?;
            }
            if let Method::GradDrop { leak } = self.weighter.method {
                let seed = self.weighter.next_seed();
                self.graph.apply_graddrop(seed, leak as f32)?;
                self.coefficients = Some(vec![1.0; t]);
            } else {
                let lr = f64::from(self.settings.optimizer.lr());
                let stats: Option<Vec<f64>> = stats.map(|s| s.iter().map(|&v| f64::from(v)).collect());
                let plan = self.weighter.plan(&gram, &losses, lr, stats.as_deref())?;
                let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                let (mix, heads) = (plan.mix.as_deref().map(f32s), plan.heads.as_deref().map(f32s));
                self.graph.apply_plan(&f32s(&plan.coef), mix.as_deref(), heads.as_deref())?;
                self.coefficients = Some(f32s(&plan.weights));
            }
            return Ok(());
        }
        match self.dist {
            Some(_) => self.graph.update_phase(),
            None => self.graph.step(),
        }
    }

    /// Fails with [`Error::Diverged`] when the guard saw a non-finite loss or parameter.
    pub fn check_divergence(&self) -> Result<()> {
        crate::gpu::wait::block("training", self.check_divergence_async())
    }

    /// [`Trainer::check_divergence`] as a future: the form a browser page uses.
    pub async fn check_divergence_async(&self) -> Result<()> {
        self.fail_if_diverged(self.graph.divergence_async().await?)
    }

    pub(super) fn fail_if_diverged(&self, verdict: Option<(u64, usize, f32)>) -> Result<()> {
        if let Some((step, task, value)) = verdict {
            let what = match self.tasks.get(task) {
                Some(t) => format!("task {:?}'s loss", t.name),
                None => "a parameter".to_string(),
            };
            return Err(Error::Diverged { step, what, value });
        }
        Ok(())
    }

    /// The weighting method and its state.
    pub fn weighter(&self) -> &Weighter {
        &self.weighter
    }

    /// Trains on `splits`, calling `on_eval` after each evaluation.
    pub fn fit(&mut self, splits: &Splits, on_eval: &mut dyn FnMut(&EvalRecord)) -> Result<TrainReport> {
        crate::gpu::wait::block("training", self.fit_async(splits, on_eval))
    }

    /// [`Trainer::fit`] as a future: the form a browser page uses. The page's event loop runs
    /// at every readback (each evaluation, and each step of a gradient method).
    pub async fn fit_async(&mut self, splits: &Splits, on_eval: &mut dyn FnMut(&EvalRecord)) -> Result<TrainReport> {
        self.fit_with_checkpoints_async(splits, on_eval, 0, &mut |_| Ok(())).await
    }

    /// Like [`Trainer::fit`], calling `on_checkpoint` every `every` optimizer steps (0: never)
    /// with the trainer, whose [`Trainer::snapshot`] then resumes exactly. Continues from the
    /// loop state a [`Trainer::restore`] put in place.
    pub fn fit_with_checkpoints(
        &mut self,
        splits: &Splits,
        on_eval: &mut dyn FnMut(&EvalRecord),
        every: u64,
        on_checkpoint: &mut dyn FnMut(&Trainer) -> Result<()>,
    ) -> Result<TrainReport> {
        crate::gpu::wait::block("training", self.fit_with_checkpoints_async(splits, on_eval, every, on_checkpoint))
    }

    /// [`Trainer::fit_with_checkpoints`] as a future.
    pub async fn fit_with_checkpoints_async(
        &mut self,
        splits: &Splits,
        on_eval: &mut dyn FnMut(&EvalRecord),
        every: u64,
        on_checkpoint: &mut dyn FnMut(&Trainer) -> Result<()>,
    ) -> Result<TrainReport> {
        let s = self.settings.clone();
        let n = splits.train.rows();
        if n == 0 {
            return Err(Error::invalid("data", "the training split has no rows"));
        }
        for d in [&splits.train, &splits.val, &splits.test] {
            d.check_labels(&self.tasks)?;
        }
        let b = s.batch_size;
        let per_epoch = n.div_ceil(b);
        let total_steps = s.steps.unwrap_or(per_epoch * s.epochs);
        // A run this long repays compiling the step's larger-block matmuls, in the background.
        if total_steps >= UPGRADE_AFTER_STEPS {
            self.graph.start_upgrades();
        }
        if self.state.order.len() != n {
            self.state =
                LoopState { order: (0..n).collect(), rng: Rng::new(s.seed ^ 0x5EED).state(), ..Default::default() };
        }
        let mut history = Vec::new();
        let mut kept: Option<(usize, [Vec<Metrics>; 3])> = None;
        let stop_asked = |t: &Trainer| t.stop.load(std::sync::atomic::Ordering::Relaxed);
        while self.state.step < total_steps && !self.state.stopped && !stop_asked(self) {
            if let (Method::Stch { .. }, 0) = (self.weighter.method, self.state.pos) {
                // STCH's kernel reads the epoch: which phase it is in.
                self.graph.write_weighting_state_at(self.tasks.len() + 1, self.state.epoch as f32)?;
            }
            if s.shuffle && self.state.pos == 0 {
                let mut rng = Rng::from_state(self.state.rng);
                shuffle(&mut self.state.order, &mut rng);
                self.state.rng = rng.state();
            }
            let order = self.state.order.clone();
            for (k, chunk) in order.chunks(b).enumerate().skip(self.state.pos) {
                if self.state.step >= total_steps {
                    break;
                }
                let inputs = gather(&splits.train, self.rows_of(chunk), self.graph_batch)?;
                let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
                self.graph.feed(&refs)?;
                self.set_global_counts(&splits.train, chunk)?;
                if s.affinity_every > 0 && self.state.step % s.affinity_every == 0 {
                    self.probe_affinity().await?;
                }
                self.timed_step().await?;
                self.state.step += 1;
                self.state.pos = k + 1;
                if every > 0 && self.state.step as u64 % every == 0 {
                    on_checkpoint(self)?;
                }
                if stop_asked(self) {
                    break;
                }
            }
            self.state.pos = 0;
            self.state.epoch += 1;
            let first: Vec<usize> = order.iter().copied().take(self.graph_batch).collect();
            let (rec, epoch_metrics) = self.evaluate_epoch(splits, &first).await?;
            on_eval(&rec);
            let kept_now = self.keeps(&rec, s.patience).await?;
            if self.agree_on_epoch(kept_now).await? {
                kept = Some((rec.epoch, epoch_metrics));
            }
            history.push(rec);
        }
        self.finish(splits, history, kept).await
    }

    /// A handle that ends the run at the next step when set (Ctrl-C, a callback): the epoch so
    /// far is evaluated and the report returned, with the kept parameters in place.
    pub fn stop_handle(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.stop.clone()
    }

    /// Where the training loop stands.
    pub fn loop_state(&self) -> &LoopState {
        &self.state
    }

    /// The graph's parameter names and shapes, in order.
    pub fn param_names(&self) -> Vec<(String, Vec<usize>)> {
        self.model.graph.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect()
    }
}
