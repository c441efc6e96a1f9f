//! `hydra info`: the adapter, its limits and the matmul form in use, and a self-check of a
//! product against the CPU reference.

use crate::cpu::{self, Rng};
use crate::error::Result;
use crate::gpu::Context;
use crate::ir::{Activation, MatmulShape};
use crate::kernels::{self, MatmulSpec};

/// Prints the adapter and checks a product against the CPU.
pub fn info() -> Result<()> {
    let ctx = Context::new()?;
    let a = ctx.adapter();
    println!("adapter   {}", a.name);
    println!("backend   {}", a.backend);
    println!("driver    {} {}", a.driver, a.driver_info);
    println!("kind      {:?}", a.kind);
    println!(
        "limits    storage binding {} MiB, buffer {} MiB, {} storage buffers/stage,",
        a.max_storage_binding >> 20,
        a.max_buffer >> 20,
        a.max_storage_buffers_per_stage
    );
    println!(
        "          {} B workgroup memory, {} invocations/workgroup, offset alignment {} B",
        a.max_workgroup_storage, a.max_invocations_per_workgroup, a.storage_offset_alignment
    );
    println!("features  timestamp queries: {}", if a.timestamps { "yes" } else { "no" });
    println!(
        "matmul    {:?}, operands through texture copies: {}",
        ctx.matmul_variant(),
        if ctx.texture_operands() { "yes (larger blocks)" } else { "no" }
    );
    if a.kind == crate::DeviceKind::Cpu {
        let threads = std::env::var(crate::gpu::software::THREADS_VAR).unwrap_or_else(|_| "default".into());
        println!("llvmpipe  {} worker threads ({})", threads, crate::gpu::software::THREADS_VAR);
    }
    // Self-check: a product with bias and ReLU against the CPU reference.
    let (m, n, k) = (65, 63, 17);
    let mut rng = Rng::new(42);
    let (av, bv, biasv) = (rng.vec_f32(m * k, -1.0, 1.0), rng.vec_f32(n * k, -1.0, 1.0), rng.vec_f32(n, -1.0, 1.0));
    let spec = MatmulSpec { trans_b: true, act: Activation::Relu, ..Default::default() };
    let (ga, gb, gbias, gc) =
        (ctx.upload(&av, &[m, k])?, ctx.upload(&bv, &[n, k])?, ctx.upload(&biasv, &[n])?, ctx.empty(&[m, n])?);
    ctx.run(&[&kernels::matmul(&ctx, &ga, &gb, Some(&gbias), &gc, &spec)?])?;
    let got = ctx.read(&gc)?;
    let mut want = vec![0f32; m * n];
    cpu::matmul(&av, &bv, Some(&biasv), &mut want, MatmulShape { m, n, k }, false, true, Activation::Relu, false);
    let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    if err > 1e-4 {
        return Err(crate::Error::invalid("self-check", format!("matmul 65x63x17 differs from the CPU by {err}")));
    }
    println!("self-check matmul {m}x{n}x{k} + bias + relu: max |GPU - CPU| = {err:.2e}  ok");
    Ok(())
}
