//! Config errors, one test per kind: each names the file and the key.

use std::path::PathBuf;

use hydra::config::Config;

const GOOD: &str = r#"
[data]
dataset = "energy"
[[task]]
name = "heating"
target = "heating_load"
kind = "regression"
[[task]]
name = "cooling"
target = "cooling_load"
kind = "regression"
"#;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse("cfg.toml", text, PathBuf::from(".")).map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    parse(text).err().unwrap_or_else(|| panic!("must fail:\n{text}"))
}

#[test]
fn a_good_config_validates_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.tasks.len(), 2);
    assert_eq!(c.trunk, vec![256, 256]);
    assert_eq!(c.train.batch_size, 256);
    assert_eq!(c.train.optimizer, hydra::Optimizer::adam(1e-3));
    assert!(c.standardize);
}

#[test]
fn unknown_key_is_named_with_its_position() {
    let e = err(&GOOD.replace("[data]", "[data]\nlearning_rate = 3"));
    assert!(e.contains("cfg.toml: line 3, column 1: data.learning_rate: unknown key `learning_rate`"), "{e}");
}

#[test]
fn mistyped_value_is_named_with_its_key_and_the_expected_type_in_plain_words() {
    let e = err(&format!("{GOOD}\n[train]\nbatch_size = \"big\"\n"));
    assert!(e.contains("train.batch_size: expected a whole number of at least 0, found the string \"big\""), "{e}");
    let e = err(&format!("{GOOD}\n[train]\nlr = \"fast\"\n"));
    let line = GOOD.lines().count() + 3;
    let want = format!("cfg.toml: line {line}, column 6: train.lr: expected a number, found the string \"fast\"");
    assert!(e.contains(&want), "{e}\nwant {want}");
    let e = err(&format!("{GOOD}\n[model]\nhead = 16\n"));
    assert!(e.contains("model.head: expected a list, found the number 16"), "{e}");
}

#[test]
fn split_fractions_must_sum_to_one() {
    let e = err(&GOOD.replace("dataset = \"energy\"", "dataset = \"energy\"\nsplit = [0.7, 0.2, 0.2]"));
    assert!(e.contains("data.split") && e.contains("sum to 1"), "{e}");
}

#[test]
fn duplicate_task_names_are_refused() {
    let e = err(&GOOD.replace("name = \"cooling\"", "name = \"heating\""));
    assert!(e.contains("task[1].name") && e.contains("duplicate"), "{e}");
}

#[test]
fn unknown_task_kind_and_mismatched_loss_are_refused() {
    let e = err(&GOOD.replace("kind = \"regression\"\n[[task]]", "kind = \"ordinal\"\n[[task]]"));
    assert!(e.contains("task[0].kind") && e.contains("ordinal"), "{e}");
    let e = err(&GOOD.replace("kind = \"regression\"\n[[task]]", "kind = \"regression\"\nloss = \"bce\"\n[[task]]"));
    assert!(e.contains("task[0].loss") && e.contains("mse, l1 or huber"), "{e}");
}

#[test]
fn multiclass_needs_classes() {
    let e = err(&GOOD.replace("kind = \"regression\"\n[[task]]", "kind = \"multiclass\"\n[[task]]"));
    assert!(e.contains("task[0].classes") && e.contains("need classes"), "{e}");
}

#[test]
fn impossible_model_sizes_are_refused() {
    let e = err(&format!("{GOOD}\n[model]\ntrunk = [64, 0]\n"));
    assert!(e.contains("model.trunk[1]"), "{e}");
    let e = err(&format!("{GOOD}\n[model]\nactivation = \"swishy\"\n"));
    assert!(e.contains("model.activation"), "{e}");
}

#[test]
fn bad_optimizer_settings_are_refused() {
    let e = err(&format!("{GOOD}\n[train]\noptimizer = \"rmsprop\"\n"));
    assert!(e.contains("train.optimizer"), "{e}");
    let e = err(&format!("{GOOD}\n[train]\nlr = -1.0\n"));
    assert!(e.contains("train") && e.contains("lr"), "{e}");
    let e = err(&format!("{GOOD}\n[train]\nepochs = 3\nsteps = 10\n"));
    assert!(e.contains("train.steps"), "{e}");
    let e = err(&format!("{GOOD}\n[train]\nbatch_size = 0\n"));
    assert!(e.contains("train.batch_size"), "{e}");
}

#[test]
fn exactly_one_data_source() {
    let e = err(&GOOD.replace("dataset = \"energy\"", "dataset = \"energy\"\npath = \"x.csv\""));
    assert!(e.contains("data") && e.contains("exactly one"), "{e}");
}

#[test]
fn no_task_is_an_error() {
    let e = err("[data]\ndataset = \"energy\"\n");
    assert!(e.contains("[[task]]"), "{e}");
}

#[test]
fn unknown_weighting_method_is_refused() {
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"magic\"\n"));
    assert!(e.contains("weighting.method") && e.contains("magic"), "{e}");
}

#[test]
fn every_weighting_method_parses_with_libmtl_defaults() {
    use hydra::mtl::weighting::{registry, Method, MgdaNorm, Target};
    for name in registry::names() {
        let c = parse(&format!("{GOOD}\n[weighting]\nmethod = \"{name}\"\n")).unwrap();
        assert_eq!(c.weighting.name(), name);
        assert_eq!(c.weighting, registry::by_name(name).unwrap().default);
        // The default target is the first the method takes: the parameters, as LibMTL, except
        // for GradDrop, which takes the representation only.
        let want = if name == "graddrop" { Target::Representation } else { Target::Params };
        assert_eq!(c.target, want, "{name}");
    }
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"graddrop\"\ntarget = \"params\"\n"));
    assert!(e.contains("weighting.target") && e.contains("representation"), "{e}");
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"moco\"\ntarget = \"representation\"\n"));
    assert!(e.contains("weighting.target") && e.contains("params"), "{e}");
    let c = parse(&format!("{GOOD}\n[weighting]\nmethod = \"cagrad\"\n")).unwrap();
    assert_eq!(c.weighting, Method::CaGrad { c: 0.5, rescale: 1 });
    let c = parse(&format!("{GOOD}\n[weighting]\nmethod = \"mgda\"\nnorm = \"loss+\"\ntarget = \"representation\"\n"))
        .unwrap();
    assert_eq!(c.weighting, Method::Mgda { norm: MgdaNorm::LossPlus });
    assert_eq!(c.target, Target::Representation);
    assert_eq!(
        parse(&format!("{GOOD}\n[weighting]\nmethod = \"gradnorm\"\n")).unwrap().weighting,
        Method::GradNorm { alpha: 1.5 }
    );
}

#[test]
fn a_weighting_parameter_of_another_method_is_refused() {
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"pcgrad\"\nalpha = 2.0\n"));
    assert!(e.contains("weighting.alpha") && e.contains("gradnorm, fairgrad, not of pcgrad"), "{e}");
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"uw\"\ntarget = \"params\"\n"));
    assert!(e.contains("weighting.target"), "{e}");
    let e = err(&format!("{GOOD}\n[weighting]\nmethod = \"mgda\"\nnorm = \"l3\"\n"));
    assert!(e.contains("weighting.norm") && e.contains("l3"), "{e}");
}

#[test]
fn every_example_config_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            Config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 5, "expected the example configs, found {n}");
}

#[test]
fn the_registry_lists_every_method_once_and_readme_shows_its_table() {
    use hydra::mtl::weighting::{registry, Method, Runs};
    let names = registry::names();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a name listed twice: {names:?}");
    for e in registry::REGISTRY {
        // Every entry maps back to itself through its method (no two share a variant).
        assert_eq!(e.default.entry().name, e.name);
        assert_eq!(Method::by_name(e.name).unwrap(), e.default);
        // Loss weightings take no gradient target; gradient methods take one.
        assert_eq!(e.targets.is_empty(), !e.runs.uses_gradients(), "{}", e.name);
    }
    assert_eq!(Method::Uw.runs(), Runs::GpuInStep);
    assert!(Method::PcGrad.uses_gradients() && !Method::Rlw.uses_gradients());
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = registry::markdown_table();
    assert!(readme.contains(&table), "README's method table differs from the registry's; put this in README:\n{table}");
}

#[test]
fn categorical_embedding_impute_and_label_keys_are_checked() {
    let e = err(&GOOD.replace("[data]", "[data]\ncategorical = [\"heating_load\"]"));
    assert!(e.contains("data.categorical") && e.contains("heating_load") && e.contains("target"), "{e}");
    let e = err(&GOOD.replace("[data]", "[data]\nembedding_dim = 0"));
    assert!(e.contains("data.embedding_dim") && e.contains("at least one"), "{e}");
    let e = err(&GOOD.replace("[data]", "[data]\nembedding_dim = { zip = 0 }"));
    assert!(e.contains("data.embedding_dim.zip"), "{e}");
    let e = err(&GOOD.replace("[data]", "[data]\nimpute = \"median\""));
    assert!(e.contains("data.impute") && e.contains("mean"), "{e}");
    let e =
        err(&GOOD
            .replace("kind = \"regression\"\n[[task]]", "kind = \"binary\"\nlabels = [\"a\", \"b\", \"c\"]\n[[task]]"));
    assert!(e.contains("task[0].labels") && e.contains("3 labels for 2 classes"), "{e}");
    let e = err(&GOOD.replace("kind = \"regression\"\n[[task]]", "kind = \"regression\"\nlabels = [\"a\"]\n[[task]]"));
    assert!(e.contains("task[0].labels"), "{e}");
    let c =
        parse(&GOOD.replace(
            "kind = \"regression\"\n[[task]]",
            "kind = \"multiclass\"\nlabels = [\"a\", \"b\", \"c\"]\n[[task]]",
        ))
        .unwrap();
    assert_eq!(c.tasks[0].classes(), 3, "classes from the labels");
}

#[test]
fn groups_put_every_task_in_exactly_one_group() {
    let with = |g: &str| format!("{GOOD}[train]\ngroups = {g}\n");
    let c = parse(&with(r#"[["cooling"], ["heating"]]"#)).unwrap();
    assert_eq!(c.groups, vec![vec![1], vec![0]]);
    assert!(parse(GOOD).unwrap().groups.is_empty());
    // A group's model sees its tasks only, and the other tasks' targets never as features.
    let g = hydra::experiment::groups::group_config(&c, &[1]);
    assert_eq!(g.tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["cooling"]);
    assert!(g.raw.data.ignore.contains(&"heating_load".to_string()) && g.groups.is_empty());
    let prepared = hydra::experiment::prepare(&g).unwrap();
    assert!(
        !prepared.splits.train.feature_names.contains(&"heating_load".to_string()),
        "{:?}",
        prepared.splits.train.feature_names
    );
    for (g, says) in [
        (r#"[["heating", "heating"], ["cooling"]]"#, "\"heating\" is in groups 0 and 0"),
        (r#"[["heating"], ["nope"]]"#, "\"nope\" in group 1 is not a task"),
        (r#"[["heating"]]"#, "\"cooling\" is in no group"),
        (r#"[["heating", "cooling"], []]"#, "group 1 is empty"),
    ] {
        let e = err(&with(g));
        assert!(e.contains("train.groups") && e.contains(says), "{g}: {e}");
    }
}
