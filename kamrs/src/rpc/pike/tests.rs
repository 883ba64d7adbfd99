use super::*;
use crate::rpc::api::tests::{state, state_with_pike};
use std::net::IpAddr;

#[test]
fn blocked_first_then_busiest() {
    let s = state_with_pike(3);
    let pike = s.core.pike.as_ref().unwrap();
    let flooder: IpAddr = "192.0.2.66".parse().unwrap();
    let busy: IpAddr = "192.0.2.7".parse().unwrap();
    let quiet: IpAddr = "2001:db8::1".parse().unwrap();
    for _ in 0..6 {
        pike.allow(flooder);
    }
    for _ in 0..3 {
        pike.allow(busy);
    }
    pike.allow(quiet);
    let all = top(&s, None).unwrap();
    assert_eq!(
        all.iter().map(|p| p.ip.as_str()).collect::<Vec<_>>(),
        ["192.0.2.66", "192.0.2.7", "2001:db8::/64"]
    );
    assert_eq!(
        all[0],
        PikeSource {
            ip: "192.0.2.66".into(),
            requests_in_window: 4,
            blocked: true,
            dropped: 3,
        }
    );
    assert!(!all[1].blocked && all[1].requests_in_window == 3);
    assert_eq!(top(&s, Some(1)).unwrap().len(), 1);
}

#[test]
fn disabled_says_how_to_turn_it_on() {
    let e = top(&state(), None).unwrap_err();
    assert_eq!(e.code(), error::DISABLED);
    assert!(e.message().contains("enabled = true"), "{}", e.message());
}
