use super::*;
use crate::rpc::api::tests::{state, state_with_domain};
use common::types::Expires;

fn add_args(aor: &str, contact: &str, expires: u32) -> Add {
    Add {
        aor: aor.into(),
        contact: contact.into(),
        expires,
        q: -1.0,
        path: "0".into(),
        flags: 0,
        cflags: 0,
        methods: u32::MAX,
    }
}

#[test]
fn add_lookup_rm_contact_rm() {
    let s = state();
    add(
        &s,
        "location",
        add_args("alice", "sip:alice@192.0.2.1:5060", 3600),
    )
    .unwrap();
    add(
        &s,
        "location",
        Add {
            q: 0.7,
            path: "<sip:edge.example.com;lr>".into(),
            ..add_args("alice", "sip:alice@192.0.2.2", 0)
        },
    )
    .unwrap();
    let l = lookup(&s, "location", "alice").unwrap();
    assert_eq!(l.aor, "alice");
    assert_eq!(l.contacts.len(), 2);
    let c1 = &l.contacts[0].contact;
    assert!(
        matches!(c1.expires, Expires::Seconds(3599..=3600)),
        "{:?}",
        c1.expires
    );
    assert_eq!(c1.q, -1.0);
    assert_eq!(c1.path, "[not set]");
    assert_eq!(c1.call_id, ADD_CALL_ID);
    assert_eq!(c1.user_agent, ADD_USER_AGENT);
    let c2 = &l.contacts[1].contact;
    assert_eq!(c2.expires, Expires::Permanent);
    assert_eq!(c2.q, 0.7);
    assert_eq!(c2.path, "<sip:edge.example.com;lr>");
    assert_ne!(c1.ruid, c2.ruid);

    // The same contact (equivalent URI) replaces, not duplicates.
    add(
        &s,
        "location",
        add_args("alice", "SIP:alice@192.0.2.1:5060", 60),
    )
    .unwrap();
    assert_eq!(lookup(&s, "location", "alice").unwrap().contacts.len(), 2);

    let e = rm_contact(&s, "location", "alice", "sip:nobody@192.0.2.9").unwrap_err();
    assert_eq!((e.code(), e.message()), (404, "Contact not found"));
    rm_contact(&s, "location", "alice", "sip:alice@192.0.2.2").unwrap();
    assert_eq!(lookup(&s, "location", "alice").unwrap().contacts.len(), 1);
    let e = rm_contact(&s, "location", "bob", "sip:bob@h").unwrap_err();
    assert_eq!((e.code(), e.message()), (404, "AOR not found"));

    rm(&s, "location", "alice").unwrap();
    let e = lookup(&s, "location", "alice").unwrap_err();
    assert_eq!((e.code(), e.message()), (404, "AOR not found"));
    assert_eq!(rm(&s, "location", "alice").unwrap_err().code(), 404);
    assert!(s.table().is_empty());
}

fn page(s: &State, cursor: &str, limit: u32, brief: bool) -> UlDumpPage {
    dump_page(s, cursor, limit, brief).unwrap().parse().unwrap()
}

fn names(p: &UlDumpPage) -> Vec<String> {
    p.aors.iter().map(|e| e.aor().to_owned()).collect()
}

#[test]
fn dump_pages_walk_the_table_in_name_order() {
    let s = state();
    let empty = page(&s, "", 10, false);
    assert_eq!((empty.next, empty.aors.len()), (None, 0));
    for i in 0..25 {
        add(&s, "location", add_args(&format!("u{i:02}"), "sip:c@h", 60)).unwrap();
    }
    let first = page(&s, "", 10, false);
    assert_eq!(first.next.as_deref(), Some("u09"));
    assert_eq!(
        names(&first),
        (0..10).map(|i| format!("u{i:02}")).collect::<Vec<_>>()
    );
    let AorEntry::Full { info } = &first.aors[3] else {
        panic!("a full page has Info entries");
    };
    assert_eq!(info.hash_id, shape::core_hash("u03"));
    assert_eq!(info.contacts.len(), 1);
    // The same objects as `ul.dump`'s.
    let whole: UlDump = dump(&s, false).unwrap().parse().unwrap();
    assert_eq!(whole.domains[0].domain.aors[..10], first.aors[..]);

    let brief = page(&s, "u09", 10, true);
    assert_eq!(brief.next.as_deref(), Some("u19"));
    assert_eq!(brief.aors[0], AorEntry::Brief { aor: "u10".into() });
    let last = page(&s, "u19", 10, false);
    assert_eq!(last.next, None, "a short page is the last");
    assert_eq!(names(&last), ["u20", "u21", "u22", "u23", "u24"]);
    // A full last page is followed by an empty one.
    let exact = page(&s, "u14", 10, false);
    assert_eq!(exact.next.as_deref(), Some("u24"));
    let after = page(&s, "u24", 10, false);
    assert_eq!((after.next, after.aors.len()), (None, 0));
    // A cursor need not be an existing AoR.
    assert_eq!(names(&page(&s, "u105", 2, true)), ["u11", "u12"]);

    for bad in [0, MAX_PAGE + 1] {
        let e = dump_page(&s, "", bad, false).unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS);
        assert!(
            e.message().contains("argument 2 `limit`"),
            "{}",
            e.message()
        );
    }
}

#[test]
fn dump_pages_tolerate_changes_between_pages() {
    let s = state();
    // "s…" AoRs stay throughout; "t…" come and go between pages.
    for i in 0..100 {
        add(&s, "location", add_args(&format!("s{i:03}"), "sip:c@h", 60)).unwrap();
    }
    for i in (0..100).step_by(2) {
        add(&s, "location", add_args(&format!("t{i:03}"), "sip:c@h", 60)).unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut round = 0;
    loop {
        let p = page(&s, &cursor, 7, round % 2 == 0);
        seen.extend(names(&p));
        // Between pages: remove some AoRs already listed and some not
        // yet, add some before and after the cursor.
        for i in [round * 3, 60 + round] {
            let _ = rm(&s, "location", &format!("t{:03}", i % 100));
        }
        for name in [
            format!("a{round}"),
            format!("s{:03}x", round * 7),
            format!("z{round}"),
        ] {
            add(&s, "location", add_args(&name, "sip:c@h", 60)).unwrap();
        }
        round += 1;
        match p.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages come in order, without duplicates");
    for i in 0..100 {
        let name = format!("s{i:03}");
        assert!(
            seen.contains(&name),
            "{name} existed throughout but was skipped"
        );
    }
    assert!(
        !seen.iter().any(|n| n.starts_with('a')),
        "added before the cursor"
    );
    // The names were listed when the dump began (dump_names.rs): AoRs
    // added later wait for the next dump, wherever they sort.
    assert!(
        !seen.iter().any(|n| n.starts_with('z') || n.ends_with('x')),
        "added after the dump began"
    );
}

#[test]
fn aors_are_fixed_like_the_registrar_does() {
    let s = state();
    add(
        &s,
        "location",
        add_args("sip:carol@Example.COM", "sip:c@h", 60),
    )
    .unwrap();
    assert_eq!(lookup(&s, "location", "carol").unwrap().aor, "carol");
    assert_eq!(
        lookup(&s, "location", "carol@elsewhere").unwrap().aor,
        "carol"
    );

    let d = state_with_domain();
    add(&d, "location", add_args("carol@Example.COM", "sip:c@h", 60)).unwrap();
    assert_eq!(
        lookup(&d, "location", "carol@example.com").unwrap().aor,
        "carol@example.com"
    );
    let e = lookup(&d, "location", "carol").unwrap_err();
    assert_eq!(e.code(), error::INVALID_PARAMS);
    assert!(e.message().contains("use_domain is on"), "{}", e.message());
}

#[test]
fn bad_arguments_say_which_and_why() {
    let s = state();
    let e = lookup(&s, "locaton", "alice").unwrap_err();
    assert_eq!(e.code(), error::INVALID_PARAMS);
    assert!(
        e.message().contains("`table`") && e.message().contains("\"location\""),
        "{}",
        e.message()
    );
    let e = add(&s, "location", add_args("alice", "not a uri", 60)).unwrap_err();
    assert!(e.message().contains("`contact`"), "{}", e.message());
    let long = format!("sip:{}@h", "a".repeat(600));
    let e = add(&s, "location", add_args("alice", &long, 60)).unwrap_err();
    assert!(e.message().contains("contact_max_size"), "{}", e.message());
    let e = add(
        &s,
        "location",
        Add {
            q: 2.0,
            ..add_args("alice", "sip:a@h", 60)
        },
    )
    .unwrap_err();
    assert!(e.message().contains("`q`"), "{}", e.message());
    let e = lookup(&s, "location", "").unwrap_err();
    assert!(e.message().contains("empty"), "{}", e.message());
    let e = lookup(&s, "location", &"x".repeat(300)).unwrap_err();
    assert!(e.message().contains("at most 256"), "{}", e.message());
}

#[test]
fn control_characters_and_unmanageable_aors_are_refused() {
    let s = state();
    for aor in ["t\r\nX-Inj", "a\0b", "\x1b[2J", "a\u{9b}"] {
        let e = add(&s, "location", add_args(aor, "sip:a@h", 60)).unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS, "{aor:?}");
        assert!(e.message().contains("control character"), "{}", e.message());
        // The message quotes the value escaped, never raw.
        assert!(
            !e.message().chars().any(char::is_control),
            "{}",
            e.message()
        );
        assert!(lookup(&s, "location", aor).is_err());
    }
    let e = add(&s, "location", add_args("alice", "sip:a@h;x=\x1b", 60)).unwrap_err();
    assert!(e.message().contains("`contact`"), "{}", e.message());
    let e = add(
        &s,
        "location",
        Add {
            path: "<sip:p.example.com;lr>\r\nX-Inj: 1".into(),
            ..add_args("alice", "sip:a@h", 60)
        },
    )
    .unwrap_err();
    assert!(
        e.message().contains("`path`") && e.message().contains("control character"),
        "{}",
        e.message()
    );
    assert!(
        s.table().lookup("alice", unix_now()).is_none(),
        "nothing stored"
    );

    let d = state_with_domain();
    let e = add(
        &d,
        "location",
        add_args("victim@other.org@example.com", "sip:a@h", 60),
    )
    .unwrap_err();
    assert!(e.message().contains("domain"), "{}", e.message());
}

#[test]
fn dump_full_and_brief() {
    let s = state();
    for aor in ["bob", "alice", "7777"] {
        add(
            &s,
            "location",
            add_args(aor, &format!("sip:{aor}@192.0.2.1"), 600),
        )
        .unwrap();
    }
    add(
        &s,
        "location",
        add_args("alice", "sip:alice@192.0.2.2", 600),
    )
    .unwrap();
    let full = dump(&s, false).unwrap().parse().unwrap();
    let d = &full.domains[0].domain;
    assert_eq!((d.name.as_str(), d.size), ("location", 1024));
    assert_eq!(d.stats.records, 3);
    assert!(d.stats.max_slots >= 1);
    let aors: Vec<&str> = d.aors.iter().map(AorEntry::aor).collect();
    assert_eq!(aors, ["7777", "alice", "bob"], "sorted");
    let AorEntry::Full { info } = &d.aors[0] else {
        panic!("full entry expected")
    };
    assert_eq!(info.hash_id, 836_344_572);
    let AorEntry::Full { info } = &d.aors[1] else {
        panic!("full entry expected")
    };
    assert_eq!(info.contacts.len(), 2);

    let brief = dump(&s, true).unwrap();
    assert!(
        brief.get().contains(r#"{"AoR":"alice"}"#),
        "{}",
        brief.get()
    );
    assert!(!brief.get().contains("Contacts"), "{}", brief.get());

    let empty = dump(&state(), false).unwrap().parse().unwrap();
    assert_eq!(
        empty.domains[0].domain.stats,
        DomainStats {
            records: 0,
            max_slots: 0
        }
    );
}

fn prefix_page(s: &State, prefix: &str, cursor: &str, limit: u32) -> UlDumpPage {
    dump_prefix(s, prefix, cursor, limit, false)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn prefix_pages_hold_only_the_aors_that_begin_so() {
    let s = state();
    for aor in ["alice", "alan", "albert", "bob", "al"] {
        add(&s, "location", add_args(aor, "sip:c@h", 60)).unwrap();
    }
    let p1 = prefix_page(&s, "al", "", 2);
    assert_eq!(names(&p1), ["al", "alan"]);
    assert_eq!(p1.next.as_deref(), Some("alan"));
    let p2 = prefix_page(&s, "al", "alan", 2);
    assert_eq!(names(&p2), ["albert", "alice"]);
    assert_eq!(p2.next, None);
    // A URI as pasted, and nothing that matches.
    assert_eq!(names(&prefix_page(&s, " SIP:bo", "", 5)), ["bob"]);
    assert!(prefix_page(&s, "carol", "", 5).aors.is_empty());
    // The same objects as the plain pages'.
    assert_eq!(prefix_page(&s, "", "", 5).aors, page(&s, "", 5, false).aors);
    let e = dump_prefix(&s, "a", "", 0, false).unwrap_err();
    assert!(
        e.message().contains("argument 3 `limit`"),
        "{}",
        e.message()
    );
}

#[test]
fn a_prefix_is_normalised_as_aor_keys_are() {
    assert_eq!(key_prefix("sips:Alice@Example.COM"), "Alice@example.com");
    assert_eq!(key_prefix("  Al "), "Al");
    assert_eq!(key_prefix("alice@"), "alice@");
    assert_eq!(key_prefix(""), "");
    // Multi-byte text where a scheme would end: kept, never a panic.
    assert_eq!(key_prefix("sipé"), "sipé");
    assert_eq!(key_prefix("sipsé"), "sipsé");
    assert_eq!(key_prefix("é"), "é");
    assert_eq!(key_prefix("sip:é"), "é");
}
