//! Arbitrary bytes into the parser, then every typed accessor a registrar
//! uses on what it returned. Besides "never panics", checks that a URI is
//! equivalent to itself (RFC 3261 §19.1.4 comparison is reflexive).
//!
//! `fuzz/regressions/` keeps inputs that once failed (a URI repeating a
//! parameter name was not equivalent to itself); `cargo +nightly fuzz run
//! parse_message fuzz/regressions/*` replays them.

#![no_main]

use std::hint::black_box;

use kamrs::sip::{parse_message, Limits, Message, NameAddr, Params, Uri};
use libfuzzer_sys::fuzz_target;

fn walk_params(params: Params<'_>) {
    for (name, value) in params {
        black_box((name, value));
    }
    black_box((params.get("expires"), params.has("lr"), params.is_empty()));
}

fn assert_self_equivalent(uri: &Uri<'_>, what: &str) {
    assert!(
        uri.equivalent(uri),
        "{what} URI not equivalent to itself: {uri:?}"
    );
}

fn check_uri(uri: &Uri<'_>, what: &str) {
    assert_self_equivalent(uri, what);
    walk_params(uri.params);
}

fn check_name_addr(na: &NameAddr<'_>, what: &str) {
    check_uri(&na.uri, what);
    walk_params(na.params);
    black_box((na.display, na.tag()));
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(Message::Request(req)) = parse_message(data, &limits) else {
        return;
    };
    black_box((req.method, req.call_id, req.cseq, req.max_forwards));
    let _ = black_box((req.expires(), req.contact_star()));
    if let Some(ruri) = Uri::parse(req.uri.as_bytes()) {
        check_uri(&ruri, "Request");
    }

    let via = &req.top_via;
    walk_params(via.params);
    black_box((
        via.branch(),
        via.has_rport(),
        via.transport,
        via.host,
        via.port,
    ));

    check_name_addr(&req.from, "From");
    check_name_addr(&req.to, "To");

    let mut first = None;
    for contact in req.contacts() {
        let Ok(contact) = contact else { break };
        check_name_addr(&contact, "Contact");
        first.get_or_insert(contact);
    }
    if let Some(first) = first {
        assert_self_equivalent(&first.uri, "first Contact");
    }
});
