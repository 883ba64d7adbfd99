//! `Registrar::lookup` on a real table filled by hand.

use std::sync::Arc;

use super::*;
use crate::registrar::Settings;
use crate::usrloc::{LocationTable, Parts};

const NOW: u64 = 1_000_000;
const INSTANCE: &str = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";

fn binding(contact: &str, q: Option<u16>, last_modified: u64) -> Binding {
    let b = Binding::for_test(contact, NOW + 3600);
    Binding::new(Parts {
        q,
        last_modified,
        ..b.parts()
    })
}

fn registrar(use_domain: bool) -> Registrar {
    let settings = Settings {
        use_domain,
        ..Settings::default()
    };
    Registrar::new(settings, Arc::new(LocationTable::new())).with_secret(b"s")
}

fn put(reg: &Registrar, aor: &str, bindings: Vec<Binding>) {
    reg.table().update(aor, NOW, |bs| bs.extend(bindings));
}

fn contacts(found: &[Binding]) -> Vec<&str> {
    found.iter().map(Binding::contact).collect()
}

#[test]
fn bindings_come_by_q_unset_last_then_newest_first() {
    let reg = registrar(false);
    put(
        &reg,
        "alice",
        vec![
            binding("sip:unset-old@h", None, NOW - 50),
            binding("sip:half@h", Some(500), NOW - 10),
            binding("sip:one-old@h", Some(1000), NOW - 90),
            binding("sip:zero@h", Some(0), NOW),
            binding("sip:one-new@h", Some(1000), NOW - 5),
            binding("sip:unset-new@h", None, NOW - 1),
        ],
    );
    let found = reg.lookup("sip:alice@example.com", NOW).unwrap();
    assert_eq!(
        contacts(&found),
        [
            "sip:one-new@h",
            "sip:one-old@h",
            "sip:half@h",
            "sip:zero@h",
            "sip:unset-new@h",
            "sip:unset-old@h"
        ]
    );
}

#[test]
fn equal_q_and_time_put_the_later_stored_first() {
    let reg = registrar(false);
    put(
        &reg,
        "alice",
        vec![
            binding("sip:first@h", None, NOW),
            binding("sip:second@h", None, NOW),
        ],
    );
    let found = reg.lookup("sip:alice@example.com", NOW).unwrap();
    assert_eq!(contacts(&found), ["sip:second@h", "sip:first@h"]);
}

#[test]
fn the_aor_comes_from_the_request_uri_as_register_takes_it_from_to() {
    let reg = registrar(false);
    put(&reg, "al ice", vec![binding("sip:a@h", None, NOW)]);
    for ruri in [
        "sip:al%20ice@example.com",
        "sip:al%20ice@other.example;user=phone",
        "sips:al%20ice@example.com:5061;transport=tls",
    ] {
        assert_eq!(reg.lookup(ruri, NOW).unwrap().len(), 1, "{ruri}");
    }
    assert_eq!(reg.lookup("sip:bob@example.com", NOW), Ok(vec![]));
    // With use_domain the domain is part of the key, in any case.
    let reg = registrar(true);
    put(
        &reg,
        "alice@example.com",
        vec![binding("sip:a@h", None, NOW)],
    );
    assert_eq!(reg.lookup("sip:alice@EXAMPLE.com", NOW).unwrap().len(), 1);
    assert_eq!(reg.lookup("sip:alice@other.example", NOW), Ok(vec![]));
}

#[test]
fn expired_bindings_are_not_found() {
    let reg = registrar(false);
    let gone = Binding::new(Parts {
        expires_at: NOW - 1,
        ..binding("sip:gone@h", None, NOW - 100).parts()
    });
    put(&reg, "alice", vec![gone, binding("sip:here@h", None, NOW)]);
    let found = reg.lookup("sip:alice@example.com", NOW).unwrap();
    assert_eq!(contacts(&found), ["sip:here@h"]);
    assert_eq!(reg.lookup("sip:alice@example.com", NOW + 7200), Ok(vec![]));
}

#[test]
fn request_uris_naming_no_aor_are_errors() {
    let reg = registrar(false);
    assert_eq!(reg.lookup("not a uri", NOW), Err(LookupError::BadUri));
    assert_eq!(
        reg.lookup("http://example.com/", NOW),
        Err(LookupError::BadUri)
    );
    assert!(matches!(
        reg.lookup("sip:example.com", NOW),
        Err(LookupError::NoAor(_))
    ));
    assert!(matches!(
        reg.lookup("sip:a%40b@example.com", NOW),
        Err(LookupError::NoAor("Invalid AoR: @ In User Part"))
    ));
    assert!(matches!(
        reg.lookup("sip:a%0Db@example.com", NOW),
        Err(LookupError::NoAor(_))
    ));
    assert_eq!(LookupError::BadUri.status(), 400);
    assert_eq!(LookupError::NoAor("x").status(), 404);
    assert_eq!(LookupError::UnknownGruu.status(), 404);
    assert_eq!(LookupError::ForgedGruu(TokenError::Forged).status(), 404);
    assert!(LookupError::ForgedGruu(TokenError::Forged)
        .to_string()
        .contains("did not issue"));
}

#[test]
fn a_tel_request_uri_finds_a_tel_aor() {
    let reg = registrar(true);
    put(&reg, "+15551234567", vec![binding("sip:a@h", None, NOW)]);
    assert_eq!(reg.lookup("tel:+15551234567", NOW).unwrap().len(), 1);
}

fn with_instance(contact: &str, instance: &str, call_id: &str) -> Binding {
    Binding::new(Parts {
        instance: Some(instance),
        call_id,
        ..binding(contact, None, NOW).parts()
    })
}

#[test]
fn a_public_gruu_finds_only_its_instance() {
    let reg = registrar(false);
    put(
        &reg,
        "alice",
        vec![
            with_instance("sip:one@h", INSTANCE, "c1"),
            with_instance("sip:two@h", "<urn:uuid:other>", "c2"),
            binding("sip:plain@h", None, NOW),
        ],
    );
    let found = reg
        .lookup(
            "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            NOW,
        )
        .unwrap();
    assert_eq!(contacts(&found), ["sip:one@h"]);
    // Escaped the same; unknown instance: registered AoR, nobody there.
    let found = reg
        .lookup("sip:alice@example.com;gr=urn%3Auuid%3Aother", NOW)
        .unwrap();
    assert_eq!(contacts(&found), ["sip:two@h"]);
    assert_eq!(
        reg.lookup("sip:alice@example.com;gr=urn:uuid:nobody", NOW),
        Ok(vec![])
    );
    assert_eq!(
        reg.lookup("sip:alice@example.com;gr=urn%zz", NOW),
        Err(LookupError::UnknownGruu)
    );
}

#[test]
fn a_temporary_gruu_finds_only_its_binding() {
    let reg = registrar(false);
    put(
        &reg,
        "alice",
        vec![
            with_instance("sip:one@h", INSTANCE, "c1"),
            with_instance("sip:two@h", "<urn:uuid:other>", "c1"),
        ],
    );
    let token = reg.gruu_keys().token("alice", INSTANCE, "c1").unwrap();
    let ruri = format!("sip:tgruu.{token}@example.com;gr");
    assert_eq!(contacts(&reg.lookup(&ruri, NOW).unwrap()), ["sip:one@h"]);
    // `gr=` with an empty value is the same form.
    let ruri_eq = format!("sip:tgruu.{token}@example.com;gr=");
    assert_eq!(reg.lookup(&ruri_eq, NOW).unwrap().len(), 1);
    // Issued for a Call-ID the binding no longer has: nobody there.
    let stale = reg.gruu_keys().token("alice", INSTANCE, "c0").unwrap();
    assert_eq!(
        reg.lookup(&format!("sip:tgruu.{stale}@example.com;gr"), NOW),
        Ok(vec![])
    );
    // Another registrar's, altered, or not our form at all.
    let foreign = registrar(false).with_secret(b"other");
    assert_eq!(
        foreign.lookup(&ruri, NOW),
        Err(LookupError::ForgedGruu(TokenError::Forged))
    );
    let mut altered = token.into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    assert!(matches!(
        reg.lookup(&format!("sip:tgruu.{altered}@example.com;gr"), NOW),
        Err(LookupError::ForgedGruu(_))
    ));
    assert_eq!(
        reg.lookup("sip:alice@example.com;gr", NOW),
        Err(LookupError::UnknownGruu)
    );
    let long = format!("sip:tgruu.{}@example.com;gr", "a".repeat(2000));
    assert!(matches!(
        reg.lookup(&long, NOW),
        Err(LookupError::ForgedGruu(TokenError::TooLong(2000)))
    ));
    // Without `gr`, a user that happens to start with tgruu. is a user.
    put(&reg, "tgruu.x", vec![binding("sip:t@h", None, NOW)]);
    assert_eq!(reg.lookup("sip:tgruu.x@example.com", NOW).unwrap().len(), 1);
}

proptest::proptest! {
    /// Whatever the Request-URI, lookup answers and never panics; a
    /// `tgruu.` user with `;gr` and any text is never taken for genuine.
    #[test]
    fn any_request_uri_is_answered(user in "[a-zA-Z0-9%._;=-]{0,80}", params in "[a-z;=%0-9]{0,20}") {
        let reg = registrar(false);
        put(&reg, "alice", vec![with_instance("sip:one@h", INSTANCE, "c1")]);
        let _ = reg.lookup(&format!("sip:{user}@example.com{params}"), NOW);
        let forged = reg.lookup(&format!("sip:tgruu.{user}@example.com;gr"), NOW);
        proptest::prop_assert!(!matches!(forged, Ok(ref v) if !v.is_empty()));
    }
}
