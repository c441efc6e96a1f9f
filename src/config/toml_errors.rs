//! TOML and type errors in plain words, with the key they are about: `line 30, column 6:
//! train.lr: expected a number, found the string "fast"` rather than serde's `invalid type:
//! string "fast", expected f32`.

/// The (key, message) of a TOML error in `text`: the key is `line L, column C` and, where the
/// error points into a value or a table, that value's dotted path (`train.lr`,
/// `task[1].classes`); the message names types in the words of the config, not Rust's.
pub fn describe(text: &str, e: &toml::de::Error) -> (String, String) {
    let message = plain(e.message());
    let Some(span) = e.span() else { return ("?".into(), message) };
    let upto = &text[..span.start.min(text.len())];
    let line = upto.matches('\n').count() + 1;
    let col = upto.len() - upto.rfind('\n').map_or(0, |i| i + 1) + 1;
    let at = format!("line {line}, column {col}");
    match key_at(text, line) {
        Some(key) => (format!("{at}: {key}"), message),
        None => (at, message),
    }
}

/// The dotted path of the key set on line `line` (1-based), or of the table it opens, from the
/// nearest table header above it (`[train]`, `[[task]]` counted as `task[i]`).
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut key = None;
    for (i, raw) in text.lines().enumerate().take(line) {
        let l = raw.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
            key = None;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
            key = None;
        } else if i + 1 == line {
            key = l.split('=').next().map(|k| k.trim().trim_matches('"').to_string()).filter(|k| !k.is_empty());
        }
    }
    match (table.is_empty(), key) {
        (true, None) => None,
        (true, Some(k)) => Some(k),
        (false, None) => Some(table),
        (false, Some(k)) => Some(format!("{table}.{k}")),
    }
}

/// serde's wording of a type error in the config's words.
fn plain(message: &str) -> String {
    let m = message.trim();
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = m.strip_prefix(lead) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                return format!("expected {}, found {}", expected_words(expected), found_words(found));
            }
        }
    }
    if let Some(field) = m.strip_prefix("missing field ") {
        return format!("missing key {field}");
    }
    m.replace("unknown field", "unknown key")
}

fn expected_words(e: &str) -> String {
    match e.trim() {
        "f32" | "f64" => "a number".into(),
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number of at least 0".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "a borrowed string" => "a string".into(),
        "a sequence" => "a list".into(),
        e if e.starts_with("an array of length") => e.replace("an array", "a list"),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        other => other.to_string(),
    }
}

fn found_words(f: &str) -> String {
    let f = f.trim();
    for (serde, plain) in
        [("string ", "the string "), ("integer ", "the number "), ("floating point ", "the number "), ("boolean ", "")]
    {
        if let Some(v) = f.strip_prefix(serde) {
            return format!("{plain}{}", v.trim_matches('`'));
        }
    }
    match f {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{key_at, plain};

    #[test]
    fn keys_follow_table_headers_and_count_array_tables() {
        let text = "[data]\npath = \"d.csv\"\n[[task]]\nname = \"a\"\n[[task]]\nname = \"b\"\nclasses = \"x\"\n[train]\nlr = 1\n";
        assert_eq!(key_at(text, 2).as_deref(), Some("data.path"));
        assert_eq!(key_at(text, 7).as_deref(), Some("task[1].classes"));
        assert_eq!(key_at(text, 9).as_deref(), Some("train.lr"));
        assert_eq!(key_at(text, 8).as_deref(), Some("train"));
    }

    #[test]
    fn serde_type_words_become_the_configs() {
        assert_eq!(
            plain("invalid type: string \"fast\", expected f32"),
            "expected a number, found the string \"fast\""
        );
        assert_eq!(
            plain("invalid value: integer `-1`, expected usize"),
            "expected a whole number of at least 0, found the number -1"
        );
        assert_eq!(plain("invalid type: sequence, expected a string"), "expected a string, found a list");
        assert_eq!(plain("missing field `kind`"), "missing key `kind`");
    }
}
