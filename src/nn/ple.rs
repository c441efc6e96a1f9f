//! Customized gate control (CGC) and progressive layered extraction (PLE), Tang et al.,
//! RecSys 2020. Each level has `shared_experts` experts on the shared branch and, per task,
//! `task_experts` on that task's branch. Task t's gate, on its branch's input, mixes its own
//! experts and the shared ones; below the last level, a shared gate on the shared branch's
//! input mixes every expert of the level into the next level's shared input, and each task's
//! mixture is its branch's next input. CGC is PLE with one level.
//!
//! Names: `levels.{l}.shared.{e}.{i}.*`, `levels.{l}.tasks.{task}.{e}.{i}.*`,
//! `levels.{l}.gates.{task}.*` (`[experts it mixes, inputs]`), `levels.{l}.gates.shared.*`.
//!
//! The shared parameters (first) are every level's shared experts and shared gates. The shared
//! representation is the last level's shared experts' outputs side by side: gradient methods
//! take each task's gradient there (`target = "representation"`); with one level, also of the
//! shared parameters (`target = "params"`). Below the last level the tasks' branches feed the
//! shared gate, so per-task gradients of lower shared parameters are not separable there and
//! `target = "params"` is refused for PLE of more than one level.

use super::model::{head, Arch, ModelSpec, MultiTaskModel};
use super::{concat_all, Experts, Linear};
use crate::error::Result;
use crate::ir::{Activation, Graph, NodeId};

pub(crate) fn build(spec: &ModelSpec, batch: usize) -> Result<MultiTaskModel> {
    let levels = if spec.arch == Arch::Cgc { 1 } else { spec.levels };
    let (s_n, k_n, t_n) = (spec.shared_experts, spec.task_experts, spec.tasks.len());
    let d = spec.representation();
    let mut g = Graph::new();
    let x = super::model::input(&mut g, spec, batch)?;
    let bank = |g: &mut Graph, name: String, count: usize, width: usize| {
        let mut sizes = vec![width];
        sizes.extend(&spec.expert);
        Experts::new(g, |e| format!("{name}.{e}"), count, &sizes, spec.activation)
    };
    // Shared parameters first: every level's shared experts and shared gates.
    let mut shared: Vec<Experts> = Vec::new();
    let mut shared_gates: Vec<Option<Linear>> = Vec::new();
    for l in 0..levels {
        let width = if l == 0 { spec.width() } else { d };
        shared.push(bank(&mut g, format!("levels.{l}.shared"), s_n, width));
        shared_gates.push(
            (l + 1 < levels).then(|| Linear::new(&mut g, &format!("levels.{l}.gates.shared"), width, t_n * k_n + s_n)),
        );
    }
    let trunk_params = g.params.len();
    let mut tasks_experts: Vec<Vec<Experts>> = Vec::new(); // [level][task]
    let mut task_gates: Vec<Vec<Linear>> = Vec::new();
    for l in 0..levels {
        let width = if l == 0 { spec.width() } else { d };
        let per_task =
            spec.tasks.iter().map(|t| bank(&mut g, format!("levels.{l}.tasks.{}", t.name), k_n, width)).collect();
        tasks_experts.push(per_task);
        task_gates.push(
            spec.tasks
                .iter()
                .map(|t| Linear::new(&mut g, &format!("levels.{l}.gates.{}", t.name), width, k_n + s_n))
                .collect(),
        );
    }
    let (mut shared_in, mut task_in) = (x, vec![x; t_n]);
    let mut z = x;
    for l in 0..levels {
        let s_cat = shared[l].forward(&mut g, shared_in)?;
        // The last level's shared outputs are the shared representation: built before any
        // task's node of that level, so each task's use of them is its own.
        if l + 1 == levels {
            z = s_cat.unwrap_or(x);
        }
        let mut t_out: Vec<Option<NodeId>> = Vec::new();
        for t in 0..t_n {
            t_out.push(tasks_experts[l][t].forward(&mut g, task_in[t])?);
        }
        let mut next = Vec::new();
        for t in 0..t_n {
            // The task's own experts, then the shared ones.
            let parts: Vec<NodeId> = t_out[t].iter().chain(&s_cat).copied().collect();
            let blocks = concat_all(&mut g, &parts)?;
            let logits = task_gates[l][t].forward(&mut g, task_in[t], Activation::Identity)?;
            let gt = g.softmax(logits)?;
            next.push(g.mix(gt, blocks)?);
        }
        if let Some(sg) = shared_gates[l] {
            let all: Vec<NodeId> = t_out.iter().flatten().chain(&s_cat).copied().collect();
            let blocks = concat_all(&mut g, &all)?;
            let logits = sg.forward(&mut g, shared_in, Activation::Identity)?;
            let gs = g.softmax(logits)?;
            shared_in = g.mix(gs, blocks)?;
        }
        task_in = next;
    }
    let mut logits = Vec::new();
    let mut losses = Vec::new();
    for (t, &rep) in task_in.iter().enumerate() {
        let (out, loss) = head(&mut g, spec, t, rep, batch, &logits)?;
        logits.push(out);
        losses.push(loss);
    }
    Ok(MultiTaskModel { spec: spec.clone(), graph: g, batch, x, z, logits, losses, trunk_params })
}
