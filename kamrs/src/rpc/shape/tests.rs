use super::*;
use crate::usrloc::{Parts, PERMANENT};

fn binding() -> Binding {
    Binding::new(Parts {
        contact: "sip:alice@192.0.2.10:5062;ob",
        expires_at: 13_600,
        q: Some(500),
        call_id: "cid-1",
        cseq: 42,
        user_agent: Some("Yealink SIP-T46S".into()),
        source: Some(Source {
            proto: Proto::Udp,
            remote: "192.0.2.10:5062".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }),
        path: None,
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000000000001>"),
        reg_id: 1,
        methods: u32::MAX,
        flags: 0,
        cflags: 64,
        ruid: "uloc-1-2".into(),
        last_modified: 10_000,
        server_id: 3,
    })
}

#[test]
fn a_binding_looks_like_kamailios_contact() {
    let c = contact(&binding(), 10_000, 1 << 6);
    assert_eq!(c.address, "sip:alice@192.0.2.10:5062;ob");
    assert_eq!(c.expires, Expires::Seconds(3600));
    assert_eq!(c.q, 0.5);
    assert_eq!(c.user_agent, "Yealink SIP-T46S");
    assert_eq!(c.received, "sip:192.0.2.10:5062");
    assert_eq!(c.socket, "udp:127.0.0.1:5060");
    assert_eq!(c.path, NOT_SET);
    assert_eq!(c.state, "CS_NEW");
    assert_eq!(c.cflags, 64);
    assert_eq!(c.methods, 4294967295);
    assert_eq!(
        c.instance,
        "<urn:uuid:00000000-0000-1000-8000-000000000001>"
    );
    assert_eq!(c.reg_id, 1);
    assert_eq!(c.tcpconn_id, -1);
    assert_eq!(c.last_modified, 10_000);
    assert_eq!(c.last_keepalive, 10_000);
}

#[test]
fn unset_values_permanent_and_expired() {
    let mut b = binding();
    b.q = None;
    b.user_agent = None;
    b.set_source(None);
    b = Binding::new(Parts {
        instance: None,
        ..b.parts()
    });
    b.expires_at = PERMANENT;
    let c = contact(&b, 10_000, 1 << 6);
    assert_eq!(c.q, -1.0);
    assert_eq!(c.expires, Expires::Permanent);
    for s in [&c.user_agent, &c.received, &c.socket, &c.instance, &c.path] {
        assert_eq!(s, NOT_SET);
    }
    b.expires_at = 9_999;
    assert_eq!(contact(&b, 10_000, 1 << 6).expires, Expires::Expired);
}

#[test]
fn tcp_and_ipv6_sources() {
    let src = Source {
        proto: Proto::Tcp,
        remote: "[2001:db8::7]:40000".parse().unwrap(),
        local: "[::1]:5060".parse().unwrap(),
        conn: None,
    };
    assert_eq!(received(&src), "sip:[2001:db8::7]:40000;transport=tcp");
    assert_eq!(socket(&src), "tcp:[::1]:5060");
}

#[test]
fn core_hash_matches_kamailio() {
    // From a real Kamailio `ul.dump`: AoR "7777" has HashID 836344572.
    assert_eq!(core_hash("7777"), 836_344_572);
    assert_eq!(core_hash(""), 0);
    // Remainder bytes and signed chars are handled without overflow.
    let _ = core_hash("alice@example.com");
    let _ = core_hash("ünïcødé-ÄoR");
    assert_ne!(core_hash("alice"), core_hash("bob"));
}
