//! The live event stream end to end: `kamrsctl ul.watch` sees a phone
//! register, refresh, unregister and a binding expire, in order, each with
//! its binding; a subscriber that does not keep up is cut off with a
//! "lagged" notice while every REGISTER is still answered; and the next
//! watcher works. Every wait is bounded.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{a_phones_life, http_ctl_addr, register, register_many, CtlKamrs, Watch};
use kamrs_tests::{udp_client, udp_exchange, unique, Kamrs};
use serde_json::{json, Value};

/// Registers `warmup` over and over until the watcher reports it: then it
/// is subscribed, and nothing after is missed.
fn until_watching(k: &CtlKamrs, w: &Watch) {
    let sock = udp_client(k.udp());
    let port = sock.local_addr().unwrap().port();
    let call_id = unique();
    for cseq in 1..=50 {
        let contact = format!("sip:warmup@127.0.0.1:{port}");
        let r = udp_exchange(
            &sock,
            register(
                "warmup",
                Some(&contact),
                Some(600),
                &call_id,
                cseq,
                port,
                "w",
            ),
        );
        assert_eq!(r.status, 200);
        if let Some(e) = w.next(1) {
            assert_eq!(e["AoR"], "warmup", "{e}");
            // Drain what the other warm-ups made.
            while w.next(1).is_some_and(|e| e["AoR"] == "warmup") {}
            return;
        }
    }
    panic!("ul.watch reported nothing in 50 s");
}

#[test]
fn watch_sees_register_refresh_unregister_and_expiry_in_order() {
    let k = CtlKamrs::start("min_expires = 1", "");
    let w = Watch::start(&k);
    until_watching(&k, &w);

    let (alice, contact) = a_phones_life(k.udp());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 5 {
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        let Some(e) = w.next(5) else { continue };
        if e["AoR"] != alice.as_str() {
            continue;
        }
        assert_eq!(e["Contact"]["Address"], contact.as_str(), "{e}");
        seen.push((
            e["Event"].as_str().unwrap().to_owned(),
            e["Contact"]["Expires"].clone(),
            e["Seq"].as_u64().unwrap(),
        ));
    }
    let events: Vec<&str> = seen.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "registered",
            "refreshed",
            "unregistered",
            "registered",
            "expired"
        ]
    );
    let expires: Vec<&Value> = seen.iter().map(|(_, x, _)| x).collect();
    assert_eq!(expires[0], &json!(600));
    assert_eq!(expires[1], &json!(300));
    assert_eq!(expires[2], &json!(0));
    assert!(
        seen.windows(2).all(|p| p[0].2 < p[1].2),
        "Seq grows: {seen:?}"
    );
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// A raw WebSocket client subscribed with `ul.subscribe` on the HTTP
/// control listener at `addr`.
fn subscribe(addr: SocketAddr) -> Ws {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut ws, resp) = tungstenite::client::client(format!("ws://{addr}/"), stream).unwrap();
    assert_eq!(resp.status(), 101);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "ul.subscribe", "params": []});
    ws.send(tungstenite::Message::text(call.to_string()))
        .unwrap();
    let accepted = read(&mut ws).expect("an answer to ul.subscribe");
    assert!(!accepted["result"].is_null(), "{accepted}");
    ws
}

/// The next JSON message, or `None` once the connection ends or is
/// silent for 10 s.
fn read(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// A subscriber that reads nothing while thousands of events happen.
#[test]
fn a_subscriber_that_falls_behind_is_cut_off_and_registrations_go_on() {
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let addr = http_ctl_addr(&k);
    let mut slow = subscribe(addr);

    // 30,000 new bindings while the subscriber reads nothing: far more
    // than the event ring and the connection's buffers hold. Every one
    // must be answered 200 (register_many panics otherwise).
    const N: usize = 30_000;
    let sock = udp_client(k.udp());
    register_many(&sock, "lag", 0..N, 200, 600, 1);

    let mut events = 0;
    let mut lost = None;
    'reading: while let Some(m) = read(&mut slow) {
        assert_eq!(m["method"], "ul.events", "{m}");
        for e in m["params"]["result"].as_array().expect("a batch of events") {
            if e["Event"] == "lagged" {
                lost = e["Lost"].as_u64();
                break 'reading;
            }
            events += 1;
            assert!(events <= N, "more events than changes");
        }
    }
    let lost = lost.unwrap_or_else(|| panic!("no lagged notice after {events} events"));
    assert!(lost > 0 && events < N, "events {events}, lost {lost}");

    // The daemon is fine, and a new subscriber is served.
    let mut next = subscribe(addr);
    let r = udp_exchange(
        &sock,
        register(
            "after",
            Some("sip:after@127.0.0.1:9"),
            Some(600),
            &unique(),
            1,
            9,
            "w",
        ),
    );
    assert_eq!(r.status, 200);
    let m = read(&mut next).expect("an event for the new subscriber");
    assert_eq!(m["params"]["result"][0]["AoR"], "after", "{m}");
    assert_eq!(m["params"]["result"][0]["Event"], "registered", "{m}");
}

/// At most 64 subscriptions at once, however they are opened: the 65th
/// (here all on one connection) is refused with a message saying so, and
/// ending one makes room.
#[test]
fn subscriptions_are_bounded() {
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let mut ws = subscribe(http_ctl_addr(&k));
    let mut ids = Vec::new();
    for i in 2..=65 {
        let call = json!({"jsonrpc": "2.0", "id": i, "method": "ul.subscribe", "params": []});
        ws.send(tungstenite::Message::text(call.to_string()))
            .unwrap();
        let answer = read(&mut ws).expect("an answer");
        if i < 65 {
            assert!(!answer["result"].is_null(), "subscription {i}: {answer}");
            ids.push(answer["result"].clone());
        } else {
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("64 subscriptions are open"), "{answer}");
        }
    }
    let end = json!({"jsonrpc": "2.0", "id": 100, "method": "ul.unsubscribe", "params": [ids[0]]});
    ws.send(tungstenite::Message::text(end.to_string()))
        .unwrap();
    assert_eq!(read(&mut ws).expect("an answer")["result"], true);
    let again = json!({"jsonrpc": "2.0", "id": 101, "method": "ul.subscribe", "params": []});
    ws.send(tungstenite::Message::text(again.to_string()))
        .unwrap();
    let answer = read(&mut ws).expect("an answer");
    assert!(!answer["result"].is_null(), "{answer}");
}
