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
    toml::to_string(&doc).map_err(|e| Error::invalid("overrides", e.to_string()))
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
