//! G products side by side in one dispatch (`grouped.wgsl`): the deeper layers of a bank of
//! experts, and their gradients.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{Context, Dispatch, KernelCall, Tensor};
use crate::ir::{Activation, GroupedLayout, MatmulShape};
use crate::shaders::Shader;

/// `C_g (+)= act(op(A_g)·op(B_g) + bias_g)` for g < `groups`, each operand kept as `layout`
/// says ([`GroupedLayout`]), `s` the shape of one group's product, `bias` of length G·N. The
/// CPU reference is [`crate::cpu::grouped_matmul`].
#[allow(clippy::too_many_arguments)]
pub fn grouped_matmul(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    s: MatmulShape,
    groups: usize,
    layout: GroupedLayout,
    act: Activation,
    accumulate: bool,
) -> Result<Dispatch> {
    act.check()?;
    let MatmulShape { m, n, k } = s;
    if groups == 0 || m == 0 || n == 0 || k == 0 {
        return Err(Error::shape("grouped_matmul", format!("{groups} groups of {m}x{n}x{k}")));
    }
    check_len("grouped_matmul", "a", a, groups * m * k)?;
    check_len("grouped_matmul", "b", b, groups * k * n)?;
    check_len("grouped_matmul", "c", c, groups * m * n)?;
    if let Some(bias) = bias {
        check_len("grouped_matmul", "bias", bias, groups * n)?;
    }
    let max = ctx.adapter().max_workgroups_per_dimension as usize;
    let (gx, gy) = (n.div_ceil(32), m.div_ceil(32));
    if gx > max || gy > max || groups > max {
        return Err(Error::shape("grouped_matmul", format!("{groups} groups of {m}x{n}: more workgroups than {max}")));
    }
    let as_u32 =
        |v: usize| u32::try_from(v).map_err(|_| Error::shape("grouped_matmul", format!("dimension {v} past u32")));
    let flag = |b: bool| f64::from(u8::from(b));
    // Four floats at a time where every run an operand is read in starts at a multiple of
    // four (see grouped.wgsl): its contiguous dimension is.
    let vec_a = if layout.trans_a { m % 4 == 0 } else { k % 4 == 0 };
    let vec_b = if layout.trans_b { k % 4 == 0 } else { n % 4 == 0 };
    let vec = vec_a && vec_b && [a, b].iter().all(|t| t.offset_bytes() % 16 == 0);
    let constants = [
        ("TRANS_A", flag(layout.trans_a)),
        ("TRANS_B", flag(layout.trans_b)),
        ("A_STACKED", flag(layout.a_stacked)),
        ("B_STACKED", flag(layout.b_stacked)),
        ("C_STACKED", flag(layout.c_stacked)),
        ("HAS_BIAS", flag(bias.is_some())),
        ("ACCUMULATE", flag(accumulate)),
        ("ACT", f64::from(act.code())),
        ("VEC_A", flag(vec)),
        ("VEC_B", flag(vec)),
    ];
    let dummy = ctx.dummy()?;
    KernelCall::new(Shader::Grouped, "grouped", &constants)
        .params([as_u32(m)?, as_u32(n)?, as_u32(k)?, as_u32(groups)?], [act.slope(), 0.0, 0.0, 0.0])
        .bind(a)
        .bind(b)
        .bind(bias.unwrap_or(&dummy))
        .bind(c)
        .bind(if vec { a } else { &dummy })
        .bind(if vec { b } else { &dummy })
        .groups(gx as u32, gy as u32, groups as u32)
        .build(ctx)
}
