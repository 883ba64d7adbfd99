//! `kamrs.example.toml` (repository root) must stay the truth: every key
//! `kamrs --print-config` prints appears in it, and with its commented-out
//! keys uncommented it is exactly the built-in default.

use std::collections::BTreeSet;

use kamrs::config::Config;

fn example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../kamrs.example.toml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The file with every commented-out key (`#key = value`, no space after
/// the `#`) made active; explanations (`# …`) stay comments.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Every key as `table.key` (top-level keys bare).
fn keys(text: &str) -> BTreeSet<String> {
    let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut out = BTreeSet::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(inner) => {
                out.extend(inner.keys().map(|ik| format!("{k}.{ik}")));
            }
            _ => {
                out.insert(k.clone());
            }
        }
    }
    out
}

#[test]
fn example_config_as_shipped_loads_as_the_default() {
    let text = example();
    let config = Config::from_toml_str(&text, "kamrs.example.toml")
        .unwrap_or_else(|e| panic!("kamrs.example.toml does not load: {e}"));
    assert_eq!(config, Config::default());
}

#[test]
fn example_config_uncommented_is_exactly_the_default() {
    let text = uncommented(&example());
    let config =
        Config::from_toml_str(&text, "kamrs.example.toml (uncommented)").unwrap_or_else(|e| {
            panic!("kamrs.example.toml with its keys uncommented does not load: {e}")
        });
    assert_eq!(
        config.to_toml_string(),
        Config::default().to_toml_string(),
        "a value in kamrs.example.toml is not the built-in default"
    );
    assert_eq!(config, Config::default());
}

#[test]
fn example_config_names_every_key_of_print_config() {
    let printed = keys(&Config::default().to_toml_string());
    let listed = keys(&uncommented(&example()));
    let missing: Vec<_> = printed.difference(&listed).collect();
    assert!(missing.is_empty(), "kamrs.example.toml lacks {missing:?}");
    // Keys without a default are not printed; they are shown as examples.
    let text = example();
    for key in ["token_file = ", "realm = "] {
        assert!(
            text.contains(key),
            "kamrs.example.toml does not mention {key}"
        );
    }
}

#[test]
fn uncommenting_leaves_explanations_alone() {
    assert_eq!(
        uncommented("# a note\n#max_expires = 1\n#\n[ctl]\n"),
        "# a note\nmax_expires = 1\n#\n[ctl]\n"
    );
}
