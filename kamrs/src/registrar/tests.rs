//! The registrar's rules, row by row of docs/design.md §3, without sockets: the
//! pure `save` on hand-made binding lists, and `Registrar::handle` on a
//! real table for the replies.

use std::sync::Arc;

use super::save::{self, Change, Context};
use super::*;
use crate::peer::Proto;
use crate::sip::{parse_message, Limits, Message};
use crate::usrloc::{Binding, Parts};

const NOW: u64 = 1_000_000;

fn register(extra: &str) -> String {
    register_with("c1@h", 10, extra)
}

fn register_with(call_id: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq};rport\r\n\
         From: <sip:alice@example.com>;tag=f\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn with_req<R>(text: &str, f: impl FnOnce(&crate::sip::Request<'_>) -> R) -> R {
    match parse_message(text.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => f(&r),
        other => panic!("{other:?}"),
    }
}

fn run(
    text: &str,
    settings: &Settings,
    current: &mut Vec<Binding>,
) -> Result<save::Outcome, Reject> {
    with_req(text, |req| {
        let ruid = || Ruid::parse("new");
        let ctx = Context {
            now: NOW,
            source: None,
            settings,
            new_ruid: &ruid,
            user_agents: None,
        };
        let outcome = save::save(req, &ctx, current)?;
        save::apply(current, outcome.changes.clone());
        Ok(outcome)
    })
}

fn binding(contact: &str, call_id: &str, cseq: u32, expires_at: u64) -> Binding {
    let b = Binding::for_test(contact, expires_at);
    let ruid = format!("r-{contact}");
    Binding::new(Parts {
        call_id,
        cseq,
        ruid: Ruid::parse(&ruid),
        last_modified: NOW - 100,
        ..b.parts()
    })
}

fn settings() -> Settings {
    Settings {
        default_expires: 3600,
        min_expires: 60,
        min_expires_mode: MinExpiresMode::Reject,
        max_expires: 7200,
        max_contacts: 0,
        max_contacts_policy: MaxContactsPolicy::Reject,
        use_domain: false,
        use_path: false,
        contact_max_size: 512,
        ..Settings::default()
    }
}

fn expiries(b: &[Binding]) -> Vec<(String, u64)> {
    b.iter()
        .map(|b| (b.contact().to_string(), b.expires_at - NOW))
        .collect()
}

#[test]
fn add_then_refresh_in_place() {
    let s = settings();
    let mut b = Vec::new();
    run(
        &register("Contact: <sip:alice@192.0.2.1>\r\nExpires: 600\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(expiries(&b), [("sip:alice@192.0.2.1".into(), 600)]);
    assert_eq!(b[0].ruid().to_string(), "new");
    let out = run(
        &register_with(
            "c1@h",
            11,
            "Contact: <sip:alice@192.0.2.1>\r\nExpires: 900\r\n",
        ),
        &s,
        &mut b,
    )
    .unwrap();
    assert!(matches!(
        out.changes[..],
        [Change::Refresh { index: 0, .. }]
    ));
    assert_eq!(expiries(&b), [("sip:alice@192.0.2.1".into(), 900)]);
    assert_eq!(b[0].cseq, 11);
}

#[test]
fn uri_equality_not_bytes_decides_refresh() {
    let s = settings();
    let mut b = vec![binding(
        "sip:alice@HOST.example;transport=udp",
        "c1@h",
        1,
        NOW + 10,
    )];
    run(
        &register("Contact: <sip:%61lice@host.EXAMPLE;transport=UDP>\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(b.len(), 1, "same binding by RFC 3261 §19.1.4");
    // Different Call-ID (phone rebooted): replaced, keeping its ruid.
    run(
        &register_with(
            "other@h",
            1,
            "Contact: <sip:alice@host.example;transport=udp>\r\n",
        ),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].call_id(), "other@h");
    assert_eq!(
        b[0].ruid().to_string(),
        "r-sip:alice@HOST.example;transport=udp"
    );
    assert_eq!(b[0].contact(), "sip:alice@host.example;transport=udp");
}

#[test]
fn remove_by_param_or_header() {
    let s = settings();
    let mut b = vec![
        binding("sip:a@1", "x", 1, NOW + 10),
        binding("sip:a@2", "x", 1, NOW + 10),
        binding("sip:a@3", "x", 1, NOW + 10),
    ];
    run(&register("Contact: <sip:a@1>;expires=0\r\n"), &s, &mut b).unwrap();
    run(
        &register("Contact: <sip:a@2>\r\nExpires: 0\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(expiries(&b), [("sip:a@3".into(), 10)]);
    // Removing what is not there is no error.
    run(&register("Contact: <sip:a@9>;expires=0\r\n"), &s, &mut b).unwrap();
    assert_eq!(b.len(), 1);
}

#[test]
fn star() {
    let s = settings();
    let mut b = vec![
        binding("sip:a@1", "x", 1, NOW + 10),
        binding("sip:a@2", "y", 50, NOW + 10),
    ];
    for (extra, err) in [
        ("Contact: *\r\nExpires: 10\r\n", Reject::StarWithExpires),
        ("Contact: *\r\n", Reject::StarWithExpires),
        (
            "Contact: *\r\nContact: <sip:a@1>\r\nExpires: 0\r\n",
            Reject::StarWithContacts,
        ),
    ] {
        assert_eq!(run(&register(extra), &s, &mut b), Err(err), "{extra}");
        assert_eq!(b.len(), 2, "nothing changed");
    }
    // Same Call-ID as a binding with a higher CSeq: refused.
    assert_eq!(
        run(
            &register_with("y", 50, "Contact: *\r\nExpires: 0\r\n"),
            &s,
            &mut b
        ),
        Err(Reject::InvalidCSeq)
    );
    run(
        &register_with("y", 51, "Contact: *\r\nExpires: 0\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert!(b.is_empty());
}

#[test]
fn query_changes_nothing() {
    let s = settings();
    let mut b = vec![binding("sip:a@1", "x", 1, NOW + 10)];
    let before = b.clone();
    let out = run(&register(""), &s, &mut b).unwrap();
    assert!(out.changes.is_empty());
    assert_eq!(b, before);
}

#[test]
fn expires_precedence_min_and_max() {
    let s = settings();
    let mut b = Vec::new();
    run(
        &register("Contact: <sip:a@1>;expires=120, <sip:a@2>, <sip:a@3>;expires=99999\r\nExpires: 300\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(
        expiries(&b),
        [
            ("sip:a@1".into(), 120),
            ("sip:a@2".into(), 300),
            ("sip:a@3".into(), 7200)
        ]
    );
    let mut b = Vec::new();
    run(&register("Contact: <sip:a@1>\r\n"), &s, &mut b).unwrap();
    assert_eq!(expiries(&b), [("sip:a@1".into(), 3600)], "default_expires");

    assert_eq!(
        run(&register("Contact: <sip:a@1>;expires=30\r\n"), &s, &mut b),
        Err(Reject::IntervalTooBrief(60))
    );
    let raise = Settings {
        min_expires_mode: MinExpiresMode::Raise,
        ..settings()
    };
    let mut b = Vec::new();
    run(
        &register("Contact: <sip:a@1>;expires=30\r\n"),
        &raise,
        &mut b,
    )
    .unwrap();
    assert_eq!(expiries(&b), [("sip:a@1".into(), 60)]);
}

#[test]
fn cseq_ordering_and_retransmission() {
    let s = settings();
    let mut b = vec![binding("sip:a@1", "c1@h", 10, NOW + 100)];
    let before = b.clone();
    assert_eq!(
        run(
            &register_with("c1@h", 9, "Contact: <sip:a@1>\r\n"),
            &s,
            &mut b
        ),
        Err(Reject::InvalidCSeq)
    );
    let out = run(
        &register_with("c1@h", 10, "Contact: <sip:a@1>\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert!(out.retransmission);
    assert_eq!(b, before);
    // A lower CSeq under another Call-ID is a different registration.
    run(
        &register_with("c2@h", 1, "Contact: <sip:a@1>\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(b[0].cseq, 1);
}

#[test]
fn max_contacts_reject_or_evict_oldest() {
    let s = Settings {
        max_contacts: 2,
        ..settings()
    };
    let mut b = vec![
        binding("sip:a@1", "x", 1, NOW + 50),
        binding("sip:a@2", "x", 1, NOW + 80),
    ];
    b[1].last_modified = NOW - 200; // a@2 is the oldest
    assert_eq!(
        run(&register("Contact: <sip:a@3>\r\n"), &s, &mut b),
        Err(Reject::TooManyContacts(50))
    );
    // Refreshing an existing one is always fine.
    run(&register("Contact: <sip:a@1>\r\n"), &s, &mut b).unwrap();
    let evict = Settings {
        max_contacts_policy: MaxContactsPolicy::EvictOldest,
        ..s
    };
    run(&register("Contact: <sip:a@3>\r\n"), &evict, &mut b).unwrap();
    let contacts: Vec<_> = b.iter().map(|b| b.contact().to_string()).collect();
    assert_eq!(contacts, ["sip:a@1", "sip:a@3"]);
    // Three new contacts at once cannot fit whatever we evict.
    let mut b = Vec::new();
    assert!(matches!(
        run(
            &register("Contact: <sip:a@1>, <sip:a@2>, <sip:a@3>\r\n"),
            &evict,
            &mut b
        ),
        Err(Reject::TooManyContacts(_))
    ));
}

#[test]
fn bad_contacts_change_nothing() {
    let s = Settings {
        contact_max_size: 30,
        ..settings()
    };
    let mut b = vec![binding("sip:a@1", "x", 1, NOW + 50)];
    let before = b.clone();
    for (contact, err) in [
        (
            "<sip:a@2>, <sip:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@2>",
            Reject::ContactTooLong,
        ),
        ("<sip:a@2>;q=2", Reject::InvalidQ),
        ("<sip:a@2>;q=0.5x", Reject::InvalidQ),
        ("<sip:a@2>;q", Reject::InvalidQ),
        ("<sip:a@2>;expires=soon", Reject::InvalidExpires),
        ("<sip:a@2>;reg-id=x", Reject::InvalidRegId),
        (
            "<sip:a@2>, <bogus>",
            Reject::Parse(crate::sip::ParseError::Malformed(HeaderName::Contact)),
        ),
    ] {
        assert_eq!(
            run(&register(&format!("Contact: {contact}\r\n")), &s, &mut b),
            Err(err),
            "{contact}"
        );
        assert_eq!(b, before);
    }
    assert_eq!(
        run(
            &register("Contact: <sip:a@2>\r\nExpires: never\r\n"),
            &s,
            &mut b
        ),
        Err(Reject::Parse(crate::sip::ParseError::Malformed(
            HeaderName::Expires
        )))
    );
}

#[test]
fn q_values() {
    assert_eq!(save::parse_q("0"), Some(0));
    assert_eq!(save::parse_q("1"), Some(1000));
    assert_eq!(save::parse_q("1.000"), Some(1000));
    assert_eq!(save::parse_q("0.5"), Some(500));
    assert_eq!(save::parse_q("0.125"), Some(125));
    for bad in ["", "1.001", "2", "0.1234", "-0.5", ".5", "0.x"] {
        assert_eq!(save::parse_q(bad), None, "{bad}");
    }
}

#[test]
fn instance_and_reg_id_replace_the_old_flow() {
    let s = settings();
    let mut b = Vec::new();
    let inst = "+sip.instance=\"<urn:uuid:1>\"";
    run(
        &register(&format!(
            "Contact: <sip:a@10.0.0.1:5060>;{inst};reg-id=1\r\n"
        )),
        &s,
        &mut b,
    )
    .unwrap();
    run(
        &register(&format!(
            "Contact: <sip:a@10.0.0.1:5070>;{inst};reg-id=2\r\n"
        )),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(b.len(), 2, "another reg-id is another flow");
    run(
        &register_with(
            "c9@h",
            1,
            &format!("Contact: <sip:a@10.0.0.9:6000>;{inst};reg-id=1\r\n"),
        ),
        &s,
        &mut b,
    )
    .unwrap();
    let contacts: Vec<_> = b
        .iter()
        .map(|b| (b.contact().to_string(), b.reg_id))
        .collect();
    assert_eq!(
        contacts,
        [
            ("sip:a@10.0.0.9:6000".to_string(), 1),
            ("sip:a@10.0.0.1:5070".to_string(), 2)
        ]
    );
    assert_eq!(b[0].instance(), Some("<urn:uuid:1>"));
}

#[test]
fn aor_rules() {
    let aor = |to: &str, use_domain: bool| {
        with_req(
            &register("").replace("To: <sip:alice@example.com>", &format!("To: {to}")),
            |r| save::aor(r, use_domain).map(|a| a.into_owned()),
        )
    };
    assert_eq!(aor("<sip:alice@Example.COM>", false), Ok("alice".into()));
    assert_eq!(
        aor("<sip:alice@Example.COM>", true),
        Ok("alice@example.com".into())
    );
    assert_eq!(
        aor("<sip:%61lice@example.com>", true),
        Ok("alice@example.com".into())
    );
    assert_eq!(aor("<tel:+15551234567>", true), Ok("+15551234567".into()));
    assert_eq!(aor("<sip:example.com>", false), Err(Reject::InvalidAor));
    // What the API could not find again, or what would reach a terminal
    // or a header raw, is refused (usrloc::Aor).
    for (to, why) in [
        ("<sip:victim%40other.org@example.com>", "@ In User Part"),
        ("<sip:t%0d%0aX-Inj@example.com>", "Control Character"),
        ("<sip:a%00@example.com>", "Control Character"),
        ("<sip:%1b%5b2J@example.com>", "Control Character"),
        ("<sip:a%c2%9b@example.com>", "Control Character"),
    ] {
        for use_domain in [false, true] {
            let r = aor(to, use_domain).unwrap_err();
            assert_eq!(r.status(), 400, "{to}");
            assert!(r.reason().contains(why), "{to}: {}", r.reason());
        }
    }
    assert_eq!(
        aor("<sip:a%zz@example.com>", false),
        Err(Reject::InvalidAor)
    );
    assert_eq!(
        aor("<sip:a%ff@example.com>", false),
        Err(Reject::InvalidAor)
    );
}

#[test]
fn require_and_path() {
    let mut s = settings();
    with_req(&register("Require: path, foo\r\n"), |r| {
        assert_eq!(
            save::unsupported_requires(r, &s),
            Some("path, foo".to_string())
        );
    });
    s.use_path = true;
    with_req(&register("Require: path, foo\r\n"), |r| {
        assert_eq!(save::unsupported_requires(r, &s), Some("foo".to_string()));
    });
    let mut b = Vec::new();
    run(
        &register("Path: <sip:edge1;lr>\r\nPath: <sip:edge2;lr>\r\nContact: <sip:a@1>\r\n"),
        &s,
        &mut b,
    )
    .unwrap();
    assert_eq!(b[0].path(), Some("<sip:edge1;lr>,<sip:edge2;lr>"));
    assert_eq!(
        run(
            &register_with("c1@h", 11, "Path: nonsense\r\nContact: <sip:a@1>\r\n"),
            &s,
            &mut b
        ),
        Err(Reject::Parse(crate::sip::ParseError::Malformed(
            HeaderName::Path
        )))
    );
}

// ---- through Registrar::handle, reading the reply text ----

fn handle(reg: &Registrar, text: &str) -> String {
    let peer = Peer {
        proto: Proto::Udp,
        remote: "192.0.2.1:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let mut out = Vec::new();
    with_req(text, |r| reg.handle(r, &peer, &mut out));
    String::from_utf8(out).unwrap()
}

fn lines<'a>(reply: &'a str, name: &str) -> Vec<&'a str> {
    reply
        .split("\r\n")
        .filter_map(|l| l.strip_prefix(name).and_then(|l| l.strip_prefix(": ")))
        .collect()
}

#[test]
fn ok_lists_bindings_by_q_then_recency_with_date() {
    let reg = Registrar::default();
    let r = handle(
        &reg,
        &register("Contact: <sip:a@1>;q=0.5, <sip:a@2>;q=1;+sip.instance=\"<urn:x>\";reg-id=3\r\nExpires: 600\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(
        lines(&r, "Contact"),
        [
            "<sip:a@2>;expires=600;q=1;+sip.instance=\"<urn:x>\";reg-id=3",
            "<sip:a@1>;expires=600;q=0.5"
        ]
    );
    let date = lines(&r, "Date");
    assert_eq!(date.len(), 1);
    assert!(date[0].ends_with(" GMT"), "{}", date[0]);
    assert_eq!(
        reg.table()
            .stats()
            .contacts
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn refusals_carry_their_headers() {
    let reg = Registrar::default();
    let r = handle(&reg, &register("Contact: <sip:a@1>;expires=5\r\n"));
    assert!(r.starts_with("SIP/2.0 423 Interval Too Brief\r\n"), "{r}");
    assert_eq!(lines(&r, "Min-Expires"), ["60"]);
    assert_eq!(lines(&r, "P-Registrar-Error"), ["Interval Too Brief"]);
    let r = handle(&reg, &register("Require: gruu\r\nContact: <sip:a@1>\r\n"));
    assert!(r.starts_with("SIP/2.0 420 Bad Extension\r\n"), "{r}");
    assert_eq!(lines(&r, "Unsupported"), ["gruu"]);
    let r = handle(
        &reg,
        &register("Contact: <sip:a@1>\r\n")
            .replace("REGISTER sip:example.com SIP", "REGISTER p SIP"),
    );
    assert!(
        r.starts_with("SIP/2.0 400 Malformed Request-URI\r\n"),
        "{r}"
    );
    let r = handle(&reg, &register("Contact: <sip:a@1>;q=7\r\n"));
    assert!(
        r.starts_with("SIP/2.0 400 Invalid q Param In Contact\r\n"),
        "{r}"
    );
    assert_eq!(
        reg.stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    assert_eq!(
        reg.stats()
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn path_is_echoed_only_to_a_ua_that_supports_it() {
    let s = Settings {
        use_path: true,
        ..settings()
    };
    let reg = Registrar::new(s, Arc::new(crate::usrloc::LocationTable::new()));
    let r = handle(
        &reg,
        &register("Path: <sip:edge;lr>\r\nContact: <sip:a@1>\r\n"),
    );
    assert!(lines(&r, "Path").is_empty(), "{r}");
    let r = handle(
        &reg,
        &register("Supported: path\r\nPath: <sip:edge;lr>\r\nContact: <sip:a@1>\r\n"),
    );
    assert_eq!(lines(&r, "Path"), ["<sip:edge;lr>"]);
}

/// A write-through store whose writes fail while `failing` is set.
#[derive(Default)]
struct Flaky {
    failing: std::sync::atomic::AtomicBool,
}

impl crate::usrloc::persist::Store for Flaky {
    fn submit(&self, _: Vec<crate::usrloc::persist::StoreOp>) -> crate::usrloc::persist::Commit {
        let result = if self.failing.load(Ordering::Relaxed) {
            Err(crate::usrloc::StoreError::Write("disk full".into()))
        } else {
            Ok(())
        };
        crate::usrloc::persist::Commit::ready(result)
    }
    fn flush(&self) -> crate::usrloc::persist::Commit {
        crate::usrloc::persist::Commit::ready(Ok(()))
    }
    fn mode(&self) -> crate::usrloc::StoreMode {
        crate::usrloc::StoreMode::WriteThrough
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

#[tokio::test]
async fn write_through_waits_for_the_commit_and_answers_500_when_it_fails() {
    let table = Arc::new(crate::usrloc::LocationTable::new());
    let store = Arc::new(Flaky::default());
    assert!(table.attach_store(store.clone()).is_ok());
    let reg = Registrar::new(settings(), table);
    let peer = Peer {
        proto: Proto::Udp,
        remote: "192.0.2.1:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let mut out = Vec::new();
    // A change that the store takes: its 200 comes from the deferred answer.
    let text = register("Contact: <sip:a@1>\r\n");
    let deferred =
        with_req(&text, |r| reg.handle(r, &peer, &mut out)).expect("a change waits for its commit");
    assert!(out.is_empty(), "nothing may be sent before the commit");
    let ok = String::from_utf8(deferred.await).unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(reg.stats().accepted.load(Ordering::Relaxed), 1);
    // The retransmission of that REGISTER changes nothing, yet must wait
    // for a durable write too, and shares its fate: here it fails, and
    // there is nothing to roll back.
    store.failing.store(true, Ordering::Relaxed);
    let deferred = with_req(&text, |r| reg.handle(r, &peer, &mut out))
        .expect("a retransmission in write-through waits for the store");
    let failure = String::from_utf8(deferred.await).unwrap();
    assert!(
        failure.starts_with("SIP/2.0 500 Location Store Unavailable\r\n"),
        "{failure}"
    );
    assert_eq!(lines(&failure, "Retry-After"), ["5"]);
    assert_eq!(reg.table().lookup("alice", 0).map(|b| b.len()), Some(1));
    // A new binding whose write fails: 500, and rolled back.
    let text = register_with("c2@h", 1, "Contact: <sip:a@2>\r\n");
    let deferred = with_req(&text, |r| reg.handle(r, &peer, &mut out)).expect("a change waits");
    let failure = String::from_utf8(deferred.await).unwrap();
    assert!(failure.starts_with("SIP/2.0 500 "), "{failure}");
    assert_eq!(reg.table().lookup("alice", 0).map(|b| b.len()), Some(1));
    assert_eq!(reg.stats().accepted.load(Ordering::Relaxed), 1);
    assert_eq!(reg.stats().rejected.load(Ordering::Relaxed), 2);
    // A query changes nothing and is answered at once.
    let text = register_with("c1@h", 11, "");
    assert!(with_req(&text, |r| reg.handle(r, &peer, &mut out)).is_none());
    assert!(out.starts_with(b"SIP/2.0 200 OK\r\n"));
}

#[test]
fn user_agents_are_shared_and_bounded() {
    let cache = UserAgents::default();
    let a = cache.get(b"Yealink SIP-T46U 108.86.0.45");
    let b = cache.get(b"Yealink SIP-T46U 108.86.0.45");
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(&*a, "Yealink SIP-T46U 108.86.0.45");
    // A peer inventing User-Agents cannot grow the cache past its bound.
    let kept: Vec<_> = (0..UserAgents::CAPACITY * 2)
        .map(|i| cache.get(format!("ua {i}").as_bytes()))
        .collect();
    assert!(cache.len() <= UserAgents::CAPACITY);
    drop(kept);
    // Once no binding holds them, they make room again.
    let c = cache.get(b"after");
    assert_eq!(&*c, "after");
    assert!(cache.len() <= UserAgents::CAPACITY);
}

// ---- the table's bounds, field sizes, the UDP reply budget ----

#[test]
fn a_full_table_refuses_new_bindings_not_refreshes_and_changes_nothing() {
    let table = LocationTable::new().with_limits(crate::usrloc::TableLimits {
        max_bindings: 1,
        max_bytes: u64::MAX,
    });
    let reg = Registrar::new(Settings::default(), Arc::new(table));
    let first = register("Contact: <sip:a@1>\r\nExpires: 600\r\n");
    assert!(handle(&reg, &first).starts_with("SIP/2.0 200 OK\r\n"));
    // A second binding (same AoR): refused, with Retry-After, unchanged.
    let r = handle(
        &reg,
        &register_with("c2@h", 1, "Contact: <sip:a@2>\r\nExpires: 600\r\n"),
    );
    assert!(r.starts_with("SIP/2.0 503 Location Table Full\r\n"), "{r}");
    let retry: u64 = lines(&r, "Retry-After")[0].parse().unwrap();
    assert!((1..=600).contains(&retry), "{r}");
    assert_eq!(reg.table().lookup("alice", 0).map(|b| b.len()), Some(1));
    // The refresh of the existing one, and replacing it by another
    // contact (one removed, one added), still work.
    let refresh = register_with("c1@h", 11, "Contact: <sip:a@1>\r\nExpires: 600\r\n");
    assert!(handle(&reg, &refresh).starts_with("SIP/2.0 200 OK\r\n"));
    let swap = register_with(
        "c1@h",
        12,
        "Contact: <sip:a@1>;expires=0, <sip:a@3>\r\nExpires: 600\r\n",
    );
    let r = handle(&reg, &swap);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(lines(&r, "Contact").len(), 1);
    let s = reg.table().stats();
    assert_eq!(s.full.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn the_table_bytes_gauge_follows_every_change_back_to_zero() {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = Registrar::default();
    handle(
        &reg,
        &register("Contact: <sip:a@1>, <sip:a@2>\r\nExpires: 600\r\n"),
    );
    let two = reg.table().stats().bytes.load(Relaxed);
    assert!(two > 300, "{two}");
    handle(
        &reg,
        &register_with("c1@h", 11, "Contact: <sip:a@2>;expires=0\r\n"),
    );
    let one = reg.table().stats().bytes.load(Relaxed);
    assert!(one < two && one > 0, "{one} {two}");
    handle(
        &reg,
        &register_with("c1@h", 12, "Contact: *\r\nExpires: 0\r\n"),
    );
    assert_eq!(reg.table().stats().bytes.load(Relaxed), 0);
    handle(
        &reg,
        &register_with("c1@h", 13, "Contact: <sip:a@1>\r\nExpires: 600\r\n"),
    );
    assert!(reg.table().remove("alice"));
    assert_eq!(reg.table().stats().bytes.load(Relaxed), 0);
}

#[test]
fn growth_counts_adds_replacements_and_removals() {
    let current = vec![
        binding("sip:a@1", "c", 1, NOW + 100),
        binding("sip:a@2", "c", 1, NOW + 100),
    ];
    let new = binding("sip:a-longer@3", "c", 1, NOW + 100);
    let g = save::growth(
        &current,
        &[
            Change::Remove { index: 0 },
            Change::Remove { index: 0 },
            Change::Add(new.clone()),
        ],
    );
    assert_eq!(g.bindings, 0);
    assert_eq!(
        g.bytes,
        new.footprint() as i64 - current[0].footprint() as i64
    );
    let g = save::growth(
        &current,
        &[Change::Replace {
            index: 1,
            binding: new.clone(),
        }],
    );
    assert_eq!((g.bindings, g.bytes > 0), (0, true));
    assert_eq!(
        save::growth(&current, &[]),
        crate::usrloc::Growth::default()
    );
}

#[test]
fn call_id_is_bounded_and_user_agent_is_cut_at_a_character() {
    let reg = Registrar::default();
    let long = "i".repeat(256);
    let r = handle(&reg, &register_with(&long, 1, "Contact: <sip:a@1>\r\n"));
    assert!(r.starts_with("SIP/2.0 400 Call-ID Too Long\r\n"), "{r}");
    // 254 ASCII bytes then a 3-byte character straddling byte 255.
    let ua = format!("{}€tail", "u".repeat(254));
    let r = handle(
        &reg,
        &register(&format!("Contact: <sip:a@1>\r\nUser-Agent: {ua}\r\n")),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    let stored = reg.table().lookup("alice", 0).unwrap()[0]
        .user_agent
        .clone()
        .unwrap();
    assert_eq!(&*stored, "u".repeat(254));
    assert_eq!(save::cut(b"abc", 5), b"abc");
    assert_eq!(save::cut("aé".as_bytes(), 2), b"a");
}

#[test]
fn a_200_over_the_udp_budget_is_refused_before_any_change() {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = Registrar::default();
    // max_contacts is 10 by default; 10 long contacts make a 200 of about
    // 2.5 KB, over the 1300-byte floor for a short unauthenticated query.
    let contacts: Vec<String> = (0..10)
        .map(|i| format!("<sip:{}{i}@192.0.2.1>", "x".repeat(200)))
        .collect();
    let text = register(&format!(
        "Contact: {}\r\nExpires: 600\r\n",
        contacts.join(", ")
    ));
    // Through handle (request size unknown → the floor applies): refused.
    let r = handle(&reg, &text);
    assert!(
        r.starts_with("SIP/2.0 500 Reply Too Large For UDP, Use TCP\r\n"),
        "{r}"
    );
    assert!(reg.table().lookup("alice", 0).is_none(), "nothing applied");
    assert_eq!(reg.stats().reply_too_large.load(Relaxed), 1);
    // With its real size the request may draw 10x its ~2.4 KB: accepted.
    let peer = Peer {
        proto: Proto::Udp,
        remote: "192.0.2.1:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let mut out = Vec::new();
    with_req(&text, |r| reg.handle_sized(r, &peer, text.len(), &mut out));
    let r = String::from_utf8(out).unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(lines(&r, "Contact").len(), 10);
    // A short query for it over UDP: refused; over TCP: listed in full.
    let query = register_with("q@h", 1, "");
    let r = handle(&reg, &query);
    assert!(r.starts_with("SIP/2.0 500 "), "{r}");
    let tcp = Peer {
        proto: Proto::Tcp,
        ..peer
    };
    let mut out = Vec::new();
    with_req(&query, |r| reg.handle(r, &tcp, &mut out));
    let r = String::from_utf8(out).unwrap();
    assert_eq!(lines(&r, "Contact").len(), 10, "{r}");
}

#[test]
fn a_contact_is_the_same_bytes_or_the_same_uri() {
    let uri = |s: &'static str| crate::sip::Uri::parse(s.as_bytes()).expect("a SIP URI");
    let b = Binding::for_test("sip:alice@192.0.2.1:5060;transport=tcp", 100);
    assert!(save::has_contact(
        &b,
        &uri("sip:alice@192.0.2.1:5060;transport=tcp")
    ));
    // RFC 3261 §19.1.4: scheme, host and parameter names compare
    // case-insensitively; the user part does not.
    assert!(save::has_contact(
        &b,
        &uri("SIP:alice@192.0.2.1:5060;TRANSPORT=tcp")
    ));
    assert!(!save::has_contact(
        &b,
        &uri("sip:ALICE@192.0.2.1:5060;transport=tcp")
    ));
    assert!(!save::has_contact(
        &b,
        &uri("sip:alice@192.0.2.1:5062;transport=tcp")
    ));
    // A stored Contact that does not parse is found byte for byte only.
    let odd = Binding::for_test("not a uri", 100);
    assert!(!save::has_contact(&odd, &uri("sip:alice@192.0.2.1")));
    let bindings = [
        Binding::for_test("sip:bob@192.0.2.2", 100),
        Binding::for_test("sip:alice@192.0.2.1", 100),
        Binding::for_test("sip:alice@192.0.2.1", 200),
    ];
    assert_eq!(
        save::find_contact(&bindings, &uri("sip:alice@192.0.2.1")),
        Some(1),
        "the first match"
    );
    assert_eq!(
        save::find_contact(&bindings, &uri("sip:carol@192.0.2.3")),
        None
    );
}

// ---- NAT detection marks the binding (nat_uac_test, nat_bflag) ----

fn register_from(reg: &Registrar, text: &str, remote: &str) {
    let peer = Peer {
        proto: Proto::Udp,
        remote: remote.parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let mut out = Vec::new();
    with_req(text, |r| reg.handle(r, &peer, &mut out));
    assert!(
        out.starts_with(b"SIP/2.0 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn a_natted_phone_is_marked_with_nat_bflag_and_unmarked_when_it_leaves() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    let bit = 1 << Settings::default().nat_bflag;
    // Via says 192.0.2.1:5060, the packet came from port 40312: a NAT.
    register_from(
        &reg,
        &register("Contact: <sip:a@192.0.2.1>\r\n"),
        "192.0.2.1:40312",
    );
    let b = &reg.table().lookup("alice", 0).unwrap()[0];
    assert_eq!(b.cflags & bit, bit);
    // A refresh from where the Via says: no longer NATed.
    register_from(
        &reg,
        &register_with("c1@h", 11, "Contact: <sip:a@192.0.2.1>\r\n"),
        "192.0.2.1:5060",
    );
    let b = &reg.table().lookup("alice", 0).unwrap()[0];
    assert_eq!(b.cflags & bit, 0);
    // A private Contact address, even from the Via's address and port.
    register_from(
        &reg,
        &register_with("c2@h", 1, "Contact: <sip:b@10.0.0.5>\r\n"),
        "192.0.2.1:5060",
    );
    let bs = reg.table().lookup("alice", 0).unwrap();
    assert!(bs
        .iter()
        .any(|b| b.contact() == "sip:b@10.0.0.5" && b.cflags & bit == bit));
}

#[test]
fn nat_detection_off_leaves_cflags_alone() {
    let reg = Registrar::new(
        Settings {
            nat_uac_test: 0,
            ..settings()
        },
        Arc::new(LocationTable::new()),
    );
    register_from(
        &reg,
        &register("Contact: <sip:a@10.0.0.1>\r\n"),
        "10.0.0.1:40312",
    );
    assert_eq!(reg.table().lookup("alice", 0).unwrap()[0].cflags, 0);
}

// ---- binding identity: +sip.instance and reg-id (absent = 0) ----

fn contacts_now(reg: &Registrar) -> Vec<String> {
    let mut v: Vec<String> = reg
        .table()
        .lookup("alice", 0)
        .unwrap_or_default()
        .iter()
        .map(|b| b.contact().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn the_same_instance_replaces_its_binding_whatever_the_uri() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";
    // A softphone over TCP, then reconnected from a new source port, no
    // reg-id: one binding, the new one.
    handle(
        &reg,
        &register_with(
            "c1@h",
            1,
            &format!("Contact: <sip:a@192.0.2.1:40001;transport=tcp>;{inst}\r\n"),
        ),
    );
    handle(
        &reg,
        &register_with(
            "c1@h",
            2,
            &format!("Contact: <sip:a@192.0.2.1:40002;transport=tcp>;{inst}\r\n"),
        ),
    );
    assert_eq!(contacts_now(&reg), ["sip:a@192.0.2.1:40002;transport=tcp"]);
    // Another reg-id of the same instance is another flow.
    handle(
        &reg,
        &register_with(
            "c1@h",
            3,
            &format!("Contact: <sip:a@192.0.2.1:40003;transport=tcp>;{inst};reg-id=1\r\n"),
        ),
    );
    assert_eq!(contacts_now(&reg).len(), 2);
    // Without an instance, the URI decides: a new URI is a new binding.
    handle(
        &reg,
        &register_with("c2@h", 1, "Contact: <sip:a@192.0.2.9>\r\n"),
    );
    handle(
        &reg,
        &register_with("c2@h", 2, "Contact: <sip:a@192.0.2.10>\r\n"),
    );
    assert_eq!(contacts_now(&reg).len(), 4);
}

// ---- RFC 5626 outbound ----

const INSTANCE: &str = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"";

#[test]
fn an_outbound_flow_gets_require_outbound_and_a_flow_timer() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    let r = handle(
        &reg,
        &register(&format!(
            "Supported: outbound, path\r\nContact: <sip:a@192.0.2.1>;{INSTANCE};reg-id=1\r\n"
        )),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(lines(&r, "Require"), ["outbound"]);
    assert_eq!(
        lines(&r, "Flow-Timer"),
        ["30"],
        "UDP: RFC 5626's STUN interval"
    );
    // A second reg-id of the instance is a second flow, the same one replaces.
    handle(
        &reg,
        &register_with(
            "c1@h",
            11,
            &format!(
                "Supported: outbound\r\nContact: <sip:a@192.0.2.1:5070>;{INSTANCE};reg-id=2\r\n"
            ),
        ),
    );
    handle(
        &reg,
        &register_with(
            "c1@h",
            12,
            &format!(
                "Supported: outbound\r\nContact: <sip:a@192.0.2.1:5080>;{INSTANCE};reg-id=1\r\n"
            ),
        ),
    );
    let mut left: Vec<String> = reg
        .table()
        .lookup("alice", 0)
        .unwrap()
        .iter()
        .map(|b| format!("{} {}", b.reg_id, b.contact()))
        .collect();
    left.sort();
    assert_eq!(left, ["1 sip:a@192.0.2.1:5080", "2 sip:a@192.0.2.1:5070"]);
}

#[test]
fn without_outbound_support_or_flow_there_is_no_require() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    // A flow, but the UA did not say it supports outbound.
    let r = handle(
        &reg,
        &register(&format!(
            "Contact: <sip:a@192.0.2.1>;{INSTANCE};reg-id=1\r\n"
        )),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(
        lines(&r, "Require").is_empty() && lines(&r, "Flow-Timer").is_empty(),
        "{r}"
    );
    // Supported, but no flow (no reg-id).
    let r = handle(
        &reg,
        &register_with(
            "c2@h",
            1,
            "Supported: outbound\r\nContact: <sip:b@192.0.2.1>\r\n",
        ),
    );
    assert!(lines(&r, "Require").is_empty(), "{r}");
}

#[test]
fn require_outbound_without_a_flow_is_a_clear_400() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    let r = handle(
        &reg,
        &register("Require: outbound\r\nContact: <sip:a@192.0.2.1>\r\n"),
    );
    assert!(
        r.starts_with("SIP/2.0 400 Outbound Requires +sip.instance And reg-id\r\n"),
        "{r}"
    );
    assert!(reg.table().lookup("alice", 0).is_none());
    // With its flow named it is accepted, over TCP with the stream timer.
    let tcp = Peer {
        proto: Proto::Tcp,
        remote: "192.0.2.1:40000".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let text = register(&format!(
        "Require: outbound\r\nContact: <sip:a@192.0.2.1>;{INSTANCE};reg-id=1\r\n"
    ));
    let mut out = Vec::new();
    with_req(&text, |r| reg.handle(r, &tcp, &mut out));
    let r = String::from_utf8(out).unwrap();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(lines(&r, "Flow-Timer"), ["120"]);
}

#[test]
fn outbound_is_confirmed_only_where_the_flow_ends() {
    let reg = Registrar::new(settings(), Arc::new(LocationTable::new()));
    let flow = format!("Contact: <sip:a@192.0.2.1>;{INSTANCE};reg-id=1\r\n");
    // Through an edge proxy that does not do outbound: no Require.
    let r = handle(
        &reg,
        &register(&format!(
            "Supported: outbound\r\nPath: <sip:edge.example;lr>\r\n{flow}"
        )),
    );
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(lines(&r, "Require").is_empty(), "{r}");
    // An edge proxy that keeps the flow says so with ;ob.
    let r = handle(
        &reg,
        &register_with(
            "c1@h",
            11,
            &format!("Supported: outbound\r\nPath: <sip:edge.example;lr;ob>\r\n{flow}"),
        ),
    );
    assert_eq!(lines(&r, "Require"), ["outbound"], "{r}");
}
