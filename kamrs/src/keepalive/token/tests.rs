use super::*;

fn tokens() -> Tokens {
    Tokens::new([7; 32])
}

#[test]
fn a_call_id_names_its_binding_and_time() {
    let t = tokens();
    let id = t.call_id("alice@example.com", "uloc-1-2", 1_000_000);
    assert!(id.starts_with("ka-"));
    // Only Call-ID word characters, whatever the AoR holds.
    let odd = t.call_id("a b\"<>@x;y", "r\r\n", 5);
    assert!(
        odd.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        "{odd}"
    );
    let ping = t.verify(&id, 1_500_000, 1_000_000).expect("verifies");
    assert_eq!(
        (ping.binding(), ping.sent_us),
        (("alice@example.com", "uloc-1-2"), 1_000_000)
    );
    assert_eq!(
        t.verify(&odd, 5, 0).map(|p| p.binding().1.to_owned()),
        Some("r\r\n".into())
    );
}

#[test]
fn forged_altered_foreign_or_stale_call_ids_are_refused() {
    let t = tokens();
    let id = t.call_id("alice", "r1", 1_000_000);
    // Another process's secret.
    assert_eq!(Tokens::new([8; 32]).verify(&id, 1_000_001, 10), None);
    // Any character changed.
    for i in 3..id.len() {
        let mut b = id.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(b).unwrap();
        assert_eq!(t.verify(&altered, 1_000_001, 10), None, "{altered}");
    }
    // Pointing the valid MAC at another binding.
    let other = t.call_id("bob", "r1", 1_000_000);
    let mac = id.rsplit('.').next().unwrap();
    let spliced = format!("{}.{mac}", other.rsplit_once('.').unwrap().0);
    assert_eq!(t.verify(&spliced, 1_000_001, 10), None);
    // Too old, or from the future.
    assert_eq!(t.verify(&id, 1_000_011, 10), None);
    assert!(t.verify(&id, 1_000_010, 10).is_some());
    assert_eq!(t.verify(&id, 999_999, 10), None);
    // Not ours at all.
    for junk in [
        "",
        "ka-",
        "ka-..",
        "ka-zz.00.00",
        "abc@host",
        "ka-00.0000000000000000.00.extra",
    ] {
        assert_eq!(t.verify(junk, 1, 1), None, "{junk}");
    }
    assert_eq!(t.verify(&"ka-".repeat(MAX_CALL_ID), 1, 1), None);
}

proptest::proptest! {
    #[test]
    fn verify_never_panics(s in "\\PC{0,300}") {
        let _ = tokens().verify(&s, u64::MAX, u64::MAX);
    }

    #[test]
    fn what_is_made_verifies(aor in "(?s).{0,60}", ruid in "(?s).{0,40}", sent in 0u64..u64::MAX / 2) {
        let t = tokens();
        let id = t.call_id(&aor, &ruid, sent);
        let ping = t.verify(&id, sent, 0);
        let got = ping.as_ref().map(|p| (p.binding(), p.sent_us));
        proptest::prop_assert_eq!(got, Some(((aor.as_str(), ruid.as_str()), sent)));
    }
}
