//! Arbitrary bytes into the proxy (`[route] mode = "proxy"`): the input is
//! cut at NUL bytes into datagrams from two peers (a phone that first
//! registers `bob`, then anything), each handled by the whole router, so
//! requests (forked to the binding), responses to those branches (parsed
//! by `sip::parse_response`, relayed by `proxy::forward::response`),
//! CANCELs, ACKs and Route headers with tokens all run. Nothing may panic;
//! whatever is answered must look like a SIP response; the transaction
//! table stays within `max_transactions`.

#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;

use kamrs::flow::Flows;
use kamrs::peer::{Peer, Proto};
use kamrs::proxy::{Mode, Proxy, Settings as ProxySettings};
use kamrs::registrar::{Registrar, Settings};
use kamrs::route::{Action, Router};
use kamrs::sip::{parse_message, Limits, Message};
use kamrs::state::Core;
use kamrs::stats::CoreStats;
use kamrs::usrloc::LocationTable;
use libfuzzer_sys::fuzz_target;

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr\r\nFrom: <sip:bob@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: r\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let table = Arc::new(LocationTable::new());
    let registrar = Arc::new(Registrar::new(Settings::default(), table));
    let proxy = Arc::new(Proxy::new(
        ProxySettings {
            mode: Mode::Proxy,
            max_transactions: 4,
            ..ProxySettings::default()
        },
        [7; 32],
        Arc::clone(&registrar),
        Flows::new(),
        Vec::new(),
        Limits::default(),
        false,
        false,
    ));
    let core = Core::new(Registrar::new(Settings::default(), Arc::clone(registrar.table())), Arc::new(CoreStats::default()))
        .with_proxy(Arc::clone(&proxy));
    let router = Router::new(Limits::default(), core);
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let phone = Peer { proto: Proto::Udp, remote: "127.0.0.1:5070".parse().unwrap(), local, conn: None };
    let caller = Peer { proto: Proto::Udp, remote: "127.0.0.1:5080".parse().unwrap(), local, conn: None };
    let mut out = Vec::new();
    router.handle(REGISTER, &phone, &mut out);
    for (i, msg) in data.split(|&b| b == 0).enumerate() {
        let peer = if i % 2 == 0 { &caller } else { &phone };
        if let Action::Reply { .. } = router.handle(msg, peer, &mut out) {
            assert!(out.starts_with(b"SIP/2.0 "), "{:?}", String::from_utf8_lossy(&out));
            // A reply to a malformed request mirrors it (two To headers
            // stay two), so only its status line is checked strictly.
            assert!(matches!(parse_message(&out, &Limits::default()), Ok(Message::Response(_))));
        }
        assert!(proxy.transactions() <= 4);
    }
});
