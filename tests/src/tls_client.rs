//! Helpers of the TLS end-to-end tests (tests/tls.rs, tests/tls_hostile.rs):
//! a daemon with a TLS listener and a certificate signed by a test [`Ca`],
//! REGISTERs over TLS, good clients, and the statistics and bindings the
//! tests check over the control socket.

use std::io::{ErrorKind, Read};
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::ctl::HttpConn;
use crate::pki::{local_port, tls_connect, tls_exchange, Ca, Leaf, TlsStream};
use crate::{unique, Kamrs, Response, TempDir, REPLY_TIMEOUT};

/// A daemon with UDP, TCP and TLS on 127.0.0.1, its certificate (for
/// `localhost` and 127.0.0.1) signed by `ca` and written as
/// `server.crt`/`server.key` in `dir` (see [`cert_paths`]). `top` is
/// added to the top-level keys, `tls` to the `[tls]` table.
pub fn start_tls(ca: &Ca, dir: &TempDir, top: &str, tls: &str) -> (Kamrs, Leaf) {
    let leaf = ca.server("kamrs test server");
    let (cert, key) = leaf.write(dir.path(), "server");
    let config = format!(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n{top}\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{tls}\n",
        cert.display(),
        key.display()
    );
    (Kamrs::start_with_config(&config, &[]), leaf)
}

/// Where [`start_tls`] wrote the daemon's certificate and key.
pub fn cert_paths(dir: &TempDir) -> (PathBuf, PathBuf) {
    (dir.path().join("server.crt"), dir.path().join("server.key"))
}

/// A REGISTER for `aor` (a full URI) to `ruri` with one Contact (none
/// for "") and `Expires`; the top Via names `transport` and `port`.
#[allow(clippy::too_many_arguments)]
pub fn register(
    ruri: &str,
    aor: &str,
    contact: &str,
    transport: &str,
    port: u16,
    call_id: &str,
    cseq: u32,
    expires: u32,
) -> String {
    let mut s = format!(
        "REGISTER {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{aor}>;tag={t}\r\n\
         To: <{aor}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n",
        b = unique(),
        t = unique(),
    );
    if !contact.is_empty() {
        s.push_str(&format!("Contact: <{contact}>\r\nExpires: {expires}\r\n"));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// A REGISTER of `sip:{user}@example.com` with the Contact
/// `sip:{user}@127.0.0.1:{local port};transport=tls`, sent on `stream`.
pub fn tls_register(
    stream: &TlsStream,
    user: &str,
    call_id: &str,
    cseq: u32,
    expires: u32,
) -> String {
    let port = local_port(stream);
    register(
        "sip:example.com",
        &format!("sip:{user}@example.com"),
        &format!("sip:{user}@127.0.0.1:{port};transport=tls"),
        "TLS",
        port,
        call_id,
        cseq,
        expires,
    )
}

/// Sends `request` on `stream`; its reply, panicking if none comes.
pub fn exchange(stream: &mut TlsStream, request: &str) -> Response {
    tls_exchange(stream, request, REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("no reply over TLS to:\n{request}"))
}

/// A fresh REGISTER on `stream` gets its 200.
pub fn assert_registers(stream: &mut TlsStream, user: &str) {
    let req = tls_register(stream, user, &unique(), 1, 60);
    let r = exchange(stream, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// A new TLS connection, handshake done, whose REGISTER of `user` gets
/// its 200; returned open.
pub fn good_client(k: &Kamrs, ca: &Ca, user: &str) -> TlsStream {
    let mut s = tls_connect(k.tls(), ca.client_config(None)).expect("a good client's handshake");
    assert_registers(&mut s, user);
    s
}

/// A JSON-RPC call's whole answer.
pub fn rpc(k: &Kamrs, method: &str, params: Value) -> Value {
    HttpConn::unix(k.ctl.as_ref().expect("control socket")).call(method, params)
}

/// Waits (bounded) until `name` is `want`: the daemon learns of closes
/// asynchronously.
pub fn wait_stat(k: &Kamrs, name: &str, want: u64) {
    let got = k.stat_until(name, want);
    assert_eq!(got, want, "{name} is still {got}, expected {want}");
}

/// The contacts `ul.lookup` shows for `user` (empty when the AoR is gone).
pub fn lookup(k: &Kamrs, user: &str) -> Vec<Value> {
    let v = rpc(k, "ul.lookup", json!(["location", user]));
    if v["error"]["message"] == "AOR not found" {
        return Vec::new();
    }
    v["result"]["Contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("ul.lookup {user}: {v}"))
        .iter()
        .map(|c| c["Contact"].clone())
        .collect()
}

/// What a TLS client that the server refused sees when it reads: the
/// error (an alert) or "EOF". Panics if the server answers or stays
/// silent and open.
pub fn refusal(stream: &mut TlsStream) -> String {
    stream
        .sock
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => "EOF".to_owned(),
        Ok(n) => panic!(
            "the server sent data: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the server neither answered nor closed within {REPLY_TIMEOUT:?}")
        }
        Err(e) => e.to_string(),
    }
}
