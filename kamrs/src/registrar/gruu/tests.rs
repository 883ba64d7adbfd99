//! Temporary-GRUU tokens (sealing, opening, every way a token can be bad)
//! and the GRUUs of a 200 through `Registrar::handle`.

use super::*;
use crate::peer::{Peer, Proto};
use crate::registrar::Registrar;
use crate::sip::{parse_message, Limits, Message};

const INSTANCE: &str = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";

fn keys() -> GruuKeys {
    GruuKeys::from_secret(b"a test secret")
}

#[test]
fn a_token_opens_to_its_aor_and_names_its_binding_only() {
    let k = keys();
    let t = k.token("alice", INSTANCE, "call-1").unwrap();
    let opened = k.open(&t).unwrap();
    assert_eq!(opened.aor, "alice");
    let mut b = crate::usrloc::Binding::for_test("sip:a@192.0.2.1", u64::MAX);
    b = crate::usrloc::Binding::new(crate::usrloc::Parts {
        instance: Some(INSTANCE),
        call_id: "call-1",
        ..b.parts()
    });
    assert!(opened.names(&b));
    let other_call = crate::usrloc::Binding::new(crate::usrloc::Parts {
        call_id: "call-2",
        ..b.parts()
    });
    assert!(!opened.names(&other_call));
    let other_instance = crate::usrloc::Binding::new(crate::usrloc::Parts {
        instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000000>"),
        ..b.parts()
    });
    assert!(!opened.names(&other_instance));
    let no_instance = crate::usrloc::Binding::new(crate::usrloc::Parts {
        instance: None,
        ..b.parts()
    });
    assert!(!opened.names(&no_instance));
}

#[test]
fn tokens_are_deterministic_per_binding_and_differ_otherwise() {
    let k = keys();
    let t = k.token("alice", INSTANCE, "call-1").unwrap();
    assert_eq!(t, k.token("alice", INSTANCE, "call-1").unwrap());
    assert_eq!(t, keys().token("alice", INSTANCE, "call-1").unwrap());
    assert_ne!(t, k.token("alice", INSTANCE, "call-2").unwrap());
    assert_ne!(t, k.token("bob", INSTANCE, "call-1").unwrap());
    assert_ne!(t, k.token("alice", "<urn:uuid:other>", "call-1").unwrap());
    // The pair is length-prefixed: moving bytes between instance and
    // Call-ID gives another token.
    assert_ne!(
        k.token("alice", "ab", "c").unwrap(),
        k.token("alice", "a", "bc").unwrap()
    );
}

#[test]
fn a_token_reveals_nothing_of_the_aor_and_is_a_uri_user() {
    let k = keys();
    let aor = "alice.secret.name@example.com";
    let t = k.token(aor, INSTANCE, "call-1").unwrap();
    assert!(!t.contains("alice"));
    assert!(!t.contains("secret"));
    assert!(!t.contains("example"));
    assert!(t
        .bytes()
        .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
    // Nor in base32 clear text: the AoR's own encoding is not in it.
    assert!(!t.contains(&base32_encode(b"alice.secret")[..8]));
    assert!(t.len() <= MAX_TOKEN_LEN);
}

#[test]
fn an_altered_token_is_forged() {
    let k = keys();
    let t = k.token("alice", INSTANCE, "call-1").unwrap();
    let mut bytes = base32_decode(&t).unwrap();
    for i in [0, NONCE_LEN, bytes.len() / 2, bytes.len() - 1] {
        bytes[i] ^= 1;
        assert_eq!(
            k.open(&base32_encode(&bytes)),
            Err(TokenError::Forged),
            "byte {i}"
        );
        bytes[i] ^= 1;
    }
    assert!(k.open(&base32_encode(&bytes)).is_ok());
}

#[test]
fn another_secret_does_not_open_a_token() {
    let t = keys().token("alice", INSTANCE, "call-1").unwrap();
    let other = GruuKeys::from_secret(b"another secret");
    assert_eq!(other.open(&t), Err(TokenError::Forged));
    assert_eq!(GruuKeys::random().open(&t), Err(TokenError::Forged));
    assert_ne!(
        GruuKeys::random().token("alice", INSTANCE, "c"),
        GruuKeys::random().token("alice", INSTANCE, "c")
    );
}

#[test]
fn truncated_overlong_and_foreign_tokens_are_refused() {
    let k = keys();
    let t = k.token("alice", INSTANCE, "call-1").unwrap();
    // Cut by whole bytes (8 characters = 5 bytes) or to any length.
    for cut in [8, 16, t.len() / 2] {
        let short = &t[..t.len() - cut];
        assert!(k.open(short).is_err(), "cut {cut}");
    }
    assert_eq!(k.open(""), Err(TokenError::TooShort));
    assert_eq!(k.open("aaaaaaaa"), Err(TokenError::TooShort));
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(k.open(&long), Err(TokenError::TooLong(MAX_TOKEN_LEN + 1)));
    assert_eq!(
        k.open(&"a".repeat(1 << 20)),
        Err(TokenError::TooLong(1 << 20))
    );
    assert_eq!(k.open("not-base32!"), Err(TokenError::NotBase32));
    assert_eq!(k.open(&format!("1{}", &t[1..])), Err(TokenError::NotBase32));
    assert_eq!(k.open("abc%41"), Err(TokenError::NotBase32));
    // Upper case is the same base32.
    assert!(k.open(&t.to_ascii_uppercase()).is_ok());
    // The longest AoR fits; a longer one gets no token at all.
    let max = "a".repeat(MAX_AOR_LEN);
    let t = k.token(&max, INSTANCE, "c").unwrap();
    assert!(t.len() <= MAX_TOKEN_LEN);
    assert_eq!(k.open(&t).unwrap().aor, max);
    assert_eq!(k.token(&"a".repeat(MAX_AOR_LEN + 1), INSTANCE, "c"), None);
}

#[test]
fn base32_round_trips_and_refuses_what_no_encoding_gives() {
    for n in 0..40 {
        let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        let s = base32_encode(&bytes);
        assert_eq!(base32_decode(&s).as_deref(), Some(&bytes[..]), "{n}");
    }
    assert_eq!(base32_encode(b"foobar"), "mzxw6ytboi");
    // Impossible lengths and non-zero padding bits.
    assert_eq!(base32_decode("a"), None);
    assert_eq!(base32_decode("mzx"), None);
    assert_eq!(base32_decode("ma"), Some(b"`".to_vec()));
    assert_eq!(base32_decode("mb"), None);
    assert_eq!(base32_decode("0a"), None);
    assert_eq!(base32_decode("\u{e9}a"), None);
}

#[test]
fn derived_keys_are_distinct_per_label_and_secret() {
    let a = derive_key(b"s", ENC_LABEL);
    assert_eq!(a, derive_key(b"s", ENC_LABEL));
    assert_ne!(a, derive_key(b"s", NONCE_LABEL));
    assert_ne!(a, derive_key(b"t", ENC_LABEL));
    assert_ne!(a, derive_key(b"s", "kamrs record-route"));
}

#[test]
fn instance_ids_and_gr_values() {
    assert_eq!(
        instance_id(INSTANCE),
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    );
    assert_eq!(instance_id("urn:x"), "urn:x");
    assert_eq!(instance_id("<"), "<");
    let mut out = Vec::new();
    push_param_value(&mut out, "urn:a b\"c\\d;e");
    assert_eq!(out, b"urn:a%20b%22c%5Cd%3Be");
    let escaped = String::from_utf8(out).unwrap();
    assert_eq!(unescape_gr(&escaped).unwrap(), "urn:a b\"c\\d;e");
    assert_eq!(unescape_gr("%zz"), None);
    assert_eq!(unescape_gr("%4"), None);
}

// ---- the 200 of a REGISTER ----

fn peer() -> Peer {
    Peer {
        proto: Proto::Udp,
        remote: "192.0.2.1:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn register(call_id: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq}{call_id};rport\r\n\
         From: <sip:alice@Example.COM>;tag=f\r\n\
         To: <sip:alice@Example.COM>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn handle(reg: &Registrar, text: &str) -> String {
    let mut out = Vec::new();
    match parse_message(text.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => {
            assert!(reg.handle(&r, &peer(), &mut out).is_none());
        }
        other => panic!("{other:?}"),
    }
    String::from_utf8(out).unwrap()
}

fn contacts(reply: &str) -> Vec<&str> {
    reply
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("Contact: "))
        .collect()
}

fn quoted<'a>(contact: &'a str, name: &str) -> Option<&'a str> {
    let start = contact.find(&format!(";{name}=\""))? + name.len() + 3;
    let len = contact[start..].find('"')?;
    Some(&contact[start..start + len])
}

fn with_instance(instance: &str) -> String {
    format!("Supported: path, GRUU\r\nContact: <sip:alice@192.0.2.1:5060>;+sip.instance=\"{instance}\"\r\n")
}

#[test]
fn a_200_gives_public_and_temporary_gruus_to_a_ua_that_supports_them() {
    let reg = Registrar::default().with_secret(b"s");
    let reply = handle(&reg, &register("c1", 1, &with_instance(INSTANCE)));
    assert!(reply.starts_with("SIP/2.0 200 OK"), "{reply}");
    let c = contacts(&reply);
    assert_eq!(c.len(), 1);
    assert_eq!(
        quoted(c[0], "pub-gruu"),
        Some("sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    );
    let temp = quoted(c[0], "temp-gruu").unwrap();
    let user = temp
        .strip_prefix("sip:tgruu.")
        .and_then(|t| t.strip_suffix("@example.com;gr"))
        .unwrap();
    assert!(!temp.contains("alice"));
    assert_eq!(reg.gruu_keys().open(user).unwrap().aor, "alice");
    // RFC 5627 §5.2 asks for no Require: gruu.
    assert!(!reply.contains("Require:"));
    assert!(c[0].contains(&format!("+sip.instance=\"{INSTANCE}\"")));

    // The GRUUs parse as SIP URIs, and both resolve to the binding.
    for gruu in [quoted(c[0], "pub-gruu").unwrap(), temp] {
        assert!(crate::sip::Uri::parse(gruu.as_bytes()).is_some(), "{gruu}");
        let found = reg.lookup(gruu, crate::usrloc::unix_now()).unwrap();
        assert_eq!(found.len(), 1, "{gruu}");
        assert_eq!(found[0].contact(), "sip:alice@192.0.2.1:5060");
    }

    // A refresh keeps the temp-GRUU, a new Call-ID changes it and the old
    // one no longer resolves.
    let again = handle(&reg, &register("c1", 2, &with_instance(INSTANCE)));
    assert_eq!(quoted(contacts(&again)[0], "temp-gruu"), Some(temp));
    let moved = handle(&reg, &register("c2", 1, &with_instance(INSTANCE)));
    let temp2 = quoted(contacts(&moved)[0], "temp-gruu").unwrap();
    assert_ne!(temp2, temp);
    assert_eq!(reg.lookup(temp, crate::usrloc::unix_now()), Ok(vec![]));
    assert_eq!(
        reg.lookup(temp2, crate::usrloc::unix_now()).unwrap().len(),
        1
    );
}

#[test]
fn no_gruus_without_supported_gruu_an_instance_or_when_off() {
    let reg = Registrar::default();
    let plain = format!("Contact: <sip:alice@192.0.2.1>;+sip.instance=\"{INSTANCE}\"\r\n");
    let reply = handle(&reg, &register("c1", 1, &plain));
    assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
    assert!(!reply.contains("gruu"), "{reply}");
    let no_instance = "Supported: gruu\r\nContact: <sip:alice@192.0.2.9>\r\n";
    let reply = handle(&Registrar::default(), &register("c2", 1, no_instance));
    assert_eq!(contacts(&reply).len(), 1);
    assert!(!reply.contains("gruu"), "{reply}");
    // The earlier binding with an instance gets its GRUUs once asked.
    let reply = handle(&reg, &register("c2", 1, no_instance));
    let c = contacts(&reply);
    assert_eq!(c.len(), 2);
    assert_eq!(
        c.iter().filter(|c| c.contains("pub-gruu")).count(),
        1,
        "{reply}"
    );
    let off = Registrar::default().with_gruu(false);
    let reply = handle(&off, &register("c1", 1, &with_instance(INSTANCE)));
    assert!(!reply.contains("gruu"), "{reply}");
}

#[test]
fn every_instance_binding_of_the_aor_gets_its_own_gruus() {
    let reg = Registrar::default();
    let other = "<urn:uuid:00000000-0000-0000-0000-0000000000aa>";
    handle(&reg, &register("c1", 1, &with_instance(INSTANCE)));
    let second =
        format!("Supported: gruu\r\nContact: <sip:alice@192.0.2.2>;+sip.instance=\"{other}\"\r\n");
    let reply = handle(&reg, &register("c2", 1, &second));
    let c = contacts(&reply);
    assert_eq!(c.len(), 2, "{reply}");
    let pubs: Vec<_> = c.iter().map(|c| quoted(c, "pub-gruu").unwrap()).collect();
    let temps: Vec<_> = c.iter().map(|c| quoted(c, "temp-gruu").unwrap()).collect();
    assert_ne!(pubs[0], pubs[1]);
    assert_ne!(temps[0], temps[1]);
}

#[test]
fn a_contact_that_is_a_gruu_of_the_aor_is_forbidden() {
    let reg = Registrar::default();
    let reply = handle(&reg, &register("c1", 1, &with_instance(INSTANCE)));
    let temp = quoted(contacts(&reply)[0], "temp-gruu").unwrap().to_owned();
    let cases = [
        "Contact: <sip:alice@example.com;gr=urn:uuid:x>\r\n".to_owned(),
        format!("Contact: <{temp}>\r\n"),
        format!("Contact: <sip:alice@example.com>;+sip.instance=\"{INSTANCE}\"\r\n"),
        format!("Contact: <tel:+15551234>;+sip.instance=\"{INSTANCE}\"\r\n"),
    ];
    for (i, contact) in cases.iter().enumerate() {
        let reply = handle(&reg, &register("c9", i as u32 + 1, contact));
        assert!(reply.starts_with("SIP/2.0 403"), "{contact}: {reply}");
    }
    // Another AoR's GRUU, or a removal, is a plain contact.
    for contact in [
        "Contact: <sip:bob@example.com;gr=urn:uuid:x>\r\n",
        "Contact: <sip:alice@example.com;gr=urn:uuid:x>;expires=0\r\n",
        "Contact: <sip:alice@example.com>\r\n",
    ] {
        let reply = handle(&reg, &register("c8", 1, contact));
        assert!(reply.starts_with("SIP/2.0 200"), "{contact}: {reply}");
        let _ = handle(
            &reg,
            &register("c8", 2, &format!("Expires: 0\r\n{contact}")),
        );
    }
}

#[test]
fn the_udp_budget_counts_the_gruus() {
    // Long instance IDs and a reply limit just above a plain 200.
    let mut settings = crate::registrar::Settings::default();
    let instance = format!("<urn:uuid:{}>", "f".repeat(200));
    let text = register("c1", 1, &with_instance(&instance));
    let plain = {
        let reg = Registrar::new(settings.clone(), Default::default()).with_gruu(false);
        handle(&reg, &text).len()
    };
    settings.udp_reply_max_size = plain + 20;
    let reg = Registrar::new(settings, Default::default());
    let reply = handle(&reg, &text);
    assert!(reply.starts_with("SIP/2.0 500"), "{reply}");
}

proptest::proptest! {
    /// Opening never panics and never accepts what was not sealed.
    #[test]
    fn random_tokens_never_open(s in "[a-z2-7]{0,500}|\\PC{0,100}") {
        proptest::prop_assert!(keys().open(&s).is_err());
    }

    /// Every AoR a table can key round-trips.
    #[test]
    fn any_aor_round_trips(aor in "\\PC{1,60}", instance in "\\PC{0,60}", call_id in "\\PC{0,60}") {
        let k = keys();
        let t = k.token(&aor, &instance, &call_id).unwrap();
        proptest::prop_assert!(t.len() <= MAX_TOKEN_LEN);
        proptest::prop_assert_eq!(k.open(&t).unwrap().aor, aor);
    }
}

#[test]
fn contains_ignore_case_finds_any_case_anywhere() {
    use super::contains_ignore_case as has;
    assert!(has(b"<sip:a@PBX.Example.com>;GR=x", b";gr"));
    assert!(has(b"<sip:a@pbx.example.com>", b"PBX.example.COM"));
    assert!(has(b"tel:+1", b"TEL:"));
    assert!(has(b"abc", b""));
    assert!(has(b"aab", b"ab"), "a candidate that fails is not the last");
    assert!(!has(b"<sip:a@10.0.0.1>", b";gr"));
    assert!(!has(b"te", b"tel:"), "a needle longer than what is left");
    assert!(!has(b"", b"x"));
}
