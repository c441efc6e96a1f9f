//! Matmuls that a long run would repay compiling with a larger block: the compiler builds
//! each with the block its size gets at once and records the larger form as a job, which the
//! runtime compiles in the background ([`crate::runtime::Upgrader`]).

use std::sync::{Arc, OnceLock};

use crate::error::Result;
use crate::gpu::{Context, Dispatch, MatmulVariant, Tensor};
use crate::ir::{Activation, MatmulShape};
use crate::kernels::{self, MatmulSpec};

/// A matmul of the step to build again with its long-run block
/// ([`kernels::steady_register_tiles`]); `slot` is the step's dispatch's upgrade.
pub struct UpgradeJob {
    a: Tensor,
    b: Tensor,
    bias: Option<Tensor>,
    c: Tensor,
    spec: MatmulSpec,
    /// The activation gradient it applies: activation, saved tensor, from the output.
    grad: Option<(Activation, Tensor, bool)>,
    slot: Arc<OnceLock<Dispatch>>,
}

impl UpgradeJob {
    /// Builds the larger form and puts it in place. A failure leaves the quick form, which
    /// computes the same values.
    pub fn build(&self, ctx: &Context) {
        let grad = self.grad.as_ref().map(|(act, saved, from_output)| kernels::ActGrad {
            act: *act,
            saved,
            from_output: *from_output,
        });
        if let Ok(d) = kernels::matmul_with(ctx, &self.a, &self.b, self.bias.as_ref(), &self.c, &self.spec, grad) {
            let _ = self.slot.set(d);
        }
    }
}

/// [`kernels::matmul`] with the block its size gets at once, and, where a long run would
/// repay a larger block's compile time, an upgrade job in `jobs`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_upgradable(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: &MatmulSpec,
    grad: Option<kernels::ActGrad<'_>>,
    jobs: &mut Vec<UpgradeJob>,
) -> Result<Dispatch> {
    let mut d = kernels::matmul_with(ctx, a, b, bias, c, spec, grad)?;
    let variant = spec.variant.unwrap_or_else(|| ctx.matmul_variant());
    if let (None, MatmulVariant::Registers { wg_x, wg_y }) = (spec.tiles, variant) {
        let s = MatmulShape::infer(a.dims2(), b.dims2(), spec.trans_a, spec.trans_b)?;
        let wg = (wg_x * wg_y) as usize;
        let steady = kernels::steady_register_tiles(s.m, s.n, wg);
        if steady != kernels::register_tiles(s.m, s.n, s.k, wg) {
            let slot = Arc::new(OnceLock::new());
            d.upgrade = Some(slot.clone());
            jobs.push(UpgradeJob {
                a: a.clone(),
                b: b.clone(),
                bias: bias.cloned(),
                c: c.clone(),
                spec: MatmulSpec { tiles: Some(steady), ..*spec },
                grad: grad.map(|g| (g.act, g.saved.clone(), g.from_output)),
                slot,
            });
        }
    }
    Ok(d)
}
