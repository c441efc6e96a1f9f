//! Rust wrappers of the WGSL kernels. Each wrapper checks shapes, then returns a
//! [`Dispatch`](crate::gpu::Dispatch) that can be run once (`ctx.run(&[&d])`) or recorded
//! into a plan and replayed. A wrapper has the name of its WGSL entry point and of its CPU
//! reference in [`crate::cpu`].

mod elementwise;
mod embedding;
mod grouped;
mod loss;
mod matmul;
mod mixture;
mod optim;
mod product;
mod reduce;
mod weighting;

// The op vocabulary lives in the IR; re-exported here for callers of the kernels.
pub use crate::gpu::MatmulVariant;
pub use crate::ir::{Activation, GroupedLayout, LossKind, MatmulShape};
pub use elementwise::{act_backward, act_forward, add, axpy, copy_columns, fill, mul, scale, transpose};
pub use embedding::{embed_gather, embed_scatter};
pub use grouped::grouped_matmul;
pub use loss::{task_loss, task_loss_counted};
pub(crate) use matmul::matmul_with;
pub use matmul::{matmul, matmul_act_grad, register_tiles, steady_register_tiles, ActGrad, MatmulSpec, MIN_WORKGROUPS};
pub use mixture::{
    encode, encode_grad, mix, mix_grad_gate, mix_grad_x, softmax_rows, softmax_rows_backward, stitch, stitch_grad_alpha,
};
pub use optim::{adam, sgd, Clip};
pub use product::{product_logit, product_logit_grad};
pub use reduce::{check_finite, col_sum, dot, sq_norm, sum};
pub use weighting::{
    combine, excess_rows, famo, gls_weights, graddrop, graddrop_params, graddrop_uniform, gram, gram_block, imtl_grad,
    imtl_weights, lookahead, mix_rows, scale_task, stch, uw_grad, uw_grad_params, uw_weights,
};

/// Workgroup size of the 1-D kernels (elementwise.wgsl, reduce.wgsl).
pub(crate) const WG_1D: u32 = 256;

/// A 2-D grid covering `n` invocations in workgroups of [`WG_1D`], within `max` per dimension.
pub(crate) fn grid_1d(n: usize, max: u32) -> [u32; 3] {
    let groups = (n as u64).div_ceil(u64::from(WG_1D)).max(1);
    let x = groups.min(u64::from(max));
    let y = groups.div_ceil(x);
    [x as u32, y as u32, 1]
}

pub(crate) fn check_len(op: &'static str, what: &str, t: &crate::Tensor, n: usize) -> crate::Result<()> {
    if t.len() != n {
        return Err(crate::Error::shape(op, format!("{what} has {} elements, expected {n}", t.len())));
    }
    Ok(())
}
