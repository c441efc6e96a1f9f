//! Transfer to new tasks: a checkpoint's trunk carries over, new heads start fresh, a frozen
//! trunk stays byte-for-byte the same, and the new task learns.

use std::path::{Path, PathBuf};
use std::process::Command;

use hydra::checkpoint::Checkpoint;

fn hydra(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hydra")).args(args).current_dir(dir).output().expect("run hydra")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hydra-transfer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn task(name: &str) -> String {
    format!("[[task]]\nname = \"{name}\"\nkind = \"regression\"\n")
}

fn config(tasks: &[&str], extra_train: &str) -> String {
    let t: String = tasks.iter().map(|n| task(n)).collect();
    format!(
        "[data]\npath = \"d.csv\"\nfeatures = [\"x0\", \"x1\", \"x2\", \"x3\"]\n{t}[model]\ntrunk = [16, 16]\n[train]\nlr = 0.01\nbatch_size = 32\nepochs = 30\npatience = 0\n{extra_train}"
    )
}

#[test]
fn a_new_task_on_a_frozen_trunk_learns_and_the_trunk_does_not_change() {
    let dir = tmpdir("abc");
    let mut rng = hydra::cpu::Rng::new(3);
    let mut csv = String::from("x0,x1,x2,x3,a,b,c\n");
    for _ in 0..300 {
        let x: Vec<f64> = (0..4).map(|_| rng.range(-1.0, 1.0)).collect();
        let a = x[0] + x[1] * x[2];
        let b = x[0] - x[3];
        let c = (x[0] + x[1]).tanh() + 0.5 * x[3];
        csv += &format!("{},{},{},{},{a},{b},{c}\n", x[0], x[1], x[2], x[3]);
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(dir.join("ab.toml"), config(&["a", "b"], "")).unwrap();
    std::fs::write(dir.join("abc.toml"), config(&["a", "b", "c"], "freeze = [\"trunk\"]\n")).unwrap();
    let out = hydra(&["train", "--config", "ab.toml", "--save", "ab.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hydra(
        &["train", "--config", "abc.toml", "--init", "ab.safetensors", "--save", "abc.safetensors", "--log", "l.jsonl"],
        &dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heads.c starts fresh"), "the new head is reported: {err}");

    let before = Checkpoint::load(&dir.join("ab.safetensors")).unwrap();
    let after = Checkpoint::load(&dir.join("abc.safetensors")).unwrap();
    for name in ["trunk.0.weight", "trunk.0.bias", "trunk.1.weight", "trunk.1.bias"] {
        let (a, b) = (&before.tensors[name].1, &after.tensors[name].1);
        assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} changed under freeze");
        // No optimizer state for frozen parameters: it stays zero.
        assert!(
            after.tensors[&format!("optim.exp_avg.{name}")].1.iter().all(|&v| v == 0.0),
            "{name} has optimizer state"
        );
    }
    assert!(after.tensors.contains_key("heads.c.0.weight"));
    let log = std::fs::read_to_string(dir.join("l.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines[0]["test_metrics"]["c"]["rmse"].is_number(), "each evaluation reports the test split too");
    let first = lines[0]["train_loss"]["c"].as_f64().unwrap();
    let last = lines.last().unwrap()["train_loss"]["c"].as_f64().unwrap();
    assert!(last < 0.5 * first, "task c's loss {first} -> {last}");
}

#[test]
fn a_cooling_head_on_a_heating_trunk_comes_close_to_the_joint_model() {
    let dir = tmpdir("energy");
    let base = "[data]\ndataset = \"energy\"\n";
    let heat = "[[task]]\nname = \"heating\"\ntarget = \"heating_load\"\nkind = \"regression\"\n";
    let cool = "[[task]]\nname = \"cooling\"\ntarget = \"cooling_load\"\nkind = \"regression\"\n";
    let model = "[model]\ntrunk = [64, 64]\n";
    let train = "[train]\nlr = 3e-3\nbatch_size = 64\nepochs = 150\npatience = 30\n";
    // The other target must not become a feature: name it in `ignore`.
    let heat_only = format!("{base}ignore = [\"cooling_load\"]\n");
    let cool_only = format!("{base}ignore = [\"heating_load\"]\n");
    std::fs::write(dir.join("heat.toml"), format!("{heat_only}{heat}{model}{train}")).unwrap();
    std::fs::write(dir.join("joint.toml"), format!("{base}{heat}{cool}{model}{train}")).unwrap();
    std::fs::write(dir.join("cool.toml"), format!("{cool_only}{cool}{model}{train}freeze = [\"trunk\"]\n")).unwrap();
    for (args, what) in [
        (vec!["train", "--config", "heat.toml", "--save", "heat.safetensors", "-q"], "heating"),
        (vec!["train", "--config", "joint.toml", "--metrics-json", "joint.json", "-q"], "joint"),
        (
            vec!["train", "--config", "cool.toml", "--init", "heat.safetensors", "--metrics-json", "cool.json", "-q"],
            "transfer",
        ),
    ] {
        let out = hydra(&args, &dir);
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |f: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        v["tasks"]["cooling"]["test"]["rmse"].as_f64().unwrap()
    };
    let (joint, transfer) = (read("joint.json"), read("cool.json"));
    eprintln!("cooling test RMSE: joint model {joint:.4}, head on the frozen heating trunk {transfer:.4}");
    // Predicting the mean scores about 9.5 kWh/m² on this split; both are far below it, and
    // the transferred head stays within a factor two of the jointly trained one.
    assert!(transfer < 2.0 * joint, "transfer {transfer} vs joint {joint}");
    assert!(transfer < 3.0, "transfer {transfer}");
}

/// `--init` once built its trainer with equal weighting whatever `[weighting]` said; every
/// start now goes through one builder that reads the config's weighting.
#[test]
fn a_run_started_with_init_uses_the_configs_weighting_method() {
    use hydra::config::Config;
    use hydra::experiment::{self, RunOptions};
    let dir = tmpdir("init-weighting");
    let mut rng = hydra::cpu::Rng::new(5);
    let mut csv = String::from("x0,x1,x2,x3,a,b\n");
    for _ in 0..200 {
        let x: Vec<f64> = (0..4).map(|_| rng.range(-1.0, 1.0)).collect();
        // Two tasks that pull the shared layer apart: their gradients conflict.
        csv += &format!("{},{},{},{},{},{}\n", x[0], x[1], x[2], x[3], x[0] + x[1] * x[2], -x[0] + 0.3 * x[3]);
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(dir.join("ab.toml"), config(&["a", "b"], "")).unwrap();
    let out = hydra(&["train", "--config", "ab.toml", "--save", "ab.safetensors", "-q"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for method in ["uw", "pcgrad"] {
        let text = config(&["a", "b"], "") + &format!("[weighting]\nmethod = \"{method}\"\n");
        let cfg = Config::parse("init.toml", &text, dir.clone()).unwrap();
        let prepared = experiment::prepare(&cfg).unwrap();
        // A context of its own, so that its submit counter sees this run alone.
        let ctx = hydra::Context::new().expect("GPU tests need an adapter");
        let opts = RunOptions { init: Some(dir.join("ab.safetensors")), ..Default::default() };
        let before = ctx.counters().submits;
        let (outcome, tr) = experiment::run(&ctx, &cfg, &prepared, &opts, &mut |_| {}, &mut |_| {}).unwrap();
        let submits = ctx.counters().submits - before;
        assert_eq!(tr.weighter().method.name(), method, "the trainer runs the config's method");
        let steps = outcome.report.steps;
        assert!(steps > 0);
        match method {
            "uw" => {
                // The log-variances are learned (they start at 0) and saved with the model.
                let ck = experiment::snapshot_checkpoint(&cfg, &prepared, &tr).unwrap();
                let (shape, s) = &ck.tensors["weighting.log_var"];
                assert_eq!(shape, &vec![2]);
                assert!(s.iter().all(|v| *v != 0.0), "log-variances did not move: {s:?}");
                let w = &outcome.report.history.last().unwrap().weights;
                assert!(w.iter().any(|v| (v - 1.0).abs() > 1e-4), "uw's weights are logged: {w:?}");
            }
            _ => {
                // A gradient method reads the Gram matrix back: two submits a step, where
                // equal weighting takes one.
                assert!(submits >= 2 * steps, "{submits} submits for {steps} steps");
            }
        }
    }
}
