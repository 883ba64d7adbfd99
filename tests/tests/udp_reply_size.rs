//! UDP replies that fit: an AoR whose 200 would not fit
//! in a datagram, or would be far larger than the unauthenticated request
//! that asked for it, gets a short 500 over UDP instead of silence (and its
//! REGISTER changes nothing); over TCP the same requests get the full 200.
//! Counted in `registrar:reply_too_large`. Loopback only.

use serde_json::json;

use kamrs_tests::ctl::{register, stat, CtlKamrs, HttpConn};
use kamrs_tests::{tcp_exchange, udp_exchange, unique, Response};

/// `count` permanent bindings for `aor`, added with `ul.add` in batches.
fn add_bindings(k: &CtlKamrs, aor: &str, count: usize) {
    let mut conn = HttpConn::unix(&k.socket);
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| {
                json!({"jsonrpc": "2.0", "method": "ul.add", "id": i, "params": [
                    "location", aor, format!("sip:{aor}-{i}@192.0.2.1:5060;transport=udp"),
                    0, -1, "", 0, 0, 4294967295u32]})
            })
            .collect();
        let resp = conn.post(json!(batch).to_string().as_bytes());
        assert_eq!(resp.status, 200);
        let v = resp.json();
        let errors: Vec<_> = v
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .filter(|r| r.get("error").is_some())
            .collect();
        assert!(errors.is_empty(), "ul.add failed: {errors:?}");
    }
}

fn lookup_count(k: &CtlKamrs, aor: &str) -> usize {
    let v = k.rpc("ul.lookup", json!(["location", aor]));
    v["result"]["Contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .len()
}

fn query(aor: &str, port: u16) -> String {
    register(aor, None, None, &unique(), 1, port, "udp-size-test")
}

fn assert_refused_small(r: &Response, request_len: usize) {
    assert_eq!(r.status, 500, "{}", r.raw);
    assert!(
        r.raw.contains("TCP"),
        "the refusal should say to use TCP: {}",
        r.raw
    );
    let limit = 1300usize.max(10 * request_len);
    assert!(
        r.raw.len() <= limit,
        "a {request_len}-byte request drew a {}-byte reply",
        r.raw.len()
    );
}

#[test]
fn an_aor_too_big_for_a_datagram_is_answered_over_udp_and_listed_over_tcp() {
    // A deployment that lets an AoR hold any number of bindings.
    let k = CtlKamrs::start("max_contacts = 0", "");
    // ~60 bytes per Contact line: 1,500 bindings make a 200 of ~90 KB.
    add_bindings(&k, "big", 1500);
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();

    // A query over UDP: an answer, not silence, and a short one.
    let q = query("big", port);
    let r = udp_exchange(&sock, &q);
    assert_refused_small(&r, q.len());

    // A REGISTER over UDP adding a binding: refused the same way, and
    // nothing changed (the 500 means "not done", as every 500 does).
    let add = register(
        "big",
        Some(&format!("sip:big-new@127.0.0.1:{port}")),
        Some(600),
        &unique(),
        1,
        port,
        "udp-size-test",
    );
    let r = udp_exchange(&sock, &add);
    assert_refused_small(&r, add.len());
    assert_eq!(lookup_count(&k, "big"), 1500);

    // Over TCP the same requests get the full 200: every binding listed.
    let mut tcp = k.kamrs.tcp_connect();
    let r = tcp_exchange(&mut tcp, kamrs_tests::via_transport(&q, "TCP"));
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(500)]);
    assert_eq!(r.values("Contact").len(), 1500);
    let r = tcp_exchange(&mut tcp, kamrs_tests::via_transport(&add, "TCP"));
    assert_eq!(r.status, 200);
    assert_eq!(r.values("Contact").len(), 1501);

    assert_eq!(stat(&k, "registrar:reply_too_large"), 2);
}

#[test]
fn an_unauthenticated_udp_query_cannot_be_amplified() {
    let k = CtlKamrs::start("", "");
    // ~60 bindings: a 200 of about 4 KB, which would fit in a datagram but
    // is more than ten times the ~300-byte query.
    add_bindings(&k, "mid", 60);
    add_bindings(&k, "small", 3);
    let sock = k.kamrs.udp_client();
    let port = sock.local_addr().unwrap().port();
    let q = query("mid", port);
    let r = udp_exchange(&sock, &q);
    assert_refused_small(&r, q.len());
    // An AoR of ordinary size is answered as always.
    let r = udp_exchange(&sock, query("small", port));
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.values("Contact").len(), 3);
    assert_eq!(stat(&k, "registrar:reply_too_large"), 1);
    assert_eq!(stat(&k, "sl:failures"), 0);
}
