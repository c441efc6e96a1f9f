//! The crate's layers: no import cycle between top-level modules, and the lower layers
//! import nothing above them (ARCHITECTURE.md's table). Reads the sources; needs no device.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code (not its comments) names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "bin" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let deps = out.entry(module.clone()).or_default();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + 7..];
                    let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != module && name.chars().next().unwrap().is_lowercase() {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let g = imports();
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(1) => panic!("import cycle: {} -> {m}", path.join(" -> ")),
            Some(2) => return,
            _ => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            visit(d, g, state, path);
        }
        path.pop();
        state.insert(m.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        visit(m, &g, &mut state, &mut Vec::new());
    }
    assert!(g.len() >= 15, "expected the crate's modules, found {:?}", g.keys());
}

#[test]
fn lower_layers_import_nothing_above_them() {
    let g = imports();
    // Each layer and what it may import (besides error, rng and shaders, the leaves).
    let allowed: &[(&str, &[&str])] = &[
        ("ir", &[]),
        ("cpu", &["ir"]),
        ("gpu", &[]),
        ("kernels", &["gpu", "ir"]),
        ("autograd", &["ir", "cpu"]),
        ("compile", &["ir", "cpu", "autograd", "gpu", "kernels"]),
        ("optim", &["cpu", "gpu", "kernels"]),
        ("nn", &["ir"]),
    ];
    let leaves = ["error", "rng", "shaders"];
    for (layer, ok) in allowed {
        let deps = g.get(*layer).unwrap_or_else(|| panic!("no module {layer}"));
        let bad: Vec<&String> =
            deps.iter().filter(|d| !ok.contains(&d.as_str()) && !leaves.contains(&d.as_str())).collect();
        assert!(bad.is_empty(), "{layer} imports {bad:?}, above it");
    }
}
