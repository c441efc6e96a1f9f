//! Activations, elementwise kernels and reductions against the CPU reference on awkward
//! sizes; activation derivatives against finite differences.

mod common;

use common::{assert_close, assert_close_all, ctx, to64};
use hydra::cpu::{self, Rng};
use hydra::kernels::{self, Activation};

const SIZES: &[usize] = &[1, 3, 17, 63, 64, 65, 257, 4099];

#[test]
fn act_forward_matches_cpu_including_extreme_inputs() {
    let ctx = ctx();
    for act in Activation::ALL {
        for &n in SIZES {
            let mut x = Rng::new(n as u64).vec_f32(n, -6.0, 6.0);
            x[0] = 100.0;
            if n > 1 {
                x[1] = -100.0;
            }
            let gx = ctx.upload(&x, &[n]).unwrap();
            let gy = ctx.empty(&[n]).unwrap();
            ctx.run(&[&kernels::act_forward(&ctx, act, &gx, &gy).unwrap()]).unwrap();
            let got = ctx.read(&gy).unwrap();
            let mut want = vec![0.0; n];
            cpu::act_forward(act, &to64(&x), &mut want);
            let tol: Vec<f64> = want.iter().map(|w| 2e-6 * (1.0 + w.abs())).collect();
            assert_close(&format!("act_forward {act:?} n={n}"), &got, &want, &tol);
        }
    }
}

#[test]
fn act_backward_matches_cpu_from_input_and_output_with_accumulation() {
    let ctx = ctx();
    for act in Activation::ALL {
        for &n in SIZES {
            let mut rng = Rng::new(100 + n as u64);
            let x = rng.vec_f32(n, -4.0, 4.0);
            let dy = rng.vec_f32(n, -1.0, 1.0);
            let dx0 = rng.vec_f32(n, -1.0, 1.0);
            let y: Vec<f32> = x.iter().map(|&v| cpu::act_apply(act, v)).collect();
            for from_output in [false, true] {
                if from_output && !act.grad_from_output() {
                    continue;
                }
                for accumulate in [false, true] {
                    let saved = if from_output { &y } else { &x };
                    let gdy = ctx.upload(&dy, &[n]).unwrap();
                    let gs = ctx.upload(saved, &[n]).unwrap();
                    let gdx = ctx.upload(&dx0, &[n]).unwrap();
                    let d = kernels::act_backward(&ctx, act, &gdy, &gs, from_output, &gdx, accumulate).unwrap();
                    ctx.run(&[&d]).unwrap();
                    let got = ctx.read(&gdx).unwrap();
                    let mut want = to64(&dx0);
                    cpu::act_backward(act, &to64(&dy), &to64(saved), from_output, &mut want, accumulate);
                    let tol: Vec<f64> = want.iter().map(|w| 4e-6 * (1.0 + w.abs())).collect();
                    assert_close(
                        &format!("act_backward {act:?} n={n} out={from_output} acc={accumulate}"),
                        &got,
                        &want,
                        &tol,
                    );
                }
            }
        }
    }
}

#[test]
fn act_gelu_gradient_refuses_the_output_form() {
    let ctx = ctx();
    let t = ctx.zeros(&[4]).unwrap();
    let err = kernels::act_backward(&ctx, Activation::Gelu, &t, &t, true, &t, false).err().expect("must fail");
    assert!(err.to_string().contains("needs its input"), "{err}");
}

#[test]
fn activation_derivatives_match_finite_differences_in_f64() {
    let h = 1e-6;
    for act in Activation::ALL {
        for i in 0..200 {
            let x = -5.0 + 0.05 * f64::from(i) + 0.0123; // avoids the kink at 0
            let fd = (cpu::act_apply(act, x + h) - cpu::act_apply(act, x - h)) / (2.0 * h);
            let g = cpu::act_grad_from_input(act, x);
            assert!(approx::abs_diff_eq!(fd, g, epsilon = 1e-6), "{act:?} at {x}: fd {fd} vs analytic {g}");
            if act.grad_from_output() {
                let go = cpu::act_grad_from_output(act, cpu::act_apply(act, x));
                assert!(
                    approx::abs_diff_eq!(go, g, epsilon = 1e-9),
                    "{act:?} at {x}: from output {go} vs from input {g}"
                );
            }
        }
    }
}

#[test]
fn mul_matches_cpu_as_a_product_and_accumulating_its_gradient() {
    let ctx = ctx();
    for &n in SIZES {
        let mut rng = Rng::new(11 * n as u64);
        let (x, y, z0) = (rng.vec_f32(n, -2.0, 2.0), rng.vec_f32(n, -2.0, 2.0), rng.vec_f32(n, -2.0, 2.0));
        let (gx, gy) = (ctx.upload(&x, &[n]).unwrap(), ctx.upload(&y, &[n]).unwrap());
        for accumulate in [false, true] {
            let gz = ctx.upload(&z0, &[n]).unwrap();
            ctx.run(&[&kernels::mul(&ctx, &gx, &gy, &gz, accumulate).unwrap()]).unwrap();
            let mut want = to64(&z0);
            cpu::mul(&to64(&x), &to64(&y), &mut want, accumulate);
            // One product (and one sum) in f32 against f64: within an f32 rounding or two.
            let tol: Vec<f64> = want.iter().map(|w| 4e-7 * (1.0 + w.abs())).collect();
            assert_close(&format!("mul n={n} accumulate={accumulate}"), &ctx.read(&gz).unwrap(), &want, &tol);
        }
    }
}

#[test]
fn fill_scale_axpy_add_match_cpu() {
    let ctx = ctx();
    for &n in SIZES {
        let mut rng = Rng::new(7 * n as u64);
        let x = rng.vec_f32(n, -2.0, 2.0);
        let y = rng.vec_f32(n, -2.0, 2.0);
        let gx = ctx.upload(&x, &[n]).unwrap();
        let gy = ctx.upload(&y, &[n]).unwrap();
        let gz = ctx.empty(&[n]).unwrap();
        ctx.run(&[&kernels::add(&ctx, &gx, &gy, &gz).unwrap()]).unwrap();
        let mut want = vec![0.0; n];
        cpu::add(&to64(&x), &to64(&y), &mut want);
        assert_close_all(&format!("add n={n}"), &ctx.read(&gz).unwrap(), &want, 1e-6);

        ctx.run(&[&kernels::axpy(&ctx, -0.75, &gx, &gy).unwrap()]).unwrap();
        let mut want = to64(&y);
        cpu::axpy(-0.75, &to64(&x), &mut want);
        assert_close_all(&format!("axpy n={n}"), &ctx.read(&gy).unwrap(), &want, 1e-6);

        ctx.run(&[&kernels::scale(&ctx, &gx, 3.5).unwrap()]).unwrap();
        let mut want = to64(&x);
        cpu::scale(&mut want, 3.5);
        assert_close_all(&format!("scale n={n}"), &ctx.read(&gx).unwrap(), &want, 1e-6);

        ctx.run(&[&kernels::fill(&ctx, &gx, -1.25).unwrap()]).unwrap();
        let mut want = vec![0.0; n];
        cpu::fill(&mut want, -1.25);
        assert_close_all(&format!("fill n={n}"), &ctx.read(&gx).unwrap(), &want, 0.0);
    }
}

#[test]
fn elementwise_grid_covers_more_than_one_grid_row() {
    // 65535 * 256 + 5 values need a second row of workgroups.
    let ctx = ctx();
    let n = 65_535 * 256 + 5;
    let x = ctx.zeros(&[n]).unwrap();
    ctx.run(&[&kernels::fill(&ctx, &x, 2.0).unwrap()]).unwrap();
    let got = ctx.read(&x).unwrap();
    assert!(got.iter().all(|&v| v == 2.0), "some of {n} values were not written");
}

#[test]
fn reductions_match_cpu() {
    let ctx = ctx();
    // (C % 4 == 0: the four-columns-a-thread form of col_sum.)
    let shapes = [(1, 1), (3, 17), (63, 65), (257, 3), (64, 257), (4096, 8), (1, 4), (17, 64), (65, 260)];
    for (r, c) in shapes {
        let n = r * c;
        let mut rng = Rng::new(n as u64);
        let x = rng.vec_f32(n, -1.0, 1.0);
        let y = rng.vec_f32(n, -1.0, 1.0);
        let gx = ctx.upload(&x, &[r, c]).unwrap();
        let gy = ctx.upload(&y, &[r, c]).unwrap();
        let (x64, y64) = (to64(&x), to64(&y));
        // Rounding bound of an n-term sum of magnitude ≤ Σ|terms|.
        let bound = |mag: f64, terms: usize| 2.0 * terms as f64 * f64::from(f32::EPSILON) * mag + 1e-7;

        for accumulate in [false, true] {
            let start = rng.vec_f32(c, -1.0, 1.0);
            let out = ctx.upload(&start, &[c]).unwrap();
            ctx.run(&[&kernels::col_sum(&ctx, &gx, &out, accumulate).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::col_sum(&x64, r, c, &mut want, accumulate);
            let mut mag = if accumulate { start.iter().map(|v| f64::from(v.abs())).collect() } else { vec![0.0; c] };
            let xa: Vec<f64> = x64.iter().map(|v| v.abs()).collect();
            cpu::col_sum(&xa, r, c, &mut mag, accumulate);
            let tol: Vec<f64> = mag.iter().map(|m| bound(*m, r + 1)).collect();
            assert_close(&format!("col_sum {r}x{c} acc={accumulate}"), &ctx.read(&out).unwrap(), &want, &tol);
        }

        let abs_sum: f64 = x64.iter().map(|v| v.abs()).sum();
        let one = ctx.zeros(&[1]).unwrap();
        ctx.run(&[&kernels::sum(&ctx, &gx, &one, false).unwrap()]).unwrap();
        assert_close_all(&format!("sum {n}"), &ctx.read(&one).unwrap(), &[cpu::sum(&x64)], bound(abs_sum, n));

        ctx.run(&[&kernels::sq_norm(&ctx, &gx, &one, false).unwrap()]).unwrap();
        let sq = cpu::sq_norm(&x64);
        assert_close_all(&format!("sq_norm {n}"), &ctx.read(&one).unwrap(), &[sq], bound(sq, n));

        ctx.run(&[&kernels::dot(&ctx, &gx, &gy, &one, false).unwrap()]).unwrap();
        let dmag: f64 = x64.iter().zip(&y64).map(|(a, b)| (a * b).abs()).sum();
        assert_close_all(&format!("dot {n}"), &ctx.read(&one).unwrap(), &[cpu::dot(&x64, &y64)], bound(dmag, n));

        // Accumulating adds to what is there.
        ctx.write(&one, &[10.0]).unwrap();
        ctx.run(&[&kernels::sum(&ctx, &gx, &one, true).unwrap()]).unwrap();
        assert_close_all(
            &format!("sum+= {n}"),
            &ctx.read(&one).unwrap(),
            &[10.0 + cpu::sum(&x64)],
            bound(abs_sum + 10.0, n + 1),
        );
    }
}

#[test]
fn transpose_matches_cpu() {
    let ctx = ctx();
    for (r, c) in [(1, 1), (3, 17), (63, 65), (257, 4), (64, 64)] {
        let x = Rng::new((r * c) as u64).vec_f32(r * c, -1.0, 1.0);
        let gx = ctx.upload(&x, &[r, c]).unwrap();
        let gy = ctx.empty(&[c, r]).unwrap();
        ctx.run(&[&kernels::transpose(&ctx, &gx, &gy).unwrap()]).unwrap();
        let mut want = vec![0.0; r * c];
        cpu::transpose(&to64(&x), r, c, &mut want);
        assert_close_all(&format!("transpose {r}x{c}"), &ctx.read(&gy).unwrap(), &want, 0.0);
    }
}

#[test]
fn copy_columns_matches_cpu() {
    let ctx = ctx();
    // (rows, source width, source offset, target width, target offset, columns)
    for (rows, wx, ox, wy, oy, cols) in [
        (1, 1, 0, 1, 0, 1),
        (3, 17, 5, 12, 2, 10),
        (257, 1, 0, 12, 11, 1),
        (65, 63, 0, 63, 0, 63),
        (17, 12, 2, 3, 0, 3),
    ] {
        let mut rng = Rng::new((rows * wx + ox) as u64);
        let x = rng.vec_f32(rows * wx, -1.0, 1.0);
        let y0 = rng.vec_f32(rows * wy, -1.0, 1.0);
        let bias = rng.vec_f32(cols, -1.0, 1.0);
        for with_bias in [false, true] {
            let gx = ctx.upload(&x, &[rows, wx]).unwrap();
            let gy = ctx.upload(&y0, &[rows, wy]).unwrap();
            let gb = ctx.upload(&bias, &[cols]).unwrap();
            let b = with_bias.then_some(&gb);
            ctx.run(&[&kernels::copy_columns(&ctx, &gx, ox, &gy, oy, cols, b).unwrap()]).unwrap();
            let mut want = to64(&y0);
            let b64 = to64(&bias);
            cpu::copy_columns(&to64(&x), wx, ox, &mut want, wy, oy, cols, with_bias.then_some(&b64[..]));
            // Columns outside the block keep their values; a copy is exact, a bias adds one rounding.
            let tol = if with_bias { 1e-6 } else { 0.0 };
            assert_close_all(
                &format!("copy_columns {rows}x{wx}[{ox}..] -> x{wy}[{oy}..] bias {with_bias}"),
                &ctx.read(&gy).unwrap(),
                &want,
                tol,
            );
        }
    }
    // A block past either matrix's edge is refused.
    let a = ctx.zeros(&[4, 5]).unwrap();
    let b = ctx.zeros(&[4, 3]).unwrap();
    assert!(kernels::copy_columns(&ctx, &a, 3, &b, 0, 3, None).is_err());
    assert!(kernels::copy_columns(&ctx, &a, 0, &b, 1, 3, None).is_err());
}

#[test]
fn divergence_guard_matches_cpu() {
    let ctx = ctx();
    // (P % 4 == 0: the four-at-a-time scan.)
    for p in [1, 3, 17, 64, 65, 260, 1027] {
        let params = Rng::new(p as u64).vec_f32(p, -1.0, 1.0);
        let losses = vec![0.5f32, 1.5, 2.5];
        // (bad loss, bad parameter index, its value)
        let cases: [(Option<usize>, Option<usize>, f32); 5] = [
            (None, None, 0.0),
            (None, Some(0), f32::NAN),
            (None, Some(p - 1), f32::INFINITY),
            (None, Some(p / 2), f32::NEG_INFINITY),
            (Some(1), Some(p / 3), f32::NAN),
        ];
        for (bad_loss, bad_param, value) in cases {
            let mut ps = params.clone();
            let mut ls = losses.clone();
            if let Some(i) = bad_param {
                ps[i] = value;
            }
            if let Some(k) = bad_loss {
                ls[k] = f32::INFINITY;
            }
            let (gl, gp) = (ctx.upload(&ls, &[3]).unwrap(), ctx.upload(&ps, &[p]).unwrap());
            let state = ctx.zeros(&[5]).unwrap();
            let d = kernels::check_finite(&ctx, &gl, &gp, &state).unwrap();
            // Twice: the second step counts, and keeps the first record.
            let mut want = [0f32; 5];
            for _ in 0..2 {
                ctx.run(&[&d]).unwrap();
                cpu::check_finite(&ls, &ps, &mut want);
            }
            let got = ctx.read(&state).unwrap();
            let what = format!("guard P={p} loss {bad_loss:?} param {bad_param:?} {value}");
            assert_eq!(got[..4], want[..4], "{what}");
            // One bad value: the kernel records that value (NaN compares by being NaN).
            assert!(
                got[4] == want[4] || (got[4].is_nan() && want[4].is_nan()),
                "{what}: value {} vs {}",
                got[4],
                want[4]
            );
        }
    }
}
