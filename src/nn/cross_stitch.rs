//! Cross-stitch networks (Misra et al., CVPR 2016): one column (an Mlp of the `trunk` sizes)
//! per task; after each layer the columns' activations are mixed by a learned T×T matrix,
//! `ỹ_t = Σ_s α[t, s] y_s`, initialised to 0.9 on the diagonal and 0.1/(T−1) elsewhere (the
//! paper's choice; 1 for a single task), and task t's next layer (or head) reads ỹ_t.
//!
//! Names: `columns.{task}.{i}.weight` / `.bias`, `stitch.{i}` (`[T, T]`, row t mixing into
//! task t). Every column and stitch unit is shared (each task's loss reaches all of them
//! through the stitches); the last stitched activations, side by side, are the shared
//! representation.

use super::model::{head, ModelSpec, MultiTaskModel};
use super::Mlp;
use crate::error::Result;
use crate::ir::{Graph, Init};

pub(crate) fn build(spec: &ModelSpec, batch: usize) -> Result<MultiTaskModel> {
    let t_n = spec.tasks.len();
    let mut g = Graph::new();
    let x = super::model::input(&mut g, spec, batch)?;
    let mut sizes = vec![spec.width()];
    sizes.extend(&spec.trunk);
    let columns: Vec<Mlp> = spec
        .tasks
        .iter()
        .map(|t| Mlp::new(&mut g, &format!("columns.{}", t.name), &sizes, spec.activation, true))
        .collect();
    let (diag, off) = if t_n > 1 { (0.9, 0.1 / (t_n - 1) as f32) } else { (1.0, 0.0) };
    let stitches: Vec<_> = (0..spec.trunk.len())
        .map(|i| g.param(&format!("stitch.{i}"), &[t_n, t_n], Init::Diagonal { diag, off }))
        .collect();
    let trunk_params = g.params.len();
    let mut inputs = vec![x; t_n];
    let mut z = x;
    for (i, &width) in spec.trunk.iter().enumerate() {
        let outs: Vec<_> = (0..t_n)
            .map(|t| columns[t].layers[i].forward(&mut g, inputs[t], spec.activation))
            .collect::<Result<_>>()?;
        let mut cat = outs[0];
        for &o in &outs[1..] {
            cat = g.concat(cat, o)?;
        }
        z = g.stitch(cat, stitches[i])?;
        if i + 1 < spec.trunk.len() {
            inputs = (0..t_n).map(|t| g.slice(z, t * width, width)).collect::<Result<_>>()?;
        }
    }
    // Each task's slice of the last stitched activations is created after z: its own.
    let width = spec.representation();
    let mut logits = Vec::new();
    let mut losses = Vec::new();
    for t in 0..t_n {
        let rep = g.slice(z, t * width, width)?;
        let (out, loss) = head(&mut g, spec, t, rep, batch, &logits)?;
        logits.push(out);
        losses.push(loss);
    }
    Ok(MultiTaskModel { spec: spec.clone(), graph: g, batch, x, z, logits, losses, trunk_params })
}
