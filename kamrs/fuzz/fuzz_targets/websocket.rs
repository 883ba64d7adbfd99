//! Arbitrary bytes from a client on a `ws:` listener: the upgrade request
//! (decided by kamrs's `accept_upgrade`) and then frames, through
//! tungstenite with the limits kamrs sets. Nothing may panic, no message
//! handed on may exceed `max_message_size`, and every one must reach the
//! SIP handler without it panicking either.
//!
//! The first byte picks whether the input is a whole upgrade request of
//! its own or frames after a fixed valid upgrade, so both halves get
//! explored.

#![no_main]

use std::io::{self, Read, Write};
use std::sync::Arc;

use kamrs::peer::{ConnId, Peer, Proto};
use kamrs::transport::ws::{accept_upgrade, config, WsSettings};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::{self, Message};

const MAX: usize = 4096;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

/// Reads the input, swallows what is written back.
struct Wire<'a> {
    input: &'a [u8],
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(UPGRADE.len() + rest.len());
    if mode & 1 == 0 {
        input.extend_from_slice(UPGRADE);
    }
    input.extend_from_slice(rest);
    let settings = WsSettings::default();
    let decide = |req: &tungstenite::handshake::server::Request,
                  resp: tungstenite::handshake::server::Response| {
        accept_upgrade(&settings, req, resp)
    };
    let Ok(mut ws) =
        tungstenite::accept_hdr_with_config(Wire { input: &input }, decide, Some(config(MAX)))
    else {
        return;
    };
    let router = router();
    let peer = Peer {
        proto: Proto::Ws,
        remote: std::net::SocketAddr::from(([192, 0, 2, 1], 40000)),
        local: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        conn: Some(ConnId::next()),
    };
    let mut out = Vec::new();
    // Each read consumes input or fails; the bound is a safety net.
    for _ in 0..10_000 {
        let bytes = match ws.read() {
            Ok(Message::Text(t)) => t.as_bytes().to_vec(),
            Ok(Message::Binary(b)) => b.to_vec(),
            Ok(_) => continue,
            Err(_) => break,
        };
        assert!(bytes.len() <= MAX, "a message over the limit was handed on");
        let _ = router.handle(&bytes, &peer, &mut out);
    }
});

/// A fresh router per input (a crash reproduces from its input alone),
/// its table bounded so REGISTERs cannot grow it across runs.
fn router() -> kamrs::route::Router {
    let limits = kamrs::usrloc::TableLimits {
        max_bindings: 2,
        max_bytes: 2048,
    };
    let table = Arc::new(kamrs::usrloc::LocationTable::new().with_limits(limits));
    let registrar = kamrs::registrar::Registrar::new(kamrs::registrar::Settings::default(), table);
    let core = kamrs::state::Core::new(registrar, Arc::default());
    kamrs::route::Router::new(kamrs::sip::Limits::default(), core)
}
