use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::*;
use crate::peer::{Peer, Proto};

fn on(conn: ConnId, contact: &str, expires_at: u64) -> Binding {
    let mut b = Binding::for_test(contact, expires_at);
    b.set_source(Some(Peer {
        proto: Proto::Tcp,
        remote: "192.0.2.1:40000".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: Some(conn),
    }));
    b
}

#[test]
fn a_connection_is_in_use_while_it_carries_a_live_binding() {
    let t = LocationTable::new();
    let released = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&released);
    t.on_flow_released(move |c| seen.lock().unwrap().push(c));
    let (c1, c2) = (ConnId::next(), ConnId::next());
    t.update("alice", 0, |b| b.push(on(c1, "sip:a@1", 100)));
    t.update("bob", 0, |b| b.push(on(c1, "sip:b@1", 200)));
    assert!(t.flow_in_use(c1) && !t.flow_in_use(c2));
    // alice moves to another connection: c1 still carries bob.
    t.update("alice", 0, |b| b[0] = on(c2, "sip:a@1", 100));
    assert!(t.flow_in_use(c1) && t.flow_in_use(c2));
    // alice expires: c2 is released, by the expiry task.
    assert_eq!(t.purge_due(150), Some(200));
    assert!(!t.flow_in_use(c2));
    assert_eq!(*released.lock().unwrap(), [c2]);
    // bob removed by the API: c1 no longer in use, but not "expired"
    // (a phone that unregisters may register again on it).
    assert!(t.remove("bob"));
    assert!(!t.flow_in_use(c1));
    assert_eq!(*released.lock().unwrap(), [c2]);
}

#[test]
fn a_lost_connection_takes_its_bindings_and_only_them() {
    let t = LocationTable::new();
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let n = std::sync::Arc::clone(&count);
    t.on_flow_released(move |_| {
        n.fetch_add(1, Ordering::Relaxed);
    });
    let (lost, kept) = (ConnId::next(), ConnId::next());
    t.update("alice", 0, |b| {
        b.push(on(lost, "sip:a@1", 100));
        b.push(on(kept, "sip:a@2", 100));
        b.push(Binding::for_test("sip:a@udp", 100));
    });
    t.update("bob", 0, |b| b.push(on(lost, "sip:b@1", 100)));
    assert_eq!(t.remove_flow(lost, 0), 2);
    let left: Vec<String> = t
        .lookup("alice", 0)
        .unwrap()
        .iter()
        .map(|b| b.contact().to_string())
        .collect();
    assert_eq!(left, ["sip:a@2", "sip:a@udp"]);
    assert!(t.lookup("bob", 0).is_none());
    assert!(!t.flow_in_use(lost) && t.flow_in_use(kept));
    assert_eq!(count.load(Ordering::Relaxed), 0, "lost, not expired");
    assert_eq!(t.remove_flow(lost, 0), 0, "nothing left to remove");
}

#[test]
fn a_ping_on_a_connection_marks_its_bindings_alive_and_only_them() {
    let t = LocationTable::new();
    let (pinged, quiet) = (ConnId::next(), ConnId::next());
    t.update("alice", 0, |b| {
        b.push(on(pinged, "sip:a@1", 100));
        b.push(on(quiet, "sip:a@2", 100));
    });
    t.update("bob", 0, |b| b.push(on(pinged, "sip:b@1", 100)));
    assert_eq!(t.flow_alive(pinged, 7_000_000), 2);
    let alive = |aor: &str| -> Vec<u64> {
        t.lookup(aor, 0)
            .unwrap()
            .iter()
            .map(|b| b.last_keepalive_us)
            .collect()
    };
    assert_eq!(alive("alice"), [7_000_000, 0]);
    assert_eq!(alive("bob"), [7_000_000]);
    assert_eq!(
        t.flow_alive(ConnId::next(), 8_000_000),
        0,
        "no bindings on it"
    );
}
