//! The `hydra` command end to end: train on a tiny config, save, eval gives the training
//! run's metrics, predict writes one column per task, errors exit non-zero with one line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hydra(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hydra")).args(args).current_dir(dir).output().expect("run hydra")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hydra-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TINY: &str = r#"
[data]
path = "d.csv"
split = [0.6, 0.2, 0.2]
[[task]]
name = "reg"
target = "y"
kind = "regression"
[[task]]
name = "bin"
target = "b"
kind = "binary"
[[task]]
name = "cls"
target = "c"
kind = "multiclass"
classes = 3
[model]
trunk = [8]
[train]
lr = 0.01
batch_size = 16
epochs = 5
"#;

fn tiny_data(dir: &Path) {
    let mut s = String::from("x1,x2,y,b,c\n");
    for i in 0..60 {
        let (a, b) = ((i % 7) as f32 / 7.0, (i % 5) as f32 / 5.0);
        let y = if i % 9 == 0 { String::new() } else { format!("{}", a + 2.0 * b) };
        s += &format!("{a},{b},{y},{},{}\n", u8::from(a > b), i % 3);
    }
    std::fs::write(dir.join("d.csv"), s).unwrap();
    std::fs::write(dir.join("c.toml"), TINY).unwrap();
}

#[test]
fn train_save_eval_and_predict_agree() {
    let dir = tmpdir("roundtrip");
    tiny_data(&dir);
    let args = [
        "train",
        "--config",
        "c.toml",
        "--save",
        "m.safetensors",
        "--metrics-json",
        "m.json",
        "--plot",
        "p.svg",
        "--log",
        "l.jsonl",
        "-q",
    ];
    let out = hydra(&args, &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap();
    let rmse = metrics["tasks"]["reg"]["test"]["rmse"].as_f64().unwrap();
    let svg = std::fs::read_to_string(dir.join("p.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("reg") && svg.contains("cls"), "the plot names the tasks");
    assert!(metrics["tasks"]["bin"]["test"]["auc"].is_number());
    assert!(metrics["tasks"]["cls"]["test"]["cross_entropy"].is_number());
    assert!(metrics.get("delta_m").is_some_and(|v| v.is_null()), "delta_m is there, null without baselines");
    // Each log line: per-task weights, gradient norms and the pairwise cosines (1 on the diagonal).
    let log = std::fs::read_to_string(dir.join("l.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    for t in ["reg", "bin", "cls"] {
        assert!(line["weights"][t].is_number() && line["grad_norms"][t].as_f64().unwrap() > 0.0, "{line}");
        let own = line["grad_cosines"][t][t].as_f64().unwrap();
        assert!(approx::abs_diff_eq!(own, 1.0, epsilon = 1e-6), "cos(g_t, g_t) = {own}");
        assert!(line["grad_cosines"][t]["reg"].as_f64().unwrap().abs() <= 1.0 + 1e-6);
    }

    let out = hydra(&["eval", "--config", "c.toml", "--checkpoint", "m.safetensors", "--json"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rmse2 = ev["tasks"]["reg"]["test"]["rmse"].as_f64().unwrap();
    assert!(approx::abs_diff_eq!(rmse, rmse2, epsilon = 1e-9), "train said {rmse}, eval says {rmse2}");

    std::fs::write(dir.join("in.csv"), "x2,x1\n0.2,0.1\n0.9,0.3\n0.5,0.5\n").unwrap();
    let out = hydra(&["predict", "--checkpoint", "m.safetensors", "--input", "in.csv", "--output", "p.csv"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines[0], "reg,bin,cls");
    assert_eq!(lines.len(), 4);
    for l in &lines[1..] {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 3);
        assert!((0.0..=1.0).contains(&v[1]), "probability {l}");
        assert!([0.0, 1.0, 2.0].contains(&v[2]), "class {l}");
    }
}

#[test]
fn init_from_a_checkpoint_resumes_and_bad_inputs_exit_non_zero_with_one_line() {
    let dir = tmpdir("errors");
    tiny_data(&dir);
    assert!(hydra(&["train", "--config", "c.toml", "--save", "a.safetensors", "-q"], &dir).status.success());
    let out = hydra(&["train", "--config", "c.toml", "--init", "a.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    std::fs::write(dir.join("bad.toml"), TINY.replace("epochs = 5", "epochs = 5\nfoo = 1")).unwrap();
    let out = hydra(&["train", "--config", "bad.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml") && err.contains("train.foo: unknown key `foo`"), "{err}");

    std::fs::write(dir.join("t.safetensors"), &std::fs::read(dir.join("a.safetensors")).unwrap()[..100]).unwrap();
    let out = hydra(&["eval", "--config", "c.toml", "--checkpoint", "t.safetensors"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("t.safetensors") && err.contains("truncated or corrupt"), "{err}");
}

const LONG: &str = r#"
[data]
path = "d.csv"
split = [0.6, 0.2, 0.2]
[[task]]
name = "reg"
target = "y"
kind = "regression"
[[task]]
name = "cls"
target = "c"
kind = "multiclass"
classes = 3
[model]
trunk = [16]
[train]
lr = 0.01
batch_size = 7
epochs = 60
patience = 0
[weighting]
method = "pcgrad"
"#;

fn wait_for(path: &Path, secs: f64) {
    let start = std::time::Instant::now();
    while !path.exists() && start.elapsed().as_secs_f64() < secs {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_valid_checkpoint_and_resume_ends_bit_identical() {
    let dir = tmpdir("kill");
    tiny_data(&dir);
    std::fs::write(dir.join("long.toml"), LONG).unwrap();
    // The uninterrupted run.
    let out = hydra(&["train", "--config", "long.toml", "--save", "full.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = std::fs::read(dir.join("full.safetensors")).unwrap();

    // Runs killed at several moments: the checkpoint always loads.
    let ck = dir.join("ck.safetensors");
    let mut rng = hydra::cpu::Rng::new(5);
    for attempt in 0..4 {
        let _ = std::fs::remove_file(&ck);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hydra"))
            .args(["train", "--config", "long.toml", "--save", "ck.safetensors", "--checkpoint-every", "1", "-q"])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&ck, 30.0);
        std::thread::sleep(std::time::Duration::from_millis(rng.below(400) as u64));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let c = hydra::checkpoint::Checkpoint::load(&ck).unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert!(c.metadata.contains_key("loop") && c.tensors.contains_key("trunk.0.weight"));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        for l in leftovers {
            let _ = std::fs::remove_file(l.path()); // a temporary file a kill may leave; never the target
        }
    }

    // Resume the last killed run to the end: the result equals the uninterrupted run, byte for byte.
    let out = hydra(
        &["train", "--config", "long.toml", "--resume", "ck.safetensors", "--save", "out.safetensors", "-q"],
        &dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resumed = std::fs::read(dir.join("out.safetensors")).unwrap();
    assert!(resumed == full, "the resumed run's checkpoint differs from the uninterrupted run's");
}

#[test]
fn resume_refuses_a_checkpoint_of_another_model() {
    let dir = tmpdir("other");
    tiny_data(&dir);
    assert!(hydra(&["train", "--config", "c.toml", "--save", "a.safetensors", "-q"], &dir).status.success());
    std::fs::write(dir.join("wide.toml"), TINY.replace("trunk = [8]", "trunk = [12]")).unwrap();
    let out = hydra(&["train", "--config", "wide.toml", "--resume", "a.safetensors"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.safetensors") && err.contains("another model"), "{err}");
    // --init names every mis-shaped tensor.
    let out = hydra(&["train", "--config", "wide.toml", "--init", "a.safetensors"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trunk.0.weight is [8, 2], the model needs [12, 2]"), "{err}");
    assert!(err.contains("trunk.0.bias is [8], the model needs [12]"), "{err}");
}

#[test]
fn bench_json_lines_name_the_bench_the_figures_and_the_adapter() {
    let dir = tmpdir("bench");
    let out = hydra(&["bench", "--json", "--only", "matmul", "--sizes", "64", "--budget", "0.05"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "the four transpose forms at 64");
    for l in &lines {
        assert_eq!(l["bench"], "matmul");
        assert_eq!(l["m"], 64);
        assert!(l["ms"].as_f64().unwrap() > 0.0 && l["gflops"].as_f64().unwrap() > 0.0);
        assert!(l["adapter"].as_str().is_some_and(|a| !a.is_empty()));
        assert!(l["timer"] == "gpu" || l["timer"] == "wall");
    }
    let out = hydra(&["bench", "--only", "nothing"], &dir);
    assert!(!out.status.success());
}

/// A real out-of-memory: the process's address space is capped (lavapipe's device memory is
/// host memory) and the model's activations need several times the cap. The run must end
/// with an error naming the allocation, exit 1 (not a crash), and leave the checkpoint that
/// a previous run wrote at the same path untouched.
#[cfg(target_os = "linux")]
#[test]
fn out_of_memory_ends_the_run_with_an_error_and_the_last_checkpoint_intact() {
    // The cap is on the process's address space: it limits a CPU adapter's device memory,
    // which is host memory, but not a real GPU's, where the model would simply fit. So the
    // test runs on CPU adapters (lavapipe, as in CI) and says so elsewhere.
    let ctx = hydra::Context::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
    if ctx.adapter().kind != hydra::DeviceKind::Cpu {
        eprintln!("out-of-memory test not run on {}: ulimit -v caps only a CPU adapter's memory", ctx.adapter().name);
        return;
    }
    // On GL the run cannot end cleanly: Mesa's llvmpipe GL driver (22.3) dies of SIGSEGV inside
    // the driver when an allocation fails under the cap (measured: exit 139 on this config),
    // where the Vulkan driver reports out of memory and Hydra ends with its error. So this
    // test runs on Vulkan (CI's first pass) and says so under GL.
    if ctx.adapter().backend == "gl" {
        eprintln!("out-of-memory test not run on GL: Mesa's GL driver crashes when an allocation fails");
        return;
    }
    drop(ctx);
    let dir = tmpdir("oom");
    tiny_data(&dir);
    let out = hydra(&["train", "--config", "c.toml", "--save", "m.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let good = std::fs::read(dir.join("m.safetensors")).unwrap();

    // 20 000 rows; 24 layers of 1024 at batch 16384 hold 3 x 24 x 64 MiB of activations and
    // their gradients, about 4.7 GiB, against a 2.5 GB cap that lavapipe itself needs about
    // 1.2 GB of.
    let mut csv = String::from("x1,x2,x3,x4,y\n");
    for i in 0..20_000 {
        let x: Vec<f32> = (0..4).map(|j| ((i * 7 + j * 13) % 101) as f32 / 101.0).collect();
        csv += &format!("{},{},{},{},{}\n", x[0], x[1], x[2], x[3], x.iter().sum::<f32>());
    }
    std::fs::write(dir.join("big.csv"), csv).unwrap();
    let trunk = vec!["1024"; 24].join(", ");
    let config = format!(
        "[data]\npath = \"big.csv\"\n[[task]]\nname = \"y\"\ntarget = \"y\"\nkind = \"regression\"\n\
         [model]\ntrunk = [{trunk}]\n[train]\nbatch_size = 16384\nsteps = 3\n"
    );
    std::fs::write(dir.join("big.toml"), config).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2500000 && exec \"$0\" train --config big.toml --save m.safetensors --checkpoint-every 1")
        .arg(env!("CARGO_BIN_EXE_hydra"))
        .current_dir(&dir)
        .output()
        .expect("run hydra under a memory cap");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "must exit 1, not crash: {err}");
    // The first allocation to fail may be the device's or the host's (on GL, a host one):
    // either way the message says memory ran out and names the allocation's size.
    let lower = err.to_lowercase();
    assert!(lower.contains("out of") && lower.contains("memory") && lower.contains("bytes"), "{err}");
    assert!(err.trim().lines().last().is_some_and(|l| l.to_lowercase().contains("memory")), "ends with it: {err}");
    assert_eq!(std::fs::read(dir.join("m.safetensors")).unwrap(), good, "the checkpoint changed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hydra` asks llvmpipe for twice the CPU threads as workers unless the environment says
/// otherwise, and `hydra info` reports what is in force.
#[test]
fn info_reports_the_software_driver_threads_and_a_preset_value_wins() {
    let dir = tmpdir("info_threads");
    let run = |preset: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hydra"));
        cmd.arg("info").current_dir(&dir).env_remove("LP_NUM_THREADS");
        if let Some(v) = preset {
            cmd.env("LP_NUM_THREADS", v);
        }
        let out = cmd.output().expect("run hydra info");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let info = run(None);
    if !info.contains("kind      Cpu") {
        // Other adapters ignore the variable, and info does not mention it.
        assert!(!info.contains("worker threads"), "{info}");
        return;
    }
    let want = hydra::gpu::software::preferred_threads();
    assert!(info.contains(&format!("llvmpipe  {want} worker threads")), "{info}");
    assert!(run(Some("3")).contains("llvmpipe  3 worker threads"));
}

/// A successful run prints nothing Hydra did not write: without XDG_RUNTIME_DIR the Vulkan
/// loader's window-system probe used to print two "error" lines before Hydra's own output.
#[test]
fn a_successful_run_prints_no_error_even_without_a_runtime_dir() {
    let dir = tmpdir("quiet");
    tiny_data(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hydra"))
        .args(["train", "--config", "c.toml"])
        .current_dir(&dir)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run hydra");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!err.contains("error"), "stderr of a successful run: {err}");
    assert!(err.contains("hydra:"), "Hydra's own progress line is there: {err}");
}

/// With only a training file, the table reports the training rows, says which splits are
/// missing, and has no NaN row (it printed NaN validation metrics, and --baselines panicked).
#[test]
fn a_run_without_held_out_splits_reports_the_training_rows_and_says_so() {
    let dir = tmpdir("train-only");
    tiny_data(&dir);
    let cfg = TINY.replace("path = \"d.csv\"\nsplit = [0.6, 0.2, 0.2]", "train = \"d.csv\"");
    std::fs::write(dir.join("t.toml"), cfg).unwrap();
    let out = hydra(&["train", "--config", "t.toml", "--baselines", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("NaN"), "{text}");
    assert!(text.contains("train metric"), "{text}");
    assert!(text.contains("no val or test split"), "{text}");
    assert!(text.contains("Δm% (multi-task vs single-task, train)"), "{text}");
}

fn predictions(dir: &Path, file: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect()
}

/// `--save-dtype f16 | bf16` writes the model's tensors in half precision (the training state
/// stays f32); eval and predict read them, and their predictions stay within two units of the
/// format's rounding of the f32 model's: for the regression task, |half − f32| within
/// 2·2⁻¹¹ ≈ 1e-3 (f16) or 2·2⁻⁸ ≈ 8e-3 (bf16) of (|f32| + the target's spread); binary
/// decisions unchanged but for rows within 0.01 of the threshold. (Measured: 1.6e-5 and
/// 2.9e-4.) `--resume` refuses such a file.
#[test]
fn half_precision_checkpoints_predict_like_f32_ones_and_cannot_resume() {
    let dir = tmpdir("half");
    tiny_data(&dir);
    let mut rows = String::from("x1,x2\n");
    for i in 0..40 {
        rows += &format!("{},{}\n", (i % 7) as f32 / 7.0, (i % 5) as f32 / 5.0);
    }
    std::fs::write(dir.join("rows.csv"), rows).unwrap();
    for dtype in ["f32", "f16", "bf16"] {
        let file = format!("m_{dtype}.safetensors");
        let out = hydra(&["train", "--config", "c.toml", "--save", &file, "--save-dtype", dtype, "-q"], &dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ck = hydra::checkpoint::Checkpoint::load(&dir.join(&file)).unwrap();
        let want = hydra::checkpoint::Precision::parse(dtype, "dtype").unwrap();
        assert_eq!(ck.stored["trunk.0.weight"], want, "{dtype}: the model's tensors");
        assert_eq!(ck.stored["optim.exp_avg.trunk.0.weight"], hydra::checkpoint::Precision::F32, "state stays f32");
        let out = hydra(
            &["predict", "--checkpoint", &file, "--input", "rows.csv", "--output", &format!("{dtype}.csv")],
            &dir,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = hydra(&["eval", "--config", "c.toml", "--checkpoint", &file, "--json"], &dir);
        assert!(out.status.success(), "eval reads {dtype}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let full = predictions(&dir, "f32.csv");
    // The regression target a + 2b spans 0..2.6; binary probabilities and classes as they are.
    let spread = 2.6;
    for (dtype, tol) in [("f16", 1e-3), ("bf16", 8e-3)] {
        let half = predictions(&dir, &format!("{dtype}.csv"));
        let (mut worst, mut flips) = (0f64, 0);
        for (h, f) in half.iter().zip(&full) {
            worst = worst.max((h[0] - f[0]).abs() / (f[0].abs() + spread));
            if (h[1] - 0.5).signum() != (f[1] - 0.5).signum() && (f[1] - 0.5).abs() > 0.01 {
                flips += 1;
            }
        }
        eprintln!("{dtype}: worst regression difference {worst:.2e} of (|f32| + spread)");
        assert!(worst < tol, "{dtype}: {worst}");
        assert_eq!(flips, 0, "{dtype}: binary decisions away from the threshold changed");
    }
    let out = hydra(&["train", "--config", "c.toml", "--resume", "m_f16.safetensors"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("m_f16.safetensors") && err.contains("half precision") && err.contains("--init"), "{err}");
    let out = hydra(&["train", "--config", "c.toml", "--save", "x.safetensors", "--save-dtype", "f8"], &dir);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--save-dtype"));
}

/// A file of tensors alone, as `safetensors.torch.save_file(model.state_dict())` writes it
/// with Hydra's names, starts a run: the config gives the model, a note says so, and the
/// tensors it holds are the run's starting point.
#[test]
fn init_takes_a_file_of_tensors_without_hydra_metadata() {
    let dir = tmpdir("plain-init");
    tiny_data(&dir);
    assert!(hydra(&["train", "--config", "c.toml", "--save", "a.safetensors", "-q"], &dir).status.success());
    let full = hydra::checkpoint::Checkpoint::load(&dir.join("a.safetensors")).unwrap();
    let mut plain = hydra::checkpoint::Checkpoint::default();
    for (name, (shape, v)) in &full.tensors {
        if !name.starts_with("optim.") && !name.starts_with("best.") {
            plain.insert(name, shape, v.clone());
        }
    }
    assert!(plain.metadata.is_empty());
    plain.save(&dir.join("plain.safetensors")).unwrap();
    let frozen = TINY.replace("epochs = 5", "epochs = 2\nfreeze = [\"trunk\"]");
    std::fs::write(dir.join("f.toml"), frozen).unwrap();
    let out =
        hydra(&["train", "--config", "f.toml", "--init", "plain.safetensors", "--save", "b.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Hydra metadata"), "the missing metadata is a note: {err}");
    let after = hydra::checkpoint::Checkpoint::load(&dir.join("b.safetensors")).unwrap();
    assert_eq!(after.tensors["trunk.0.weight"], plain.tensors["trunk.0.weight"], "the frozen trunk is the file's");
    // An unexpected tensor, and a missing one, are errors naming them.
    let mut extra = plain.clone();
    extra.insert("trunk.9.weight", &[2, 2], vec![0.0; 4]);
    extra.save(&dir.join("extra.safetensors")).unwrap();
    let out = hydra(&["train", "--config", "c.toml", "--init", "extra.safetensors", "-q"], &dir);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unexpected tensors"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trunk.9.weight"));
    let mut missing = plain.clone();
    missing.tensors.remove("trunk.0.bias");
    missing.save(&dir.join("missing.safetensors")).unwrap();
    let out = hydra(&["train", "--config", "c.toml", "--init", "missing.safetensors", "-q"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("missing trunk.0.bias"), "{err}");
    // A task the config dropped: its head is ignored, and said so; no optimizer state in the
    // file: the optimizer starts fresh, and said so.
    // (The dropped task's column is ignored, or it would become a feature.)
    let two = TINY
        .replace("[[task]]\nname = \"cls\"\ntarget = \"c\"\nkind = \"multiclass\"\nclasses = 3\n", "")
        .replace("split = [0.6, 0.2, 0.2]", "split = [0.6, 0.2, 0.2]\nignore = [\"c\"]");
    std::fs::write(dir.join("two.toml"), two).unwrap();
    let out = hydra(&["train", "--config", "two.toml", "--init", "plain.safetensors", "-q"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("heads.cls.") && err.contains("ignored (task not in the config)"), "{err}");
    assert!(err.contains("optimizer state starts fresh"), "{err}");
    // A tensor of the wrong shape is still an error naming it.
    let mut bad = plain.clone();
    bad.insert("trunk.0.weight", &[3, 2], vec![0.0; 6]);
    bad.save(&dir.join("bad.safetensors")).unwrap();
    let out = hydra(&["train", "--config", "c.toml", "--init", "bad.safetensors", "-q"], &dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trunk.0.weight"));
}

/// `standardize_targets = false` keeps regression losses on the raw targets, as a PyTorch run
/// on raw targets has them: the validation MSE is the square of the validation RMSE reported
/// in the targets' own units. With the default z-scoring they differ by the target's variance.
#[test]
fn raw_targets_give_losses_in_the_targets_own_units() {
    let dir = tmpdir("raw-targets");
    tiny_data(&dir);
    let raw = TINY.replace("split = [0.6, 0.2, 0.2]", "split = [0.6, 0.2, 0.2]\nstandardize_targets = false");
    std::fs::write(dir.join("raw.toml"), raw).unwrap();
    let ratio = |cfg: &str| -> f64 {
        let out = hydra(&["train", "--config", cfg, "--log", "l.jsonl", "-q"], &dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = std::fs::read_to_string(dir.join("l.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        let mse = last["val_loss"]["reg"].as_f64().unwrap();
        let rmse = last["val_metrics"]["reg"]["rmse"].as_f64().unwrap();
        mse / (rmse * rmse)
    };
    let r = ratio("raw.toml");
    assert!(approx::abs_diff_eq!(r, 1.0, epsilon = 1e-6), "raw targets: loss / rmse² = {r}");
    let z = ratio("c.toml");
    assert!((z - 1.0).abs() > 0.1, "z-scored targets: loss / rmse² = {z} (1 / the target's variance)");
}

/// `hydra compare` trains the named methods against the single-task baselines and prints a
/// Markdown table, with gradient methods on the chosen target.
#[test]
fn compare_prints_a_row_per_method_and_the_baselines() {
    let dir = tmpdir("compare");
    tiny_data(&dir);
    let out = hydra(&["compare", "--config", "c.toml", "--methods", "ew,pcgrad", "--target", "representation"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(rows[0].starts_with("| method | reg rmse | reg mae | bin accuracy"), "{text}");
    for m in ["single-task", "ew", "pcgrad"] {
        assert!(rows.iter().any(|r| r.starts_with(&format!("| {m} |"))), "{m}: {text}");
    }
    let out = hydra(&["compare", "--config", "c.toml", "--methods", "ew", "--target", "sideways"], &dir);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--target"));
}

/// `compare --seeds 3`: each cell is the mean ± std over three seeds, each with its own split,
/// initial parameters and baselines; the mean is that of the single-seed runs.
#[test]
fn compare_over_seeds_reports_mean_and_spread() {
    let dir = tmpdir("compare-seeds");
    tiny_data(&dir);
    let cell = |row: &str, k: usize| row.split('|').nth(k + 2).unwrap().trim().to_string();
    let out = hydra(&["compare", "--config", "c.toml", "--methods", "ew", "--seeds", "3"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let ew = text.lines().find(|l| l.starts_with("| ew |")).unwrap().to_string();
    let base = text.lines().find(|l| l.starts_with("| single-task |")).unwrap().to_string();
    assert!(cell(&ew, 0).contains(" ± ") && cell(&base, 0).contains(" ± "), "{text}");
    let mean: f64 = cell(&ew, 0).split(" ± ").next().unwrap().parse().unwrap();
    // The same three seeds one at a time.
    let mut singles = Vec::new();
    for seed in 0..3 {
        let cfg =
            std::fs::read_to_string(dir.join("c.toml")).unwrap().replace("[train]", &format!("[train]\nseed = {seed}"));
        std::fs::write(dir.join("s.toml"), cfg).unwrap();
        let out = hydra(&["compare", "--config", "s.toml", "--methods", "ew"], &dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let row = text.lines().find(|l| l.starts_with("| ew |")).unwrap().to_string();
        singles.push(cell(&row, 0).parse::<f64>().unwrap());
    }
    let want = singles.iter().sum::<f64>() / 3.0;
    assert!((mean - want).abs() < 1e-4, "mean {mean} of the seeds {singles:?}");
    assert!(singles.iter().any(|&v| (v - singles[0]).abs() > 1e-6), "the seeds differ: {singles:?}");
}

/// Transfer on a mixture of experts: a new task gets a new gate and head (named in a note),
/// `freeze = ["experts"]` keeps every expert's parameters byte for byte, and the new task learns.
#[test]
fn a_new_task_on_frozen_experts_gets_its_own_gate_and_head() {
    let dir = tmpdir("moe-transfer");
    tiny_data(&dir);
    let two = TINY
        .replace("[[task]]\nname = \"cls\"\ntarget = \"c\"\nkind = \"multiclass\"\nclasses = 3\n", "")
        .replace("split = [0.6, 0.2, 0.2]", "split = [0.6, 0.2, 0.2]\nignore = [\"c\"]")
        .replace("trunk = [8]", "arch = \"mmoe\"\nexperts = 3\nexpert = [6]");
    std::fs::write(dir.join("two.toml"), &two).unwrap();
    let out = hydra(&["train", "--config", "two.toml", "--save", "two.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let three = TINY
        .replace("trunk = [8]", "arch = \"mmoe\"\nexperts = 3\nexpert = [6]")
        .replace("epochs = 5", "epochs = 20\nfreeze = [\"experts\"]");
    std::fs::write(dir.join("three.toml"), three).unwrap();
    let out = hydra(
        &[
            "train",
            "--config",
            "three.toml",
            "--init",
            "two.safetensors",
            "--save",
            "three.safetensors",
            "--log",
            "l.jsonl",
            "-q",
        ],
        &dir,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("heads.cls and gates.cls start fresh"), "{err}");
    let (before, after) = (
        hydra::checkpoint::Checkpoint::load(&dir.join("two.safetensors")).unwrap(),
        hydra::checkpoint::Checkpoint::load(&dir.join("three.safetensors")).unwrap(),
    );
    for (name, (_, v)) in before.tensors.iter().filter(|(n, _)| n.starts_with("experts.")) {
        assert_eq!(&after.tensors[name].1, v, "{name} changed under freeze");
    }
    assert!(after.tensors.contains_key("gates.cls.weight") && after.tensors.contains_key("heads.cls.0.weight"));
    let log = std::fs::read_to_string(dir.join("l.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (first, last) =
        (lines[0]["train_loss"]["cls"].as_f64().unwrap(), lines.last().unwrap()["train_loss"]["cls"].as_f64().unwrap());
    assert!(last < first, "the new task learns on frozen experts: {first} -> {last}");
}

/// Text categories and empty cells end to end: a run on the penguins example saves its
/// vocabularies and imputed means in the checkpoint; eval agrees with train; predict takes raw
/// rows with an island and a year never seen in training and empty measurements, and writes
/// species as their labels.
#[test]
fn categories_and_missing_cells_survive_the_checkpoint_and_predict_takes_raw_rows() {
    let dir = tmpdir("penguins");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/penguins.csv");
    let cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/penguins.toml"))
        .unwrap()
        .replace("../data/penguins.csv", data)
        .replace("epochs = 200", "epochs = 3");
    std::fs::write(dir.join("c.toml"), cfg).unwrap();
    let out =
        hydra(&["train", "--config", "c.toml", "--save", "m.safetensors", "--metrics-json", "m.json", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ck = hydra::Checkpoint::load(&dir.join("m.safetensors")).unwrap();
    let enc: hydra::data::Encoding = serde_json::from_str(&ck.metadata["encoding"]).unwrap();
    let island = enc.categorical.iter().find(|v| v.column == "island").unwrap();
    assert_eq!(island.levels, vec!["Biscoe", "Dream", "Torgersen"]);
    assert_eq!(ck.tensors["embeddings.island"].0, vec![4, 3], "three islands and the unknown row");
    assert!(enc.impute, "impute = \"mean\" is recorded, so predict imputes too");

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap();
    let out = hydra(&["eval", "--config", "c.toml", "--checkpoint", "m.safetensors", "--json"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (t, m) in [("species", "accuracy"), ("sex", "log_loss"), ("body_mass", "rmse")] {
        let (a, b) = (metrics["tasks"][t]["test"][m].as_f64().unwrap(), ev["tasks"][t]["test"][m].as_f64().unwrap());
        assert!(approx::abs_diff_eq!(a, b, epsilon = 1e-9), "{t} {m}: train said {a}, eval says {b}");
    }

    let rows = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,year\n\
                Biscoe,45.1,14.5,215,2008\n\
                Atlantis,,,,2030\n\
                \"Dream\",39.5,17.4,186,2007\n";
    std::fs::write(dir.join("rows.csv"), rows).unwrap();
    let out = hydra(&["predict", "--checkpoint", "m.safetensors", "--input", "rows.csv", "--output", "p.csv"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines[0], "species,sex,body_mass");
    assert_eq!(lines.len(), 4);
    for l in &lines[1..] {
        let v: Vec<&str> = l.split(',').collect();
        assert!(["Adelie", "Chinstrap", "Gentoo"].contains(&v[0]), "species by label: {l}");
        let sex: f64 = v[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&sex), "a probability: {l}");
        assert!(v[2].parse::<f64>().unwrap().is_finite(), "{l}");
    }
    // Text in a numeric column of raw rows is an error naming its place.
    std::fs::write(dir.join("bad.csv"), rows.replace("45.1", "tall")).unwrap();
    let out = hydra(&["predict", "--checkpoint", "m.safetensors", "--input", "bad.csv", "--output", "q.csv"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 2") && err.contains("bill_length_mm"), "{err}");
}

/// `freeze = ["embeddings"]` keeps every table at its initial values while the rest trains.
#[test]
fn embeddings_can_be_frozen() {
    let dir = tmpdir("freeze-emb");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/penguins.csv");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/penguins.toml"))
        .unwrap()
        .replace("../data/penguins.csv", data);
    let mut tables = Vec::new();
    for (name, epochs, freeze) in [("a", 1, true), ("b", 3, true), ("c", 3, false)] {
        let mut cfg = base.replace("epochs = 200", &format!("epochs = {epochs}"));
        if freeze {
            cfg = cfg.replace("[train]", "[train]\nfreeze = [\"embeddings\"]");
        }
        std::fs::write(dir.join("c.toml"), cfg).unwrap();
        let file = format!("{name}.safetensors");
        let out = hydra(&["train", "--config", "c.toml", "--save", &file, "-q"], &dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ck = hydra::Checkpoint::load(&dir.join(&file)).unwrap();
        tables.push((ck.tensors["embeddings.island"].1.clone(), ck.tensors["trunk.0.weight"].1.clone()));
    }
    assert_eq!(tables[0].0, tables[1].0, "frozen tables do not move");
    assert_ne!(tables[0].1, tables[1].1, "the trunk trains");
    assert_ne!(tables[1].0, tables[2].0, "unfrozen tables train");
}

/// ESMM with baselines: the product task's baseline is a binary task with its own head, and a
/// task without a loss of its own has none (its Δ% undefined and said so), not a crash.
#[test]
fn esmm_runs_with_single_task_baselines() {
    let dir = tmpdir("esmm-baselines");
    let cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/recsys_esmm.toml"))
        .unwrap()
        .replace("rows = 20000", "rows = 1500")
        .replace("epochs = 40", "epochs = 2");
    std::fs::write(dir.join("c.toml"), cfg).unwrap();
    let out = hydra(&["train", "--config", "c.toml", "--baselines"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("ctcvr") && text.contains("Δm%"), "{text}");
    assert!(text.contains("Δ% of conversion leaves out auc"), "{text}");
}

#[test]
fn affinity_prints_the_matrix_and_groups_and_writes_json_and_svg() {
    let dir = tmpdir("affinity");
    tiny_data(&dir);
    let out = hydra(&["affinity", "--config", "c.toml", "--every", "2", "--json", "a.json", "--svg", "a.svg"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lookahead affinity") && text.contains("2 group(s)"), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("a.json")).unwrap()).unwrap();
    let tasks: Vec<&str> = doc["tasks"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(tasks, ["reg", "bin", "cls"]);
    for key in ["affinity", "estimate", "conflict_share"] {
        let m = doc[key].as_array().unwrap_or_else(|| panic!("{key}: {doc}"));
        assert!(m.len() == 3 && m.iter().all(|r| r.as_array().unwrap().len() == 3), "{key}: {doc}");
    }
    assert!(doc["affinity"][0][1].is_number(), "{doc}");
    // 36 training rows in batches of 16: 3 steps an epoch, 15 in all, probes at steps 0, 2, …, 14.
    assert_eq!(doc["probes"], 8);
    for k in ["1", "2", "3"] {
        let g = doc["groups"][k].as_array().unwrap_or_else(|| panic!("groups {k}: {doc}"));
        assert_eq!(g.len().to_string(), k);
        assert_eq!(g.iter().map(|x| x.as_array().unwrap().len()).sum::<usize>(), 3);
    }
    assert!(std::fs::read_to_string(dir.join("a.svg")).unwrap().starts_with("<svg"));
    let bad = hydra(&["affinity", "--config", "c.toml", "--groups", "4"], &dir);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--groups"));
    // `hydra train`'s log carries the running affinity when the config asks for it.
    std::fs::write(dir.join("c2.toml"), TINY.replace("epochs = 5", "epochs = 5\naffinity_every = 2")).unwrap();
    let out = hydra(&["train", "--config", "c2.toml", "--log", "l.jsonl", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(dir.join("l.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(last["affinity"]["reg"]["bin"].is_number(), "{last}");
    let plain = hydra(&["train", "--config", "c.toml", "--log", "p.jsonl", "-q"], &dir);
    assert!(plain.status.success());
    assert!(!std::fs::read_to_string(dir.join("p.jsonl")).unwrap().contains("affinity"));
}

#[test]
fn train_with_groups_reports_the_grouping_against_all_in_one() {
    let dir = tmpdir("groups");
    tiny_data(&dir);
    let cfg = TINY.replace("epochs = 5", "epochs = 5\ngroups = [[\"reg\"], [\"bin\", \"cls\"]]");
    std::fs::write(dir.join("g.toml"), cfg).unwrap();
    let out = hydra(&["train", "--config", "g.toml", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("grouping [reg] [bin, cls]"), "{text}");
    // A task alone is its single-task model: Δ% exactly 0.
    let reg = text.lines().find(|l| l.starts_with("reg ") && l.split_whitespace().count() == 3).expect(&text);
    assert_eq!(reg.split_whitespace().nth(2), Some("+0.00"), "{text}");
    assert!(text.contains("Δm% all-in-one") && text.contains("grouped"), "{text}");
    assert!(text.contains("negative transfer"), "{text}");
}
