//! The matmul kernel against the CPU reference on awkward shapes, every transpose, bias and
//! activation combination, both kernel variants.

mod common;

use common::{assert_close, ctx, to64};
use hydra::cpu::{self, Rng};
use hydra::kernels::{self, Activation, MatmulShape, MatmulSpec, MatmulVariant};

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 17, 63),
    (17, 3, 65),
    (63, 65, 64),
    (65, 64, 3),
    (64, 257, 17),
    (257, 63, 1),
    (8, 8, 4096), // K-dominant
];

const VARIANTS: [MatmulVariant; 2] =
    [MatmulVariant::Registers { wg_x: 8, wg_y: 8 }, MatmulVariant::Tiled { wg_x: 16, wg_y: 16 }];

/// A and B of a product of `shape`, drawn from `rng` in [-1, 1], and their GPU copies stored
/// as `spec`'s transposes say.
fn operands(
    rng: &mut Rng,
    (m, n, k): (usize, usize, usize),
    spec: &MatmulSpec,
) -> (Vec<f32>, Vec<f32>, hydra::Tensor, hydra::Tensor) {
    let ctx = ctx();
    let a = rng.vec_f32(m * k, -1.0, 1.0);
    let b = rng.vec_f32(k * n, -1.0, 1.0);
    let ga = ctx.upload(&a, &if spec.trans_a { [k, m] } else { [m, k] }).unwrap();
    let gb = ctx.upload(&b, &if spec.trans_b { [n, k] } else { [k, n] }).unwrap();
    (a, b, ga, gb)
}

/// One product on the GPU against the f64 reference. Tolerance: the f32 rounding bound of a
/// K-term dot product, 2·K·ε·Σ|a||b| (+|bias|), then the activation's Lipschitz factor (≤ 1.2),
/// plus 1e-6 relative for the activation's own rounding.
/// Returns the GPU's result.
fn check(shape: (usize, usize, usize), spec: MatmulSpec, with_bias: bool, seed: u64) -> Vec<f32> {
    let ctx = ctx();
    let (m, n, k) = shape;
    let mut rng = Rng::new(seed);
    let (ta, tb) = (spec.trans_a, spec.trans_b);
    let (a, b, ga, gb) = operands(&mut rng, shape, &spec);
    let bias = rng.vec_f32(n, -1.0, 1.0);
    let c0 = rng.vec_f32(m * n, -1.0, 1.0);
    let gbias = ctx.upload(&bias, &[n]).unwrap();
    let gc = ctx.upload(&c0, &[m, n]).unwrap();
    let d = kernels::matmul(&ctx, &ga, &gb, with_bias.then_some(&gbias), &gc, &spec).unwrap();
    ctx.run(&[&d]).unwrap();
    let got = ctx.read(&gc).unwrap();

    let s = MatmulShape { m, n, k };
    let mut want = to64(&c0);
    let b64 = to64(&bias);
    cpu::matmul(&to64(&a), &to64(&b), with_bias.then_some(&b64[..]), &mut want, s, ta, tb, spec.act, spec.accumulate);
    // Σ|a||b| per output, through the same reference with |a|, |b|.
    let abs = |v: &[f32]| v.iter().map(|x| f64::from(x.abs())).collect::<Vec<_>>();
    let mut mag = if spec.accumulate { abs(&c0) } else { vec![0.0; m * n] };
    let bias_abs = abs(&bias);
    cpu::matmul(
        &abs(&a),
        &abs(&b),
        with_bias.then_some(&bias_abs[..]),
        &mut mag,
        s,
        ta,
        tb,
        Activation::Identity,
        spec.accumulate,
    );
    let eps = f64::from(f32::EPSILON);
    let tol: Vec<f64> =
        mag.iter().zip(&want).map(|(g, w)| 1.2 * 2.0 * (k as f64 + 2.0) * eps * g + 1e-6 * (1.0 + w.abs())).collect();
    assert_close(&format!("matmul {shape:?} {spec:?} bias={with_bias}"), &got, &want, &tol);
    got
}

/// [`check`], and the same product with one 4×4 tile per invocation must give the same bits:
/// every block size sums each output over k in the same order, so a program may switch block
/// sizes (to trade compile time for speed) without changing a single result.
fn check_block(shape: (usize, usize, usize), spec: MatmulSpec, with_bias: bool, seed: u64) {
    let got = check(shape, spec, with_bias, seed);
    let base = check(shape, MatmulSpec { tiles: Some((1, 1)), ..spec }, with_bias, seed);
    let same = got.iter().zip(&base).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(same, "{shape:?} {spec:?}: results differ from one tile per invocation");
}

#[test]
fn matmul_matches_cpu_on_odd_shapes_every_transpose_bias_and_activation() {
    let mut seed = 1;
    for variant in VARIANTS {
        for ta in [false, true] {
            for tb in [false, true] {
                for with_bias in [false, true] {
                    for act in Activation::ALL {
                        let spec = MatmulSpec {
                            trans_a: ta,
                            trans_b: tb,
                            act,
                            accumulate: false,
                            variant: Some(variant),
                            tiles: None,
                            textures: None,
                        };
                        for &shape in SHAPES {
                            seed += 1;
                            check(shape, spec, with_bias, seed);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_accumulates_into_c() {
    for variant in VARIANTS {
        for (ta, tb) in [(false, false), (true, false), (false, true)] {
            let spec = MatmulSpec {
                trans_a: ta,
                trans_b: tb,
                act: Activation::Identity,
                accumulate: true,
                variant: Some(variant),
                tiles: None,
                textures: None,
            };
            for &shape in SHAPES {
                check(shape, spec, false, 7);
            }
        }
    }
}

/// The register-blocked form with larger blocks (2×2 and 4×4 tiles of 4×4 outputs, and mixed),
/// on shapes that leave partial and wholly-empty tiles at the edges, a K % 4 tail, and both the
/// four-float and the one-float read paths: each against the CPU, and bit for bit against
/// one tile per invocation. (Each block size and transpose is its own
/// pipeline, and a 4×4 one takes seconds to compile under llvmpipe: the cases are chosen,
/// not crossed.)
#[test]
fn matmul_larger_register_blocks_match_cpu() {
    let registers = Some(MatmulVariant::Registers { wg_x: 8, wg_y: 8 });
    // Four-float reads on both sides for every transpose: M, N, K multiples of 4.
    let vec_shape = (36, 44, 20);
    // One-float reads and a K tail.
    let odd_shape = (37, 45, 19);
    let mut seed = 500;
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        for shape in [vec_shape, odd_shape] {
            seed += 1;
            let spec =
                MatmulSpec { trans_a: ta, trans_b: tb, variant: registers, tiles: Some((2, 2)), ..Default::default() };
            check_block(shape, spec, false, seed);
        }
    }
    let four =
        |ta, tb| MatmulSpec { trans_a: ta, trans_b: tb, variant: registers, tiles: Some((4, 4)), ..Default::default() };
    check_block(vec_shape, four(false, false), false, 601);
    check_block(vec_shape, four(true, false), false, 602);
    check_block(odd_shape, four(false, true), false, 603);
    check_block(odd_shape, MatmulSpec { act: Activation::Relu, accumulate: true, ..four(true, true) }, true, 604);
    for tiles in [(4, 1), (1, 4), (2, 4)] {
        check_block(odd_shape, MatmulSpec { variant: registers, tiles: Some(tiles), ..Default::default() }, true, 605);
    }
    // Eight tiles along M (matmul_tall): 70 rows leave a partial and wholly-empty tiles in the
    // second block of 32, for each tile count along N.
    let tall = |ta, tb, tn| MatmulSpec {
        trans_a: ta,
        trans_b: tb,
        variant: registers,
        tiles: Some((8, tn)),
        ..Default::default()
    };
    check_block((70, 44, 20), tall(false, true, 4), true, 606);
    check_block((70, 45, 19), tall(true, false, 2), false, 607);
    check_block(
        (70, 9, 21),
        MatmulSpec { act: Activation::Relu, accumulate: true, ..tall(false, false, 1) },
        true,
        608,
    );
    let grad_shape = (70, 44, 20);
    let g = check_act_grad(grad_shape, tall(false, false, 4), Activation::Tanh, true, 609);
    let one = check_act_grad(
        grad_shape,
        MatmulSpec { tiles: Some((1, 1)), ..tall(false, false, 4) },
        Activation::Tanh,
        true,
        609,
    );
    assert!(g.iter().zip(&one).all(|(x, y)| x.to_bits() == y.to_bits()), "tall block with an activation's gradient");
}

/// Operands read through texture copies (the default for larger blocks on CPU adapters) give
/// the CPU's result and the same bits as storage reads, on shapes with partial tiles, a K
/// tail and every transpose; an operand whose rows are not a whole number of 64 floats is read
/// from storage; and the copies are refreshed on every run, so new contents are seen.
#[test]
fn matmul_texture_operands_match_storage_reads_bit_for_bit() {
    let ctx = ctx();
    let registers = Some(MatmulVariant::Registers { wg_x: 8, wg_y: 8 });
    // (shape, trans_a, trans_b, tiles, bias, texture operands expected).
    type Case = ((usize, usize, usize), bool, bool, (usize, usize), bool, usize);
    let cases: &[Case] = &[
        // A [65, 64], B [64, 64]: a partial row tile.
        ((65, 64, 64), false, false, (2, 2), true, 2),
        // A [3, 128], B stored [17, 128]: N = 17 leaves a partial column tile.
        ((3, 17, 128), false, true, (1, 1), false, 2),
        // A stored [17, 64], B [17, 64]: K = 17, a tail taken one k at a time.
        ((64, 64, 17), true, false, (2, 2), false, 2),
        // A stored [63, 128]; B stored [5, 63] cannot be copied (63 floats a row).
        ((128, 5, 63), true, true, (2, 1), true, 1),
        // The tall block, 70 rows: a partial and a wholly-empty tile in its second block.
        ((70, 64, 64), false, true, (8, 4), true, 2),
        // Neither operand's rows are a whole number of 64 floats.
        ((17, 3, 65), false, false, (2, 2), false, 0),
    ];
    for (i, &(shape, ta, tb, tiles, bias, expect)) in cases.iter().enumerate() {
        let spec = MatmulSpec {
            trans_a: ta,
            trans_b: tb,
            act: if bias { Activation::Relu } else { Activation::Identity },
            variant: registers,
            tiles: Some(tiles),
            ..Default::default()
        };
        let seed = 700 + i as u64;
        let tex = check(shape, MatmulSpec { textures: Some(true), ..spec }, bias, seed);
        let storage = check(shape, MatmulSpec { textures: Some(false), ..spec }, bias, seed);
        let same = tex.iter().zip(&storage).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{shape:?} {spec:?}: texture reads change the result");
        let (_, _, ga, gb) = operands(&mut Rng::new(seed), shape, &spec);
        let gc = ctx.zeros(&[shape.0, shape.1]).unwrap();
        let d = kernels::matmul(&ctx, &ga, &gb, None, &gc, &MatmulSpec { textures: Some(true), ..spec }).unwrap();
        assert_eq!(d.texture_operands(), expect, "{shape:?} {spec:?}");
        let d = kernels::matmul(&ctx, &ga, &gb, None, &gc, &MatmulSpec { textures: Some(false), ..spec }).unwrap();
        assert_eq!(d.texture_operands(), 0, "{shape:?} {spec:?} told to read storage");
    }
    // An activation's gradient in the epilogue, through textures.
    let grad = MatmulSpec { variant: registers, tiles: Some((2, 2)), ..Default::default() };
    let t = check_act_grad((64, 64, 64), MatmulSpec { textures: Some(true), ..grad }, Activation::Tanh, false, 720);
    let s = check_act_grad((64, 64, 64), MatmulSpec { textures: Some(false), ..grad }, Activation::Tanh, false, 720);
    assert!(t.iter().zip(&s).all(|(x, y)| x.to_bits() == y.to_bits()), "act-grad epilogue with texture reads");

    // Refreshed on every run: rewrite A and B, run the same dispatch, get the new product.
    let (m, n, k) = (64, 64, 64);
    let spec = MatmulSpec { variant: registers, tiles: Some((2, 2)), textures: Some(true), ..Default::default() };
    let mut rng = Rng::new(730);
    let (_, _, ga, gb) = operands(&mut rng, (m, n, k), &spec);
    let gc = ctx.zeros(&[m, n]).unwrap();
    let d = kernels::matmul(&ctx, &ga, &gb, None, &gc, &spec).unwrap();
    ctx.run(&[&d]).unwrap();
    let a2 = rng.vec_f32(m * k, -1.0, 1.0);
    let b2 = rng.vec_f32(k * n, -1.0, 1.0);
    ctx.write(&ga, &a2).unwrap();
    ctx.write(&gb, &b2).unwrap();
    ctx.run(&[&d]).unwrap();
    let got = ctx.read(&gc).unwrap();
    let gc2 = ctx.zeros(&[m, n]).unwrap();
    let storage = MatmulSpec { textures: Some(false), ..spec };
    ctx.run(&[&kernels::matmul(&ctx, &ga, &gb, None, &gc2, &storage).unwrap()]).unwrap();
    let want = ctx.read(&gc2).unwrap();
    assert!(got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "a stale texture copy was read");
}

/// Texture copies count in the context's memory use while they live, once per tensor however
/// many products read it. (A context of its own:
/// the shared one's use moves with the tests running beside this one.)
#[test]
fn texture_operands_count_in_memory_use() {
    let ctx = hydra::Context::new().expect("an adapter (see README: install lavapipe)");
    let spec = MatmulSpec {
        variant: Some(MatmulVariant::Registers { wg_x: 8, wg_y: 8 }),
        tiles: Some((2, 2)),
        textures: Some(true),
        ..Default::default()
    };
    let a = ctx.upload(&vec![0.5; 64 * 64], &[64, 64]).unwrap();
    let b = ctx.upload(&vec![0.25; 64 * 128], &[64, 128]).unwrap();
    let c = ctx.zeros(&[64, 128]).unwrap();
    let copies = a.bytes() + b.bytes();
    let (before, _) = ctx.memory();
    let d = kernels::matmul(&ctx, &a, &b, None, &c, &spec).unwrap();
    assert_eq!(d.texture_operands(), 2);
    let (during, peak) = ctx.memory();
    assert!(during >= before + copies && peak >= during, "before {before}, with the copies {during}");
    // A second product of the same operands shares their copies.
    let c2 = ctx.zeros(&[64, 128]).unwrap();
    let (before2, _) = ctx.memory();
    let d2 = kernels::matmul(&ctx, &a, &b, None, &c2, &spec).unwrap();
    let (during2, _) = ctx.memory();
    assert!(during2 < before2 + copies, "a second set of copies: {before2} -> {during2}");
    ctx.run(&[&d, &d2]).unwrap();
    assert_eq!(ctx.read(&c).unwrap(), ctx.read(&c2).unwrap());
    drop((d, d2));
    let (after, _) = ctx.memory();
    assert!(after + copies <= during2, "with the copies {during2}, after {after}");
}

#[test]
fn matmul_rejects_tile_counts_other_than_1_2_4_and_8_along_m() {
    let ctx = ctx();
    let (a, b, c) = (ctx.zeros(&[8, 8]).unwrap(), ctx.zeros(&[8, 8]).unwrap(), ctx.zeros(&[8, 8]).unwrap());
    for tiles in [(3, 1), (1, 8), (16, 1), (0, 1)] {
        let spec = MatmulSpec {
            variant: Some(MatmulVariant::Registers { wg_x: 8, wg_y: 8 }),
            tiles: Some(tiles),
            ..Default::default()
        };
        let err = kernels::matmul(&ctx, &a, &b, None, &c, &spec).err().expect("must fail");
        assert!(err.to_string().contains("1, 2, 4 or 8 along M, 1, 2 or 4 along N"), "{tiles:?}: {err}");
    }
}

/// Block sizes grow with the work (compile time is paid once per pipeline, and only large
/// products repay a large block's) and shrink to keep every core busy.
#[test]
fn register_tiles_follow_the_size_of_the_product() {
    use hydra::kernels::register_tiles;
    assert_eq!(register_tiles(1024, 1024, 1024, 64), (8, 4)); // 2^30 multiply-adds
    assert_eq!(register_tiles(1024, 1024, 512, 64), (4, 4));
    assert_eq!(register_tiles(1024, 512, 512, 64), (4, 4)); // 2^28
    assert_eq!(register_tiles(512, 512, 256, 64), (2, 2)); // 2^26
    assert_eq!(register_tiles(512, 256, 256, 64), (1, 1)); // 2^25
    assert_eq!(register_tiles(256, 256, 256, 64), (1, 1)); // a small model's layer
    assert_eq!(register_tiles(256, 1, 256, 64), (1, 1));
    assert_eq!(register_tiles(1 << 16, 4, 1 << 10, 64), (4, 1)); // one tile of room along N
    assert_eq!(register_tiles(1 << 15, 8, 1 << 10, 64), (4, 2));
    // 64 x 8192: 4x4 tiles would leave 4 x 512 = 2048 invocations, enough.
    assert_eq!(register_tiles(64, 8192, 1 << 10, 64), (4, 4));
    // 32 x 32 with a huge K: one invocation per 16x16 block would leave 4 of them.
    assert_eq!(register_tiles(32, 32, 1 << 20, 64), (1, 1));
    // A long run's blocks may take 8 tiles along M (in workgroups half as high), keeping at
    // least four workgroups whatever their size: 256 x 256 in 16x16 blocks is 256
    // invocations, one workgroup of 16x16 (one core under llvmpipe).
    use hydra::kernels::steady_register_tiles;
    assert_eq!(steady_register_tiles(256, 256, 64), (8, 4)); // 128 invocations, 4 workgroups of 8x4
    assert_eq!(steady_register_tiles(256, 256, 256), (2, 2));
    assert_eq!(steady_register_tiles(256, 64, 64), (2, 2));
    assert_eq!(steady_register_tiles(1024, 1024, 64), (8, 4));
    assert_eq!(register_tiles(1024, 1024, 1024, 256), (8, 4));
}

#[test]
fn matmul_default_variant_runs_large_square() {
    let spec = MatmulSpec::default();
    check((130, 129, 131), spec, true, 99);
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    let ctx = ctx();
    let a = ctx.zeros(&[3, 4]).unwrap();
    let b = ctx.zeros(&[5, 6]).unwrap();
    let c = ctx.zeros(&[3, 6]).unwrap();
    let err = kernels::matmul(&ctx, &a, &b, None, &c, &MatmulSpec::default()).err().expect("must fail");
    assert!(err.to_string().contains("op(A) is 3x4 but op(B) is 5x6"), "{err}");
    let b = ctx.zeros(&[4, 6]).unwrap();
    let bad_bias = ctx.zeros(&[5]).unwrap();
    let err = kernels::matmul(&ctx, &a, &b, Some(&bad_bias), &c, &MatmulSpec::default()).err().expect("must fail");
    assert!(err.to_string().contains("bias has 5 elements, expected 6"), "{err}");
}

/// A backward product that takes an activation's gradient in its epilogue,
/// `C = (op(A)·op(B) [+ C]) ⊙ act'(saved)`, against the f64 reference: the product, then the
/// activation's gradient from its saved input (or output). Tolerance: the product's bound
/// times the largest |act'| (≤ 1.2), plus 1e-6 relative. Returns the GPU's result.
fn check_act_grad(
    shape: (usize, usize, usize),
    spec: MatmulSpec,
    act: Activation,
    from_output: bool,
    seed: u64,
) -> Vec<f32> {
    let ctx = ctx();
    let (m, n, k) = shape;
    let mut rng = Rng::new(seed);
    let (ta, tb) = (spec.trans_a, spec.trans_b);
    let (a, b, ga, gb) = operands(&mut rng, shape, &spec);
    let c0 = rng.vec_f32(m * n, -1.0, 1.0);
    // The saved input, or the output of the activation at a random input.
    let x = rng.vec_f32(m * n, -2.0, 2.0);
    let saved: Vec<f32> =
        if from_output { x.iter().map(|&v| cpu::act_apply(act, f64::from(v)) as f32).collect() } else { x };
    let gc = ctx.upload(&c0, &[m, n]).unwrap();
    let gs = ctx.upload(&saved, &[m, n]).unwrap();
    let grad = kernels::ActGrad { act, saved: &gs, from_output };
    ctx.run(&[&kernels::matmul_act_grad(&ctx, &ga, &gb, &gc, &spec, grad).unwrap()]).unwrap();
    let got = ctx.read(&gc).unwrap();

    let s = MatmulShape { m, n, k };
    let mut want = to64(&c0);
    cpu::matmul(&to64(&a), &to64(&b), None, &mut want, s, ta, tb, Activation::Identity, spec.accumulate);
    let abs = |v: &[f32]| v.iter().map(|x| f64::from(x.abs())).collect::<Vec<_>>();
    let mut mag = if spec.accumulate { abs(&c0) } else { vec![0.0; m * n] };
    cpu::matmul(&abs(&a), &abs(&b), None, &mut mag, s, ta, tb, Activation::Identity, spec.accumulate);
    for (i, w) in want.iter_mut().enumerate() {
        let sv = f64::from(saved[i]);
        *w *= if from_output { cpu::act_grad_from_output(act, sv) } else { cpu::act_grad_from_input(act, sv) };
    }
    let eps = f64::from(f32::EPSILON);
    let tol: Vec<f64> =
        mag.iter().zip(&want).map(|(g, w)| 1.2 * 2.0 * (k as f64 + 2.0) * eps * g + 1e-6 * (1.0 + w.abs())).collect();
    assert_close(&format!("matmul {shape:?} {spec:?} then {act:?}' (from output: {from_output})"), &got, &want, &tol);
    got
}

#[test]
fn backward_products_take_the_activation_gradient_like_the_cpu() {
    // Every activation both ways in the form the backward pass uses (dz·W), a few in the
    // others and in the tiled variant: each is a pipeline of its own to compile.
    let registers = VARIANTS[0];
    let mut cases = Vec::new();
    for act in Activation::ALL {
        cases.push((registers, false, false, act, false));
        if act.grad_from_output() {
            cases.push((registers, false, false, act, true));
        }
    }
    for act in [Activation::Relu, Activation::Tanh] {
        cases.push((registers, true, false, act, true));
        cases.push((registers, false, true, act, false));
        cases.push((VARIANTS[1], false, false, act, true));
    }
    let mut seed = 500;
    for (variant, ta, tb, act, from_output) in cases {
        for accumulate in [false, true] {
            let spec =
                MatmulSpec { trans_a: ta, trans_b: tb, accumulate, variant: Some(variant), ..Default::default() };
            for &shape in &SHAPES[..7] {
                seed += 1;
                let got = check_act_grad(shape, spec, act, from_output, seed);
                if variant == registers && !ta && !tb && !accumulate && act == Activation::Relu {
                    // Larger blocks change no bit here either.
                    let big = check_act_grad(shape, MatmulSpec { tiles: Some((4, 2)), ..spec }, act, from_output, seed);
                    let same = got.iter().zip(&big).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{shape:?} {spec:?} {act:?}': blocks differ");
                }
            }
        }
    }
    // An activation in the same product is refused, and so is gelu's gradient from its output.
    let ctx = ctx();
    let t = ctx.zeros(&[4, 4]).unwrap();
    let relu = kernels::ActGrad { act: Activation::Relu, saved: &t, from_output: true };
    let with_act = MatmulSpec { act: Activation::Tanh, ..Default::default() };
    assert!(kernels::matmul_act_grad(&ctx, &t, &t, &t, &with_act, relu).is_err());
    let gelu = kernels::ActGrad { act: Activation::Gelu, saved: &t, from_output: true };
    assert!(kernels::matmul_act_grad(&ctx, &t, &t, &t, &MatmulSpec::default(), gelu).is_err());
}
