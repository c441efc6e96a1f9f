use hydra::kernels::{MatmulSpec, MatmulVariant};
fn main() -> hydra::Result<()> {
    let ctx = hydra::Context::new()?;
    let mut rng = hydra::cpu::Rng::new(1);
    let wg: Vec<u32> = std::env::args().nth(1).unwrap_or("8,8".into()).split(',').map(|x| x.parse().unwrap()).collect();
    for &s in &[256usize, 1024] {
        let a = ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s])?;
        let b = ctx.upload(&rng.vec_f32(s * s, -1.0, 1.0), &[s, s])?;
        let c = ctx.zeros(&[s, s])?;
        let spec = MatmulSpec {
            tiles: Some((4, 4)),
            variant: Some(MatmulVariant::Registers { wg_x: wg[0], wg_y: wg[1] }),
            ..Default::default()
        };
        let d = hydra::kernels::matmul(&ctx, &a, &b, None, &c, &spec)?;
        let mut v = Vec::new();
        let reps = if s == 256 { 15 } else { 3 };
        for _ in 0..reps {
            v.extend(ctx.profile(&[&d, &d])?.unwrap());
        }
        v.sort_by(f64::total_cmp);
        println!(
            "{s}^3 {:?}: min {:.3} med {:.3} ms ({:.2} GFLOP/s at the median) {}",
            wg,
            v[0],
            v[v.len() / 2],
            2.0 * (s * s * s) as f64 / (v[v.len() / 2] * 1e6),
            d.label
        );
    }
    Ok(())
}
