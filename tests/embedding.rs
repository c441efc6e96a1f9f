//! Categorical inputs: the embedding lookup and its deterministic gradient against the CPU
//! reference on awkward shapes, the inverse index, finite-difference checks of the rule, a
//! model with embeddings on the GPU against the CPU (and the same bits twice); the
//! encoding's vocabularies, unknown and empty categories, imputation with indicators.

mod common;

use common::{assert_close_all, check_grads_fd, ctx, to64};
use hydra::autograd::cpu as gcpu;
use hydra::cpu::{self, Rng};
use hydra::data::{batch::gather, Columns, Dataset, Encoding, Table};
use hydra::mtl::TaskDef;
use hydra::nn::{EmbeddingSpec, ModelSpec, MultiTaskModel, TaskSpec};
use hydra::{kernels, Activation, GpuGraph, LossKind};

#[test]
fn the_inverse_index_lists_each_rows_lookups_in_order() {
    let ids = [2u32, 0, 2, 3, 2];
    let (offsets, order) = cpu::embed_inverse(&ids, 5);
    assert_eq!(offsets, vec![0.0, 1.0, 1.0, 4.0, 5.0, 5.0]);
    assert_eq!(order, vec![1.0, 0.0, 2.0, 4.0, 3.0]);
}

#[test]
fn gather_and_scatter_match_the_cpu_on_awkward_shapes() {
    let ctx = ctx();
    for &(b, v, d) in &[(1usize, 1usize, 1usize), (3, 2, 17), (17, 5, 3), (65, 63, 8), (257, 3, 65)] {
        let mut rng = Rng::new((b * 7 + v * 3 + d) as u64);
        let table = rng.vec_f32(v * d, -1.0, 1.0);
        let ids: Vec<u32> = (0..b).map(|_| (rng.next_u64() % v as u64) as u32).collect();
        let idf: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
        let (offsets, order) = cpu::embed_inverse(&ids, v);
        let dy = rng.vec_f32(b * d, -1.0, 1.0);
        let (gt, gi, go, gr, gdy) = (
            ctx.upload(&table, &[v, d]).unwrap(),
            ctx.upload(&idf, &[b]).unwrap(),
            ctx.upload(&offsets, &[v + 1]).unwrap(),
            ctx.upload(&order, &[b]).unwrap(),
            ctx.upload(&dy, &[b, d]).unwrap(),
        );
        let gy = ctx.empty(&[b, d]).unwrap();
        ctx.run(&[&kernels::embed_gather(&ctx, &gt, &gi, &gy).unwrap()]).unwrap();
        let mut want = vec![0.0; b * d];
        cpu::embed_gather(&to64(&table), &to64(&idf), d, &mut want);
        assert_close_all(&format!("gather {b}x{v}x{d}"), &ctx.read(&gy).unwrap(), &want, 0.0);
        for acc in [false, true] {
            let start = rng.vec_f32(v * d, -1.0, 1.0);
            let gdt = ctx.upload(&start, &[v, d]).unwrap();
            ctx.run(&[&kernels::embed_scatter(&ctx, &gdy, &go, &gr, &gdt, acc).unwrap()]).unwrap();
            let mut want = to64(&start);
            cpu::embed_scatter(&to64(&dy), &to64(&offsets), &to64(&order), d, &mut want, acc);
            assert_close_all(&format!("scatter {b}x{v}x{d} {acc}"), &ctx.read(&gdt).unwrap(), &want, 1e-5 * b as f64);
        }
    }
}

/// A two-task model with 2 numeric features and two categorical ones (tables of 4 and 6 rows).
fn spec(arch: &str) -> ModelSpec {
    let tasks =
        vec![TaskSpec { name: "r".into(), loss: LossKind::Mse }, TaskSpec { name: "b".into(), loss: LossKind::Bce }];
    let mut s = ModelSpec::hard_sharing(2, &[5], &[], Activation::Tanh, tasks);
    s.embeddings = vec![
        EmbeddingSpec { column: "u".into(), rows: 4, dim: 3 },
        EmbeddingSpec { column: "i".into(), rows: 6, dim: 2 },
    ];
    if arch == "mmoe" {
        s.arch = hydra::nn::Arch::Mmoe;
        s.trunk = vec![];
        s.experts = 3;
        s.expert = vec![4];
    }
    s
}

/// A batch of `b` rows for [`spec`]: ids drawn over the tables (some rows repeated).
fn batch(b: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    let d = Dataset {
        feature_names: vec!["x0".into(), "x1".into()],
        features: rng.vec_f32(b * 2, -1.0, 1.0),
        categorical: vec![
            hydra::data::CatColumn {
                name: "u".into(),
                levels: (0..3).map(|k| k.to_string()).collect(),
                ids: (0..b).map(|_| (rng.next_u64() % 4) as u32).collect(),
            },
            hydra::data::CatColumn {
                name: "i".into(),
                levels: (0..5).map(|k| k.to_string()).collect(),
                ids: (0..b).map(|_| (rng.next_u64() % 6) as u32).collect(),
            },
        ],
        labels: vec![rng.vec_f32(b, -1.0, 1.0), (0..b).map(|_| (rng.next_u64() % 2) as f32).collect()],
        masks: vec![vec![1.0; b], vec![1.0; b]],
        groups: None,
    };
    let rows: Vec<usize> = (0..b).collect();
    gather(&d, &rows, b).unwrap()
}

#[test]
fn embeddings_pass_finite_difference_checks() {
    for arch in ["hps", "mmoe"] {
        let m = MultiTaskModel::build(&spec(arch), 7).unwrap();
        assert_eq!(m.graph.params[0].name, "embeddings.u", "the tables come first: shared");
        let params: Vec<Vec<f64>> = m.graph.init_params(3).unwrap().iter().map(|p| to64(p)).collect();
        let inputs: Vec<Vec<f64>> = batch(7, 4).iter().map(|v| to64(v)).collect();
        check_grads_fd(&format!("embeddings under {arch}"), &m.graph, &params, &inputs, &[1.0, 0.5], None);
    }
}

#[test]
fn a_model_with_embeddings_on_the_gpu_equals_the_cpu_and_repeats_its_bits() {
    for (arch, b) in [("hps", 1), ("hps", 17), ("mmoe", 65), ("hps", 257)] {
        let m = MultiTaskModel::build(&spec(arch), b).unwrap();
        let init = m.graph.init_params(5).unwrap();
        let inputs = batch(b, 6);
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let mut runs = Vec::new();
        for _ in 0..2 {
            let mut gg = GpuGraph::new(ctx(), m.graph.clone(), &init, None).unwrap();
            gg.set_task_weights(&[1.0, 0.5]).unwrap();
            gg.feed(&refs).unwrap();
            gg.forward_backward().unwrap();
            runs.push(gg.read_grads().unwrap());
        }
        assert_eq!(runs[0], runs[1], "{arch} b {b}: the same bits on every run");
        let p64: Vec<Vec<f64>> = init.iter().map(|p| to64(p)).collect();
        let i64: Vec<Vec<f64>> = inputs.iter().map(|v| to64(v)).collect();
        let run = gcpu::run(&m.graph, &p64, &i64, &[1.0, 0.5], true).unwrap();
        for (pi, want) in run.param_grads(&m.graph).iter().enumerate() {
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            let what = format!("{arch} b {b} {}", m.graph.params[pi].name);
            assert_close_all(&what, &runs[0][pi], want, 1e-6 + 1e-4 * scale);
        }
    }
}

fn read(text: &str, impute: bool) -> Dataset {
    let t = Table::parse("in.csv", text.as_bytes()).unwrap();
    let tasks = vec![TaskDef::regression("y", "y")];
    Dataset::read(&t, &Columns { impute, categorical: &["zip".to_string()], ..Columns::default() }, &tasks).unwrap()
}

#[test]
fn vocabularies_come_from_training_rows_and_unseen_values_are_unknown() {
    let train = read("zip,color,w,y\n10,red,1,1\n20,,2,2\n10,blue,3,3\n", false);
    let enc = Encoding::fit(&train, false);
    let names: Vec<&str> = enc.categorical.iter().map(|v| v.column.as_str()).collect();
    assert_eq!(names, vec!["zip", "color"], "zip by [data] categorical, color by its text");
    assert_eq!(enc.categorical[0].levels, vec!["10", "20"]);
    assert_eq!(enc.categorical[1].levels, vec!["", "blue", "red"], "an empty cell is its own category");
    let t = enc.apply(&train).unwrap();
    assert_eq!(t.categorical[0].ids, vec![1, 2, 1]);
    assert_eq!(t.categorical[1].ids, vec![3, 1, 2]);
    // A later file: a zip and a color never seen in training are unknown (0).
    let test = Table::parse("test.csv", b"zip,color,w\n30,green,1\n20,red,2\n,,3\n").unwrap();
    let d = enc.read(&test).unwrap();
    assert_eq!(d.categorical[0].ids, vec![0, 2, 0]);
    assert_eq!(d.categorical[1].ids, vec![0, 3, 1]);
    assert_eq!(d.features, vec![1.0, 2.0, 3.0]);
}

#[test]
fn impute_fills_the_training_mean_and_adds_an_indicator_where_training_had_gaps() {
    let train = read("zip,a,b,y\n1,1,,1\n2,,5,2\n1,3,7,3\n", true);
    let enc = Encoding::fit(&train, true);
    assert_eq!(enc.means, vec![2.0, 6.0]);
    assert_eq!(enc.indicators, vec![0, 1]);
    assert_eq!(enc.feature_names(), vec!["a", "b", "a.missing", "b.missing"]);
    let t = enc.apply(&train).unwrap();
    assert_eq!(t.features, vec![1.0, 6.0, 0.0, 1.0, 2.0, 5.0, 1.0, 0.0, 3.0, 7.0, 0.0, 0.0]);
    // Only columns with empty training cells get an indicator.
    let full = read("zip,a,b,y\n1,1,4,1\n2,,5,2\n", true);
    let enc = Encoding::fit(&full.subset(&[0]), true);
    assert_eq!(enc.feature_names(), vec!["a", "b"]);
    let d = enc.apply(&full).unwrap();
    assert_eq!(d.features, vec![1.0, 4.0, 1.0, 5.0], "a missing cell later takes the training mean");
    // Without impute an empty numeric cell stays an error naming its place.
    let t = Table::parse("in.csv", b"a,y\n1,1\n,2\n").unwrap();
    let e = Dataset::read(&t, &Columns::default(), &[TaskDef::regression("y", "y")]).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("column \"a\"") && e.contains("empty cell"), "{e}");
}
