//! Embedding lookups (`embedding.wgsl`): the gather of table rows and its deterministic
//! gradient, summed through the inverse index the host builds with each batch
//! ([`crate::cpu::embed_inverse`]).

use super::{check_len, grid_1d};
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, KernelCall, Tensor};
use crate::shaders::Shader;

fn as_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape("embedding", format!("{v} values: more than a u32 counts")))
}

/// `y[r, :] = table[ids[r], :]`: `table` `[V, D]`, `ids` `[B]`, `y` `[B, D]`.
pub fn embed_gather(ctx: &Context, table: &Tensor, ids: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let (v, d) = table.dims2();
    let b = ids.len();
    if v == 0 || d == 0 {
        return Err(Error::shape("embed_gather", format!("table {:?}", table.shape())));
    }
    check_len("embed_gather", "y", y, b * d)?;
    let n = b * d;
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Embedding, "gather", &[])
        .params([as_u32(n)?, as_u32(d)?, as_u32(v)?, 0], [0.0; 4])
        .bind(table)
        .bind(ids)
        .bind_at(4, y)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}

/// `dtable[v, :] (+)= Σ dy[order[j], :]` for j in `offsets[v]..offsets[v + 1]`: `dy` `[B, D]`,
/// `offsets` `[V + 1]`, `order` `[B]`, `dtable` `[V, D]`.
pub fn embed_scatter(
    ctx: &Context,
    dy: &Tensor,
    offsets: &Tensor,
    order: &Tensor,
    dtable: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let (v, d) = dtable.dims2();
    check_len("embed_scatter", "offsets", offsets, v + 1)?;
    check_len("embed_scatter", "dy", dy, order.len() * d)?;
    let n = v * d;
    let g = grid_1d(n, ctx.adapter().max_workgroups_per_dimension);
    KernelCall::new(Shader::Embedding, "scatter", &[("ACCUMULATE", f64::from(u8::from(accumulate)))])
        .params([as_u32(n)?, as_u32(d)?, 0, 0], [0.0; 4])
        .bind(dy)
        .bind(offsets)
        .bind(order)
        .bind(dtable)
        .groups(g[0], g[1], g[2])
        .build(ctx)
}
