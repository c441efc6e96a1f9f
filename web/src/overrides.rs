//! The page's choices (architecture, weighting method, epochs, …) applied to config text as
//! dotted keys, so the page sets exactly the keys a config file would.

use hydra::{Error, Result};

/// `toml_text` with each `"section.key": value` of the JSON object `overrides` set (the
/// section is created where missing; `null` removes the key). An empty string means no
/// overrides.
pub fn apply_overrides(toml_text: &str, overrides: &str) -> Result<String> {
    let mut doc: toml::Table =
        toml::from_str(toml_text).map_err(|e| Error::invalid("config", format!("not TOML: {e}")))?;
    if overrides.trim().is_empty() {
        return Ok(toml_text.to_string());
    }
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(overrides).map_err(|e| Error::invalid("overrides", format!("not a JSON object: {e}")))?;
    for (key, value) in map {
        let (section, leaf) = key
            .split_once('.')
            .ok_or_else(|| Error::invalid("overrides", format!("{key:?}: give it as section.key")))?;
        let table = doc
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| Error::invalid("overrides", format!("{key:?}: [{section}] is not a section")))?;
        if value.is_null() {
            table.remove(leaf);
            continue;
        }
        let value = to_toml(&value)
            .ok_or_else(|| Error::invalid("overrides", format!("{key:?}: {value} is not a TOML value")))?;
        table.insert(leaf.to_string(), value);
    }
    fit_model_to_arch(&mut doc);
    toml::to_string(&doc).map_err(|e| Error::invalid("overrides", e.to_string()))
}

/// After the page switched `[model] arch`: the layer sizes follow (a hard-sharing `trunk`
/// becomes each expert's `expert` layers and back), and the keys the new architecture does not
/// take are dropped (so their defaults apply), as [`hydra::config::MODEL_KEY_OWNERS`] says.
fn fit_model_to_arch(doc: &mut toml::Table) {
    let Some(model) = doc.get_mut("model").and_then(toml::Value::as_table_mut) else { return };
    let arch = model.get("arch").and_then(toml::Value::as_str).unwrap_or("hps").to_string();
    let takes = |key: &str| {
        hydra::config::MODEL_KEY_OWNERS
            .iter()
            .find(|(k, _)| *k == key)
            .is_none_or(|(_, archs)| archs.iter().any(|a| a.name() == arch))
    };
    for (from, to) in [("trunk", "expert"), ("expert", "trunk")] {
        if !takes(from) && takes(to) && !model.contains_key(to) {
            if let Some(v) = model.remove(from) {
                model.insert(to.to_string(), v);
            }
        }
    }
    model.retain(|k, _| takes(k));
}

fn to_toml(v: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(a.iter().map(to_toml).collect::<Option<_>>()?),
        J::Null | J::Object(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_keys_and_create_sections() {
        let text = "[train]\nepochs = 150\nlr = 3e-3\n";
        let out = apply_overrides(
            text,
            r#"{"train.epochs": 5, "train.lr": null, "weighting.method": "pcgrad", "model.trunk": [8, 8]}"#,
        )
        .expect("applies");
        let doc: toml::Table = toml::from_str(&out).expect("toml");
        assert_eq!(doc["train"]["epochs"].as_integer(), Some(5));
        assert!(doc["train"].get("lr").is_none());
        assert_eq!(doc["weighting"]["method"].as_str(), Some("pcgrad"));
        assert_eq!(doc["model"]["trunk"].as_array().map(Vec::len), Some(2));
        assert_eq!(apply_overrides(text, "").expect("none"), text);
    }

    #[test]
    fn switching_the_architecture_carries_the_layers_and_drops_foreign_keys() {
        let hps = "[model]\ntrunk = [64, 64]\nhead = [8]\n";
        for arch in ["mmoe", "omoe", "cgc", "ple", "dselect_k"] {
            let out = apply_overrides(hps, &format!(r#"{{"model.arch": "{arch}"}}"#)).expect("applies");
            let doc: toml::Table = toml::from_str(&out).expect("toml");
            assert_eq!(doc["model"].get("expert").and_then(|v| v.as_array()).map(Vec::len), Some(2), "{arch}");
            assert!(doc["model"].get("trunk").is_none(), "{arch}");
            assert!(doc["model"].get("head").is_some(), "{arch}: every architecture takes heads");
        }
        let mmoe = "[model]\narch = \"mmoe\"\nexperts = 4\nexpert = [32]\n";
        let out = apply_overrides(mmoe, r#"{"model.arch": "hps"}"#).expect("applies");
        let doc: toml::Table = toml::from_str(&out).expect("toml");
        assert_eq!(doc["model"].get("trunk").and_then(|v| v.as_array()).map(Vec::len), Some(1));
        assert!(doc["model"].get("experts").is_none() && doc["model"].get("expert").is_none());
        // The result is a config the library takes.
        for arch in ["hps", "mmoe", "omoe", "cgc", "ple", "cross_stitch", "dselect_k"] {
            let text = "[data]\ndataset = \"energy\"\n[[task]]\nname = \"heating\"\ntarget = \"heating_load\"\n\
                        kind = \"regression\"\n[model]\ntrunk = [16]\n";
            let (cfg, _) = crate::page_config(text, &format!(r#"{{"model.arch": "{arch}"}}"#)).expect(arch);
            assert_eq!(cfg.raw.model.arch, arch);
        }
    }

    #[test]
    fn bad_overrides_name_the_key() {
        let text = "[train]\nepochs = 1\n";
        let e = apply_overrides(text, r#"{"epochs": 5}"#).expect_err("no section");
        assert!(e.to_string().contains("section.key"), "{e}");
        let e = apply_overrides(text, r#"{"train.epochs": {"a": 1}}"#).expect_err("object");
        assert!(e.to_string().contains("train.epochs"), "{e}");
        let e = apply_overrides("train = 3\n", r#"{"train.epochs": 1}"#).expect_err("not a section");
        assert!(e.to_string().contains("[train] is not a section"), "{e}");
    }
}
