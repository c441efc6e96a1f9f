//! A three-task model (regression, binary, 4 classes) on a small trunk, its inputs, and the
//! CPU's per-task gradients: the fixture of the gradient-method tests on the GPU.

use super::to64;
use hydra::autograd::cpu as gcpu;
use hydra::cpu::Rng;
use hydra::mtl::gpu::{GpuLossWeighting, SlotState, TaskGradSpec};
use hydra::mtl::weighting::Target;
use hydra::nn::{ModelSpec, MultiTaskModel, TaskSpec};
use hydra::{Activation, LossKind};

/// Heads with a hidden layer of 3 on a trunk of 17-9, or, `linear_heads`, linear heads on a
/// trunk of 17-64 (which the GPU runs as one product: their weights fit its alignment).
pub fn model_of(batch: usize, linear_heads: bool) -> (MultiTaskModel, Vec<Vec<f32>>) {
    let (trunk, head): (&[usize], &[usize]) = if linear_heads { (&[17, 64], &[]) } else { (&[17, 9], &[3]) };
    let tasks = vec![
        TaskSpec { name: "a".into(), loss: LossKind::Mse },
        TaskSpec { name: "b".into(), loss: LossKind::Bce },
        TaskSpec { name: "c".into(), loss: LossKind::CrossEntropy { classes: 4 } },
    ];
    let spec = ModelSpec::hard_sharing(5, trunk, head, Activation::Tanh, tasks);
    let m = MultiTaskModel::build(&spec, batch).unwrap();
    let mut rng = Rng::new(8);
    let mut inputs = vec![rng.vec_f32(batch * 5, -1.0, 1.0)];
    inputs.push(rng.vec_f32(batch, -1.0, 1.0));
    inputs.push(vec![1.0; batch]);
    inputs.push((0..batch).map(|_| rng.below(2) as f32).collect());
    inputs.push(vec![1.0; batch]);
    inputs.push((0..batch).map(|_| rng.below(4) as f32).collect());
    inputs.push((0..batch).map(|i| if i % 4 == 1 { 0.0 } else { 1.0 }).collect());
    (m, inputs)
}

pub fn model(batch: usize) -> (MultiTaskModel, Vec<Vec<f32>>) {
    model_of(batch, false)
}

/// The CPU's per-task gradient of the shared parameters (flattened in graph order) and at z.
pub fn cpu_task_grads(m: &MultiTaskModel, init: &[Vec<f32>], inputs: &[Vec<f32>], t: usize) -> (Vec<f64>, Vec<f64>) {
    let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
    let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
    let mut w = vec![0.0; 3];
    w[t] = 1.0;
    let run = gcpu::run(&m.graph, &p64, &i64, &w, true).unwrap();
    let pg = run.param_grads(&m.graph);
    (pg[..m.trunk_params].concat(), run.grads[m.z.0].clone())
}

/// The model's per-task gradient spec on `target`: host weights, no clipping, no state rows, no
/// affinity probe (tests change what they test with struct update syntax).
pub fn spec(m: &MultiTaskModel, target: Target) -> TaskGradSpec {
    TaskGradSpec {
        z: m.z,
        shared_params: m.trunk_params,
        target,
        loss_weighting: GpuLossWeighting::Host,
        max_grad_norm: None,
        state: SlotState::None,
        affinity_lr: None,
    }
}
