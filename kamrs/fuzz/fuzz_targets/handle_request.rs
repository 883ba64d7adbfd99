//! Arbitrary bytes as one UDP datagram into the whole request handler.
//! Whatever it answers must look like a SIP response.
//!
//! Each input gets a fresh router (and so an empty location table): a
//! crash then reproduces from its input alone, and REGISTERs cannot grow
//! the table without bound over millions of runs.
//!
//! The router's table is bounded tightly so the refusal paths run too:
//! the table never holds more than its limits, and no UDP reply is larger
//! than the unauthenticated budget (max(1300, 10x the input)).

#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;

use kamrs::registrar::budget::{AMPLIFICATION, FLOOR};
use kamrs::registrar::{Registrar, Settings};
use kamrs::usrloc::{LocationTable, TableLimits};
use kamrs::peer::{Peer, Proto};
use kamrs::route::{Action, Router};
use kamrs::sip::{parse_message, Limits, Message};
use kamrs::state::Core;
use kamrs::stats::CoreStats;
use libfuzzer_sys::fuzz_target;

const LIMITS: TableLimits = TableLimits {
    max_bindings: 2,
    max_bytes: 2048,
};

fn router() -> Router {
    let table = Arc::new(LocationTable::new().with_limits(LIMITS));
    Router::new(
        Limits::default(),
        Core::new(
            Registrar::new(Settings::default(), table),
            Arc::new(CoreStats::default()),
        ),
    )
}

fuzz_target!(|data: &[u8]| {
    let peer = Peer {
        proto: Proto::Udp,
        remote: SocketAddr::from(([192, 0, 2, 10], 5062)),
        local: SocketAddr::from(([127, 0, 0, 1], 5060)),
        conn: None,
    };
    let mut out = Vec::new();
    let router = router();
    let action = router.handle(data, &peer, &mut out);
    let stats = router.registrar().table().stats();
    let contacts = stats.contacts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(contacts <= LIMITS.max_bindings, "{contacts} bindings");
    let bytes = stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(bytes <= LIMITS.max_bytes, "{bytes} bytes");
    match action {
        Action::Reply { .. } => {
            assert!(
                out.len() <= FLOOR.max(AMPLIFICATION * data.len()),
                "a {}-byte datagram drew a {}-byte reply",
                data.len(),
                out.len()
            );
            assert!(
                out.starts_with(b"SIP/2.0 ") && out.ends_with(b"\r\n\r\n"),
                "reply is not a SIP response: {:?}",
                String::from_utf8_lossy(&out)
            );
            assert!(
                matches!(
                    parse_message(&out, &Limits::default()),
                    Ok(Message::Response(_))
                ),
                "reply does not parse as a response: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
        // Only write-through storage defers a reply, and this router has
        // no store.
        Action::Deferred { .. } => panic!("a reply was deferred without a store"),
        Action::Absorb | Action::Drop(_) => {
            assert!(out.is_empty(), "no reply but {} bytes written", out.len());
        }
    }
});
