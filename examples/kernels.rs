//! Single kernels on your own data: a matmul with bias and ReLU, and a GELU, each checked
//! against the CPU reference. `cargo run --release --example kernels`

use hydra::cpu::{self, Rng};
use hydra::kernels::{self, Activation, MatmulShape, MatmulSpec};
use hydra::Context;

fn main() -> hydra::Result<()> {
    let ctx = Context::new()?;
    let (m, n, k) = (65, 33, 17);
    let mut rng = Rng::new(3);
    let a = rng.vec_f32(m * k, -1.0, 1.0);
    let w = rng.vec_f32(n * k, -1.0, 1.0); // stored [out, in] like nn.Linear
    let b = rng.vec_f32(n, -1.0, 1.0);

    // y = relu(a · wᵀ + b) in one dispatch.
    let (ga, gw, gb, gy) =
        (ctx.upload(&a, &[m, k])?, ctx.upload(&w, &[n, k])?, ctx.upload(&b, &[n])?, ctx.empty(&[m, n])?);
    let spec = MatmulSpec { trans_b: true, act: Activation::Relu, ..Default::default() };
    let d = kernels::matmul(&ctx, &ga, &gw, Some(&gb), &gy, &spec)?;
    ctx.run(&[&d])?;
    let got = ctx.read(&gy)?;
    let mut want = vec![0f32; m * n];
    cpu::matmul(&a, &w, Some(&b), &mut want, MatmulShape { m, n, k }, false, true, Activation::Relu, false);
    let err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    println!("matmul {m}x{n}x{k} + bias + relu: max |GPU - CPU| = {err:.2e}");

    // z = gelu(y), elementwise.
    let gz = ctx.empty(&[m, n])?;
    ctx.run(&[&kernels::act_forward(&ctx, Activation::Gelu, &gy, &gz)?])?;
    let got = ctx.read(&gz)?;
    let mut want_z = vec![0f32; m * n];
    cpu::act_forward(Activation::Gelu, &want, &mut want_z);
    let err2 = got.iter().zip(&want_z).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    println!("gelu over {} values: max |GPU - CPU| = {err2:.2e}", m * n);
    if err > 1e-4 || err2 > 1e-5 {
        return Err(hydra::Error::invalid("example", "the GPU and the CPU disagree"));
    }
    Ok(())
}
