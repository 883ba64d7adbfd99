use super::*;

/// Every key of `Config`, dotted, with its TOML value.
fn config_keys() -> Vec<(String, toml::Value)> {
    let mut c = super::super::Config::default();
    // Unset options are left out of the printed config; set them.
    c.auth.realm = Some("example.com".to_owned());
    c.ctl.token_file = Some("/etc/kamrs/ctl.token".into());
    c.events.webhook_token_file = Some("/etc/kamrs/webhook.token".into());
    c.tls.certificate = Some("/etc/kamrs/tls/fullchain.pem".into());
    c.tls.private_key = Some("/etc/kamrs/tls/privkey.pem".into());
    c.tls.ca_list = Some("/etc/kamrs/tls/clients-ca.pem".into());
    let doc: toml::Table = toml::from_str(&c.to_toml_string()).expect("printed config parses");
    let mut out = Vec::new();
    for (k, v) in &doc {
        if let Some(t) = v.as_table() {
            out.push((k.clone(), v.clone()));
            for (k2, v2) in t {
                out.push((format!("{k}.{k2}"), v2.clone()));
            }
        } else {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

#[test]
fn every_config_key_is_listed_with_a_kind_matching_its_type() {
    let keys = config_keys();
    for (key, value) in &keys {
        let kind = kind_of(key).unwrap_or_else(|| panic!("`{key}` is missing from KEYS"));
        let fits = match kind {
            Kind::Seconds | Kind::Milliseconds | Kind::Bytes | Kind::Count => value.is_integer(),
            Kind::Bool => value.is_bool(),
            Kind::Addresses | Kind::Strings(_) => value.is_array(),
            Kind::Text(_) | Kind::Choice(_) => value.is_str(),
            Kind::Table => value.is_table(),
        };
        assert!(
            fits,
            "`{key}` is listed as {kind:?} but its value is {value}"
        );
        if let (Kind::Choice(values), Some(default)) = (kind, value.as_str()) {
            assert!(
                values.contains(&default),
                "`{key}`: {default} not in {values:?}"
            );
        }
    }
    for (key, _) in KEYS {
        assert!(
            keys.iter().any(|(k, _)| k == key),
            "KEYS lists `{key}`, which Config does not have"
        );
    }
}

#[test]
fn every_choice_listed_is_accepted() {
    for (key, kind) in KEYS {
        let Kind::Choice(values) = kind else { continue };
        for v in *values {
            let text = match key.split_once('.') {
                Some((t, k)) => format!("[{t}]\n{k} = \"{v}\"\n"),
                None => format!("{key} = \"{v}\"\n"),
            };
            assert!(
                super::super::Config::from_toml_str(&text, "t").is_ok(),
                "{text}"
            );
        }
    }
}

#[test]
fn flag_numbers_are_described_in_words() {
    assert_eq!(flag_seconds("3600"), Ok(3600));
    assert_eq!(
        flag_seconds("1h").unwrap_err(),
        "expected a whole number of seconds, e.g. 3600"
    );
    assert_eq!(
        flag_seconds("-1").unwrap_err(),
        "expected a whole number of seconds, e.g. 3600; it cannot be negative"
    );
    assert_eq!(
        flag_count("99999999999").unwrap_err(),
        "expected a whole number, e.g. 10; at most 4294967295"
    );
}

#[test]
fn nearest_finds_typos_only() {
    let keys = keys_of("");
    assert_eq!(nearest("min_expire", &keys), Some("min_expires"));
    assert_eq!(nearest("max_expire", &keys), Some("max_expires"));
    assert_eq!(nearest("stor", &keys), Some("store"));
    assert_eq!(nearest("Listen", &keys), Some("listen"));
    assert_eq!(nearest("frobnicate", &keys), None);
    assert_eq!(nearest("x", &keys), None);
    assert_eq!(nearest("levle", &keys_of("log")), Some("level"));
    assert_eq!(distance("levle", "level"), 1);
    assert_eq!(distance("", "abc"), 3);
}
