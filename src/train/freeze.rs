//! Which parameters `[train] freeze` names.

use crate::error::{Error, Result};
use crate::mtl::TaskDef;

/// Which parameters `freeze` names: "trunk", a task's name (its head), or a parameter-name
/// prefix ("heads.cooling", "trunk.0"). A name that matches nothing is an error.
pub fn frozen_params(graph: &crate::ir::Graph, tasks: &[TaskDef], freeze: &[String]) -> Result<Vec<bool>> {
    let mut frozen = vec![false; graph.params.len()];
    for f in freeze {
        let prefix = if tasks.iter().any(|t| &t.name == f) { format!("heads.{f}.") } else { format!("{f}.") };
        let mut hit = false;
        for (i, p) in graph.params.iter().enumerate() {
            if p.name.starts_with(&prefix) || &p.name == f {
                frozen[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Err(Error::invalid(
                "train.freeze",
                format!("{f:?} names no parameter (use trunk, a task name, or a parameter prefix)"),
            ));
        }
    }
    Ok(frozen)
}
