//! Benchmarks of the kernels the architectures and categorical inputs added: a bank of
//! experts' grouped product (against one matmul per expert), embedding lookups and their
//! gradient, the product logit.

use super::{dims, record, time_kernels, BenchRecord};
use crate::error::Result;
use crate::gpu::{Context, Dispatch};
use crate::ir::Activation;
use crate::kernels::{self, MatmulSpec};
use crate::rng::Rng;

/// The deeper layers of a bank of experts: `groups` products of m×k by k×n in one grouped
/// dispatch, in `layout` (see [`crate::ir::GroupedLayout`]); and, for comparison, the same
/// products as `groups` separate matmul dispatches (the forward layout only).
pub fn bench_grouped(
    ctx: &Context,
    groups: usize,
    (m, n, k): (usize, usize, usize),
    layout: crate::ir::GroupedLayout,
    budget_s: f64,
) -> Result<Vec<BenchRecord>> {
    use crate::ir::{GroupedLayout, MatmulShape};
    let mut rng = Rng::new(2);
    let a = ctx.upload(&rng.vec_f32(groups * m * k, -1.0, 1.0), &[groups * m * k])?;
    let b = ctx.upload(&rng.vec_f32(groups * k * n, -1.0, 1.0), &[groups * k * n])?;
    let c = ctx.empty(&[groups * m * n])?;
    let s = MatmulShape { m, n, k };
    let d = kernels::grouped_matmul(ctx, &a, &b, None, &c, s, groups, layout, Activation::Identity, false)?;
    let name = match layout {
        GroupedLayout::FORWARD => "forward",
        GroupedLayout::GRAD_INPUT => "grad_input",
        GroupedLayout::GRAD_WEIGHT => "grad_weight",
        _ => "other",
    };
    let flops = 2.0 * (groups * m * n * k) as f64;
    let rec = |bench: &str, ms: f64, timer: &'static str, how: &str| {
        let mut dm = dims(&[("groups", groups), ("m", m), ("n", n), ("k", k)]);
        dm.insert("layout".into(), name.into());
        dm.insert("as".into(), how.into());
        BenchRecord {
            bench: bench.into(),
            dims: dm,
            ms,
            gflops: Some(flops / (ms * 1e6)),
            gbps: None,
            timer,
            adapter: ctx.adapter().name.clone(),
        }
    };
    let (ms, timer) = time_kernels(ctx, &[&d], budget_s, 50)?;
    let mut out = vec![rec("grouped", ms, timer, "one dispatch")];
    if layout == GroupedLayout::FORWARD {
        let (a1, b1, c1) = (ctx.empty(&[m, k])?, ctx.empty(&[n, k])?, ctx.empty(&[m, n])?);
        let spec = MatmulSpec { trans_b: true, ..Default::default() };
        let one = kernels::matmul(ctx, &a1, &b1, None, &c1, &spec)?;
        let all: Vec<&Dispatch> = (0..groups).map(|_| &one).collect();
        let (ms, timer) = time_kernels(ctx, &all, budget_s, 50)?;
        out.push(rec("grouped", ms, timer, "matmul per group"));
    }
    Ok(out)
}

/// Embedding lookups (4096 ids into a table of 1000 rows of 16) and the table's gradient
/// through the inverse index; a product task's logits over 4096 rows.
pub(super) fn bench_categorical_kernels(ctx: &Context, rng: &mut Rng, budget_s: f64) -> Result<Vec<BenchRecord>> {
    let mut out = Vec::new();
    let (b, v, d) = (4096, 1000, 16);
    let ids: Vec<u32> = (0..b).map(|_| (rng.next_u64() % v as u64) as u32).collect();
    let (offsets, order) = crate::cpu::embed_inverse(&ids, v);
    let idf: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
    let table = ctx.upload(&rng.vec_f32(v * d, -1.0, 1.0), &[v, d])?;
    let (gi, go, gr) = (ctx.upload(&idf, &[b])?, ctx.upload(&offsets, &[v + 1])?, ctx.upload(&order, &[b])?);
    let (emb, demb, dtable) =
        (ctx.empty(&[b, d])?, ctx.upload(&rng.vec_f32(b * d, -1.0, 1.0), &[b, d])?, ctx.empty(&[v, d])?);
    let dm = || dims(&[("ids", b), ("rows", v), ("dim", d)]);
    let dsp = kernels::embed_gather(ctx, &table, &gi, &emb)?;
    out.push(record(ctx, "embed_gather", dm(), time_kernels(ctx, &[&dsp], budget_s, 100)?, 12.0 * (b * d) as f64));
    let dsp = kernels::embed_scatter(ctx, &demb, &go, &gr, &dtable, false)?;
    out.push(record(
        ctx,
        "embed_scatter",
        dm(),
        time_kernels(ctx, &[&dsp], budget_s, 100)?,
        8.0 * (b * d + v * d) as f64,
    ));
    let (la, lb, ly) = (
        ctx.upload(&rng.vec_f32(b, -4.0, 4.0), &[b])?,
        ctx.upload(&rng.vec_f32(b, -4.0, 4.0), &[b])?,
        ctx.empty(&[b])?,
    );
    let dsp = kernels::product_logit(ctx, &la, &lb, &ly)?;
    out.push(record(
        ctx,
        "product_logit",
        dims(&[("n", b)]),
        time_kernels(ctx, &[&dsp], budget_s, 100)?,
        12.0 * b as f64,
    ));
    Ok(out)
}
