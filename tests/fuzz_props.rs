//! Property tests: random and mutated bytes fed to the CSV reader, the config reader and the
//! checkpoint reader give errors, never panics.

use std::path::{Path, PathBuf};

use hydra::checkpoint::Checkpoint;
use hydra::config::Config;
use hydra::data::{Dataset, Table};
use hydra::mtl::TaskDef;
use proptest::prelude::*;

fn tasks() -> Vec<TaskDef> {
    vec![TaskDef::regression("y", "y"), TaskDef::binary("b", "b"), TaskDef::multiclass("c", "c", 3)]
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "-?[0-9]{1,3}(\\.[0-9]{0,3})?",
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("\"1,5\"".to_string()),
        Just("\"".to_string()),
        "[a-z]{1,4}",
        Just("\r".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_csv_reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(t) = Table::parse("fuzz.csv", &bytes) {
            let _ = Dataset::from_table(&t, None, &[], &tasks(), None);
        }
    }

    #[test]
    fn the_csv_reader_never_panics_on_csv_like_text(
        header in proptest::collection::vec(prop_oneof![Just("x".to_string()), Just("y".to_string()), Just("b".to_string()), Just("c".to_string()), "[a-z]{1,3}"], 0..6),
        rows in proptest::collection::vec(proptest::collection::vec(csv_cell(), 0..7), 0..8),
        crlf in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = header.join(",");
        for r in &rows {
            text.push_str(nl);
            text.push_str(&r.join(","));
        }
        if let Ok(t) = Table::parse("fuzz.csv", text.as_bytes()) {
            match Dataset::from_table(&t, None, &[], &tasks(), None) {
                Ok(d) => prop_assert!(d.features.iter().all(|v| v.is_finite())),
                Err(e) => prop_assert!(e.to_string().contains("fuzz.csv") || e.to_string().contains("task")),
            }
        }
    }

    #[test]
    fn the_config_reader_never_panics(text in "(\\[\\[?[a-z]{1,8}\\]\\]?\n|[a-z_]{1,10} = (\"[a-z0-9_.]{0,8}\"|-?[0-9]{1,4}(\\.[0-9])?|\\[[0-9, .]{0,12}\\]|true)\n){0,12}") {
        let _ = Config::parse("fuzz.toml", &text, PathBuf::from("."));
    }

    #[test]
    fn the_checkpoint_reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Checkpoint::from_bytes(Path::new("fuzz.safetensors"), &bytes);
    }

    #[test]
    fn the_checkpoint_reader_never_panics_on_mutated_checkpoints(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut ck = Checkpoint::default();
        ck.insert("trunk.0.weight", &[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        ck.insert("trunk.0.bias", &[3], vec![0.5; 3]);
        ck.metadata.insert("tasks".into(), "[]".into());
        let mut bytes = ck.to_bytes().unwrap();
        for (at, v) in flips {
            let i = at % bytes.len();
            bytes[i] ^= v;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(c) = Checkpoint::from_bytes(Path::new("fuzz.safetensors"), &bytes) {
            let names = vec!["trunk.0.weight".to_string()];
            let _ = c.take(Path::new("fuzz.safetensors"), &names, &[vec![3, 2]]);
            let _ = hydra::experiment::checkpoint_info(&c, Path::new("fuzz.safetensors"));
        }
    }
}

#[test]
fn a_checkpoint_round_trips_exactly() {
    let mut ck = Checkpoint::default();
    ck.insert("trunk.0.weight", &[2, 3], vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE, 1e30, -0.0]);
    ck.insert("heads.a.0.bias", &[1], vec![7.0]);
    ck.metadata.insert("config".into(), "{\"x\": 1}".into());
    let dir = std::env::temp_dir().join(format!("hydra-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("rt.safetensors");
    ck.save(&p).unwrap();
    let back = Checkpoint::load(&p).unwrap();
    assert_eq!(back, ck);
    // The same contents give the same bytes.
    assert_eq!(ck.to_bytes().unwrap(), back.to_bytes().unwrap());
}
