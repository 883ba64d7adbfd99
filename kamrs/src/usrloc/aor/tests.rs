use super::*;

fn new(user: &str, domain: Option<&str>, use_domain: bool) -> Result<String, AorError> {
    Aor::new(Cow::Borrowed(user), domain, use_domain).map(|a| a.as_str().to_owned())
}

#[test]
fn domain_kept_lower_cased_or_dropped() {
    assert_eq!(new("alice", Some("Example.COM"), false).unwrap(), "alice");
    assert_eq!(
        new("alice", Some("Example.COM"), true).unwrap(),
        "alice@example.com"
    );
    // tel: has no host: the number alone, whatever use_domain says.
    assert_eq!(new("+15551234567", None, true).unwrap(), "+15551234567");
    // The user's case is kept (RFC 3261 §19.1.4: user is case-sensitive).
    assert_eq!(new("Alice", None, false).unwrap(), "Alice");
    // Nothing to change: no copy.
    assert!(matches!(
        Aor::new(Cow::Borrowed("alice"), Some("h"), false)
            .unwrap()
            .into_cow(),
        Cow::Borrowed(_)
    ));
}

#[test]
fn what_cannot_round_trip_is_refused() {
    assert_eq!(new("", Some("h"), false), Err(AorError::EmptyUser));
    assert_eq!(
        new("victim@other.org", Some("h"), false),
        Err(AorError::AtInUser)
    );
    assert_eq!(
        new("victim@other.org", Some("h"), true),
        Err(AorError::AtInUser)
    );
    for bad in [
        "a\0b",
        "t\r\nX-Inj",
        "\x1b[2J",
        "a\x7f",
        "a\u{85}",
        "a\u{9b}b",
        "\x08",
    ] {
        assert_eq!(
            new(bad, None, false),
            Err(AorError::ControlInUser),
            "{bad:?}"
        );
    }
    for bad in ["", "ex ample.com", "a@b", "ex\r\nample", "e\u{90}"] {
        let want = if bad.is_empty() {
            AorError::EmptyDomain
        } else {
            AorError::BadDomain
        };
        assert_eq!(new("alice", Some(bad), true), Err(want), "{bad:?}");
        // A domain that is dropped is not looked at.
        assert_eq!(new("alice", Some(bad), false).unwrap(), "alice");
    }
    let long = "a".repeat(MAX_AOR_LEN + 1);
    assert_eq!(new(&long, None, false), Err(AorError::TooLong(257)));
    assert!(new(&long[1..], None, false).is_ok());
    assert_eq!(
        new(&long[10..], Some("example.com"), true),
        Err(AorError::TooLong(MAX_AOR_LEN - 9 + 12))
    );
    // Printable non-ASCII and escaped-legal characters stay.
    assert_eq!(new("jörg smith", None, false).unwrap(), "jörg smith");
}

#[test]
fn text_round_trips_what_new_makes() {
    for (user, domain, use_domain) in [
        ("alice", Some("example.com"), false),
        ("alice", Some("Example.com"), true),
        ("+1555", None, false),
        ("a;b=c", Some("h"), true),
    ] {
        let key = new(user, domain, use_domain).unwrap();
        assert_eq!(
            Aor::from_text(&key, use_domain).unwrap().as_str(),
            key,
            "{key}"
        );
    }
    assert_eq!(Aor::from_text("alice@x", false).unwrap().as_str(), "alice");
    assert_eq!(Aor::from_text("alice", true), Err(AorError::NoDomain));
    // tel: AoRs have no domain even with use_domain on.
    assert_eq!(
        Aor::from_text("+1-555-123", true).unwrap().as_str(),
        "+1-555-123"
    );
    assert_eq!(Aor::from_text("1001", true).unwrap().as_str(), "1001");
    assert_eq!(Aor::from_text("@x", true), Err(AorError::EmptyUser));
    assert_eq!(Aor::from_text("a@", true), Err(AorError::EmptyDomain));
    assert_eq!(Aor::from_text("a@b@c", true), Err(AorError::BadDomain));
    assert_eq!(Aor::from_text("a\r\n", false), Err(AorError::ControlInUser));
    assert_eq!(Aor::from_text("a\0@h", true), Err(AorError::ControlInUser));
}

#[test]
fn errors_say_what_is_wrong() {
    assert!(AorError::AtInUser.to_string().contains("%40"));
    assert!(AorError::NoDomain.to_string().contains("use_domain is on"));
    assert!(AorError::TooLong(300).to_string().contains("at most 256"));
    assert!(AorError::EmptyUser.to_string().contains("empty"));
}
