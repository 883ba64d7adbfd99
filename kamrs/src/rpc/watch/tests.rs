use super::*;
use crate::usrloc::{Binding, Cause};

#[test]
fn an_event_is_told_as_the_binding_and_its_cause() {
    let e = Event {
        seq: 7,
        at_us: 1_795_713_340_250_000,
        cause: Cause::KeepaliveTimeout,
        aor: Arc::from("alice"),
        binding: Binding::for_test("sip:alice@192.0.2.7:5062", u64::MAX - 1),
        gone: true,
        rendered: Default::default(),
    };
    let n = notification(&e, 0);
    assert_eq!(n.event, "keepalive-timeout");
    assert_eq!((n.seq, n.aor.as_deref()), (Some(7), Some("alice")));
    assert_eq!(n.time, Some(1_795_713_340.25));
    let c = n.contact.unwrap();
    assert_eq!(c.address, "sip:alice@192.0.2.7:5062");
    // A removal shows no time left.
    assert_eq!(c.expires, common::types::Expires::Seconds(0));
    // Another node's refresh keeps its time left.
    let refreshed = Event {
        cause: Cause::Remote,
        gone: false,
        ..e
    };
    let c = notification(&refreshed, 0).contact.unwrap();
    assert_eq!(notification(&refreshed, 0).event, "remote");
    assert_ne!(c.expires, common::types::Expires::Seconds(0));
    let json = serde_json::to_value(UlEvent {
        event: LAGGED.into(),
        seq: None,
        time: None,
        aor: None,
        contact: None,
        lost: Some(3),
    })
    .unwrap();
    assert_eq!(json, serde_json::json!({"Event": "lagged", "Lost": 3}));
}
