//! Data-parallel training under a real `mpirun` (Open MPI), with the `mpi` feature:
//! `cargo test --release --features mpi --test mpi` (CI runs it). Two ranks with the global
//! batch give one process's parameters for ew, uw and pcgrad; a rank that dies ends the run
//! with an error naming it, the last checkpoint stays good, and `--resume` under `mpirun`
//! ends bit-identical to the run that was not interrupted.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hydra::Checkpoint;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hydra-mpi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn config(d: &Path, method: &str, epochs: usize) -> PathBuf {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/energy.toml")).expect("example");
    let text = text
        .replace("epochs = 150", &format!("epochs = {epochs}"))
        .replace("method = \"ew\"", &format!("method = \"{method}\""));
    let p = d.join(format!("{method}.toml"));
    std::fs::write(&p, text).expect("config");
    p
}

fn mpirun(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_hydra")]).args(args);
    for (k, v) in env {
        // Open MPI passes the launching environment on to every rank.
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("mpirun could not start ({e}): apt-get install openmpi-bin libopenmpi-dev"))
}

fn hydra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydra")).args(args).output().expect("hydra")
}

fn params(p: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = Checkpoint::load(p).expect("checkpoint");
    let mut v: Vec<(String, Vec<f32>)> =
        ck.tensors.iter().filter(|(k, _)| !k.contains("optim")).map(|(k, (_, x))| (k.clone(), x.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn two_ranks_give_one_process_parameters_for_ew_uw_and_pcgrad() {
    let d = dir("equivalence");
    for method in ["ew", "uw", "pcgrad"] {
        let cfg = config(&d, method, 5);
        let cfg = cfg.to_str().expect("path");
        let (dp, sp) = (d.join(format!("{method}-2.safetensors")), d.join(format!("{method}-1.safetensors")));
        let o = mpirun(&["train", "--distributed", "--config", cfg, "--save", dp.to_str().expect("path")], &[]);
        ok(&o, "mpirun");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("data-parallel on 2 ranks"), "{method}: rank 0 reports the cost: {err}");
        ok(&hydra(&["train", "--config", cfg, "--save", sp.to_str().expect("path")]), "one process");
        let (a, b) = (params(&dp), params(&sp));
        assert_eq!(a.len(), b.len());
        let mut worst = 0.0f32;
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            worst = va.iter().zip(vb).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        }
        eprintln!("{method}: 2 ranks vs one process, largest parameter difference {worst:e}");
        assert!(worst < 1e-6, "{method}: 2 ranks and one process differ by {worst}");
    }
}

#[test]
fn a_rank_that_dies_ends_the_run_naming_it_and_resume_finishes_it_exactly() {
    let d = dir("failure");
    let cfg = config(&d, "ew", 6);
    let cfg = cfg.to_str().expect("path");
    let whole = d.join("whole.safetensors");
    ok(
        &mpirun(&["train", "--distributed", "--config", cfg, "--save", whole.to_str().expect("path")], &[]),
        "whole run",
    );

    let ck = d.join("run.safetensors");
    let ck_s = ck.to_str().expect("path");
    let args = ["train", "--distributed", "--config", cfg, "--save", ck_s, "--checkpoint-every", "20"];
    // A rank whose process dies (exit without a word): mpirun ends the job and names the
    // process, rank 1 of job J as [[J,1],1].
    let o = mpirun(&args, &[("HYDRA_DIST_FAIL", "1:31")]);
    assert!(!o.status.success(), "a dead rank must fail the run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("],1]") && err.contains("exited"), "mpirun names the dead rank: {err}");
    // The last checkpoint is the one of step 20, intact.
    let saved = Checkpoint::load(&ck).expect("the last good checkpoint loads");
    assert_eq!(saved.metadata.get("step").map(String::as_str), Some("20"));

    // A rank that fails with an error says so, naming itself, and ends every rank at once;
    // the checkpoint it could not reach stays the last good one.
    let o = mpirun(&args, &[("HYDRA_DIST_FAIL", "1:31:error")]);
    assert!(!o.status.success(), "a failed rank must fail the run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("hydra: rank 1 of 2: invalid HYDRA_DIST_FAIL"), "the error names the rank: {err}");
    let saved = Checkpoint::load(&ck).expect("the last good checkpoint loads");
    assert_eq!(saved.metadata.get("step").map(String::as_str), Some("20"));

    let resumed = mpirun(&["train", "--distributed", "--config", cfg, "--resume", ck_s, "--save", ck_s], &[]);
    ok(&resumed, "resume");
    assert_eq!(params(&ck), params(&whole), "the resumed run ends bit-identical to the whole one");
}
