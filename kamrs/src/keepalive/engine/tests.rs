use super::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::keepalive::mode;
use crate::usrloc::Parts;

const NAT_BIT: u32 = 1 << 6;
const NOW: u64 = 1_800_000_000;

struct Rig {
    ka: Keepalive,
    table: Arc<LocationTable>,
    ours: SocketAddr,
    phone: UdpSocket,
}

fn rig(settings: Settings) -> Rig {
    let table = Arc::new(LocationTable::new());
    let flows = Flows::new();
    let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours_addr = ours.local_addr().unwrap();
    flows.add_udp(Arc::new(ours));
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let ka = Keepalive::new(settings, [7; 32], Arc::clone(&table), flows);
    Rig {
        ka,
        table,
        ours: ours_addr,
        phone,
    }
}

fn settings(mode: u32) -> Settings {
    Settings {
        mode,
        nat_bit: NAT_BIT,
        ..Settings::default()
    }
}

impl Rig {
    fn phone_peer(&self) -> Peer {
        Peer {
            proto: Proto::Udp,
            remote: self.phone.local_addr().unwrap(),
            local: self.ours,
            conn: None,
        }
    }

    /// Registers `aor` from the phone's socket, NATed or not, at
    /// `registered` (Unix seconds).
    fn register(&self, aor: &str, ruid: &str, nated: bool, registered: u64) {
        let b = Binding::for_test("sip:u@10.0.0.1:5060", NOW + 3600);
        let b = Binding::new(Parts {
            source: Some(self.phone_peer()),
            cflags: if nated { NAT_BIT } else { 0 },
            ruid: Ruid::parse(ruid),
            last_modified: registered,
            ..b.parts()
        });
        self.table.update(aor, NOW, |bs| bs.push(b));
    }

    /// The Call-ID of the next ping the phone receives, if one comes.
    fn received_call_id(&self) -> Option<String> {
        let mut buf = [0u8; 2048];
        let (n, from) = self.phone.recv_from(&mut buf).ok()?;
        assert_eq!(from, self.ours);
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            text.starts_with("OPTIONS sip:u@10.0.0.1:5060 SIP/2.0\r\n"),
            "{text}"
        );
        let line = text.lines().find(|l| l.starts_with("Call-ID: "))?;
        Some(line["Call-ID: ".len()..].to_owned())
    }

    fn keepalive_of(&self, aor: &str) -> (u64, u32) {
        self.table
            .with_bindings(aor, |b| (b[0].last_keepalive_us, b[0].ka_roundtrip_us))
            .unwrap()
    }
}

fn count(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

#[test]
fn a_reply_over_the_flow_records_the_round_trip() {
    let r = rig(settings(mode::NATED));
    r.register("alice", "r1", true, NOW);
    let sent_us = NOW * 1_000_000;
    assert_eq!(r.ka.ping_aor("alice", NOW, sent_us), 1);
    let call_id = r.received_call_id().expect("a ping");
    assert_eq!(count(&r.ka.stats.sent), 1);
    let answered_us = sent_us + 1_234;
    assert!(r.ka.on_reply(&call_id, &r.phone_peer(), answered_us));
    assert_eq!(r.keepalive_of("alice"), (answered_us, 1_234));
    // The same reply again (a replay) proves nothing more.
    assert!(!r.ka.on_reply(&call_id, &r.phone_peer(), answered_us + 5));
    assert_eq!(r.keepalive_of("alice"), (answered_us, 1_234));
    assert_eq!(count(&r.ka.stats.answered), 1);
    assert_eq!(count(&r.ka.stats.ignored), 1);
}

#[test]
fn forged_and_misrouted_replies_change_nothing() {
    let r = rig(settings(mode::ALL));
    r.register("alice", "r1", false, NOW);
    let sent_us = NOW * 1_000_000;
    r.ka.ping_aor("alice", NOW, sent_us);
    let call_id = r.received_call_id().expect("a ping");
    let now_us = sent_us + 500;
    let mut elsewhere = r.phone_peer();
    elsewhere.remote.set_port(elsewhere.remote.port() ^ 1);
    assert!(!r.ka.on_reply(&call_id, &elsewhere, now_us));
    let mut over_tcp = r.phone_peer();
    over_tcp.proto = Proto::Tcp;
    assert!(!r.ka.on_reply(&call_id, &over_tcp, now_us));
    // A Call-ID with its MAC changed, another binding's, or none of ours.
    let mut forged = call_id.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(!r.ka.on_reply(&forged, &r.phone_peer(), now_us));
    assert!(!r.ka.on_reply("ka-00.00.00", &r.phone_peer(), now_us));
    assert!(!r.ka.on_reply("abc@phone", &r.phone_peer(), now_us));
    // Too late: more than ka_timeout (or two intervals) after the ping.
    assert!(!r
        .ka
        .on_reply(&call_id, &r.phone_peer(), sent_us + 61_000_000));
    assert_eq!(r.keepalive_of("alice"), (0, 0));
    assert_eq!(count(&r.ka.stats.ignored), 6);
    // The genuine reply still counts.
    assert!(r.ka.on_reply(&call_id, &r.phone_peer(), now_us));
}

#[test]
fn the_mode_selects_which_bindings_are_pinged() {
    let r = rig(settings(mode::NATED | mode::UDP));
    r.register("nated", "r1", true, NOW);
    r.register("open", "r2", false, NOW);
    assert_eq!(r.ka.ping_aor("open", NOW, NOW * 1_000_000), 0);
    assert!(r.received_call_id().is_none());
    assert_eq!(r.ka.ping_aor("nated", NOW, NOW * 1_000_000), 1);
    assert!(r.received_call_id().is_some());
    // Another node's binding (server_id) is that node's to ping.
    let other = rig(Settings {
        server_id: 2,
        ..settings(mode::ALL)
    });
    other.register("alice", "r1", true, NOW);
    assert_eq!(other.ka.ping_aor("alice", NOW, NOW * 1_000_000), 0);
    // Off is off.
    let off = rig(settings(0));
    off.register("alice", "r1", true, NOW);
    assert_eq!(off.ka.ping_aor("alice", NOW, NOW * 1_000_000), 0);
}

#[test]
fn a_binding_silent_for_ka_timeout_is_removed() {
    let mut r = rig(Settings {
        timeout: 60,
        ..settings(mode::ALL)
    });
    // As if the engine had run for long.
    r.ka.started_us = 0;
    r.register("quiet", "r1", true, NOW - 61);
    r.register("fresh", "r2", true, NOW - 30);
    let now_us = NOW * 1_000_000;
    assert_eq!(r.ka.ping_aor("quiet", NOW, now_us), 0);
    assert!(r.table.lookup("quiet", NOW).is_none());
    assert_eq!(count(&r.ka.stats.timed_out), 1);
    assert_eq!(r.ka.ping_aor("fresh", NOW, now_us), 1);
    assert!(r.table.lookup("fresh", NOW).is_some());
    // An answer resets the clock.
    let call_id = r.received_call_id().unwrap();
    assert!(r.ka.on_reply(&call_id, &r.phone_peer(), now_us + 10));
    let later = NOW + 50;
    assert_eq!(r.ka.ping_aor("fresh", later, later * 1_000_000), 1);
    assert!(r.table.lookup("fresh", later).is_some());
}

#[test]
fn bindings_loaded_before_a_restart_get_ka_timeout_from_the_start() {
    let r = rig(Settings {
        timeout: 60,
        ..settings(mode::ALL)
    });
    // Registered long ago, but this engine just started.
    r.register("old", "r1", true, 1_000);
    let now = crate::time::unix_now();
    assert_eq!(r.ka.ping_aor("old", now, crate::time::unix_now_us()), 1);
    assert_eq!(count(&r.ka.stats.timed_out), 0);
}
