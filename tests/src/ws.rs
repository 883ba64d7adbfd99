//! A raw RFC 6455 client for the WebSocket end-to-end tests
//! (tests/websocket.rs, tests/websocket_hostile.rs), written here byte by
//! byte (frames per RFC 6455 §5, masked as a client must unless told not
//! to), and the daemon those tests start: UDP, WS and WSS on 127.0.0.1,
//! with the statistics and bindings they check over the control socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ctl::{kamrsctl, register};
use crate::pki::Ca;
use crate::{
    read_exact_timeout, tcp_connect, unique, via_transport, wait_closed, Closed, Kamrs, Response,
    TempDir, REPLY_TIMEOUT,
};

// ------------------------------------------------------------- the daemon

/// A daemon with UDP, WS and WSS on 127.0.0.1, its certificate signed by
/// `ca`. `top` is added to the top-level keys, `websocket` to the
/// `[websocket]` table.
pub fn start(ca: &Ca, dir: &TempDir, top: &str, websocket: &str) -> Kamrs {
    let (cert, key) = ca.server("kamrs ws test").write(dir.path(), "server");
    let config = format!(
        "listen = [\"udp:127.0.0.1:0\", \"ws:127.0.0.1:0\", \"wss:127.0.0.1:0\"]\n{top}\n\
         [tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\
         [websocket]\n{websocket}\n",
        cert.display(),
        key.display()
    );
    Kamrs::start_with_config(&config, &[])
}

/// The `--ctl` address of this daemon's control socket, for kamrsctl.
pub fn ctl_socket(k: &Kamrs) -> String {
    format!("unix:{}", k.ctl.as_ref().expect("control socket").display())
}

/// `kamrsctl --json ul.lookup AOR`: the AoR, or None when it is not found.
pub fn lookup(k: &Kamrs, aor: &str) -> Option<Value> {
    let socket = ctl_socket(k);
    let run = kamrsctl(&["--ctl", &socket, "--json", "ul.lookup", aor], &[]);
    match run.code() {
        Some(0) => Some(
            serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("ul.lookup {aor}: {e}: {}", run.stdout)),
        ),
        Some(1) if run.stderr.contains("AOR not found") => None,
        _ => panic!("kamrsctl ul.lookup {aor}: {run:?}"),
    }
}

pub fn raw_daemon(top: &str, websocket: &str) -> (Kamrs, TempDir) {
    let ca = Ca::new("kamrs ws raw CA");
    let dir = TempDir::new("ws-raw");
    let k = start(&ca, &dir, top, websocket);
    (k, dir)
}

/// The daemon still serves: a fresh WebSocket REGISTER gets 200 (and the
/// connection is closed again, taking its binding with it).
pub fn assert_ws_alive(k: &Kamrs) {
    drop(ws_register(k, &format!("alive{}", unique())));
}

/// Every connection the test opened is closed (after the test dropped
/// its own): none leaks in the daemon's count.
pub fn assert_no_connections_left(k: &Kamrs) {
    assert_eq!(k.stat_until("websocket:ws_current_connections", 0), 0);
}

// ------------------------------------------------------------ raw clients

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The Sec-WebSocket-Accept for [`KEY`] (RFC 6455 §1.3).
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub const OP_CONT: u8 = 0x0;

pub const OP_TEXT: u8 = 0x1;

pub const OP_CLOSE: u8 = 0x8;

pub const OP_PING: u8 = 0x9;

pub const OP_PONG: u8 = 0xA;

/// The HTTP answer to an upgrade: status, header section, body (what came
/// until the close for a refusal; nothing for a 101).
pub struct Upgrade {
    pub stream: TcpStream,
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends an upgrade request with these extra header lines and reads the
/// answer.
pub fn upgrade(addr: SocketAddr, extra: &[&str]) -> Upgrade {
    let mut stream = tcp_connect(addr);
    let mut req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = read_exact_timeout(&mut stream, 1, REPLY_TIMEOUT)
            .unwrap_or_else(|| panic!("no complete HTTP answer; got {head:?}"));
        head.extend_from_slice(&b);
    }
    let head = String::from_utf8(head).expect("UTF-8 head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let mut body = Vec::new();
    if status != 101 {
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let _ = stream.read_to_end(&mut body);
    }
    Upgrade {
        stream,
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A header's value in an HTTP head (case-insensitive name).
pub fn http_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// An accepted SIP WebSocket.
pub fn open(addr: SocketAddr) -> TcpStream {
    let u = upgrade(addr, &["Sec-WebSocket-Protocol: sip"]);
    assert_eq!(u.status, 101, "{}", u.head);
    assert_eq!(
        http_header(&u.head, "Sec-WebSocket-Accept"),
        Some(ACCEPT),
        "{}",
        u.head
    );
    assert_eq!(
        http_header(&u.head, "Sec-WebSocket-Protocol"),
        Some("sip"),
        "{}",
        u.head
    );
    u.stream
}

/// A frame: FIN and opcode, the length in the shortest form, the payload
/// masked with `mask` when there is one.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = frame_header(fin, opcode, payload.len() as u64, mask);
    match mask {
        Some(m) => f.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4])),
        None => f.extend_from_slice(payload),
    }
    f
}

/// Only the header of a frame announcing `len` payload bytes.
pub fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        f.push(m | len as u8);
    } else if len <= 0xffff {
        f.push(m | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(m) = mask {
        f.extend_from_slice(&m);
    }
    f
}

pub const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// A frame from the server: (FIN, opcode, payload).
#[derive(Debug)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a Close frame.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OP_CLOSE, "{self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// The next server frame, or None when the connection closes or nothing
/// complete comes within `timeout`. A server frame must not be masked.
pub fn read_frame(s: &mut TcpStream, timeout: Duration) -> Option<Frame> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let h = read_exact_timeout(s, 2, left())?;
    assert_eq!(h[1] & 0x80, 0, "a server frame is masked: {h:?}");
    let len = match h[1] & 0x7f {
        126 => u16::from_be_bytes(read_exact_timeout(s, 2, left())?.try_into().unwrap()) as u64,
        127 => u64::from_be_bytes(read_exact_timeout(s, 8, left())?.try_into().unwrap()),
        n => n as u64,
    };
    assert!(len < 8 << 20, "a {len}-byte server frame");
    let payload = if len == 0 {
        Vec::new()
    } else {
        read_exact_timeout(s, len as usize, left())?
    };
    Some(Frame {
        fin: h[0] & 0x80 != 0,
        opcode: h[0] & 0x0f,
        payload,
    })
}

/// The next server frame, which must come.
pub fn must_read(s: &mut TcpStream, what: &str) -> Frame {
    read_frame(s, REPLY_TIMEOUT).unwrap_or_else(|| panic!("no frame: {what}"))
}

/// A REGISTER for `aor` from a WebSocket phone (Contact on a `.invalid`
/// host, as JsSIP's).
pub fn ws_register_request(aor: &str, port: u16, expires: u32) -> String {
    let contact = format!("sip:{aor}@{}.invalid;transport=ws", unique());
    via_transport(
        &register(
            aor,
            Some(&contact),
            Some(expires),
            &unique(),
            1,
            port,
            "raw-ws",
        ),
        "WS",
    )
}

/// Sends one SIP message as a masked text frame; the reply, parsed.
pub fn ws_exchange(s: &mut TcpStream, msg: &str) -> Response {
    s.write_all(&frame(true, OP_TEXT, msg.as_bytes(), MASK))
        .expect("write frame");
    // A keepalive Ping may come first: answered, as a phone does.
    let f = loop {
        let f = must_read(s, "a SIP reply");
        if f.opcode != OP_PING {
            break f;
        }
        s.write_all(&frame(true, OP_PONG, &f.payload, MASK))
            .expect("write Pong");
    };
    assert!(f.fin, "{f:?}");
    assert_eq!(f.opcode, OP_TEXT, "replies go as text frames: {f:?}");
    Response::parse(&f.payload).unwrap_or_else(|e| panic!("bad reply: {e}"))
}

/// Registers `aor` over a fresh WebSocket; the open connection.
pub fn ws_register(k: &Kamrs, aor: &str) -> TcpStream {
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request(aor, port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
    s
}

/// Reads until a Close frame (returned) or the end of the connection
/// (None), skipping other frames; panics if it stays open past `timeout`.
pub fn wait_close(s: &mut TcpStream, timeout: Duration, what: &str) -> Option<Frame> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match read_frame(s, left) {
            Some(f) if f.opcode == OP_CLOSE => return Some(f),
            Some(_) => continue,
            None => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: still open after {timeout:?}"
                );
                return None;
            }
        }
    }
}

/// After a Close: the server ends the TCP connection.
pub fn assert_eof(s: &mut TcpStream, what: &str) {
    assert!(
        matches!(wait_closed(s, REPLY_TIMEOUT), Closed::Yes { .. }),
        "{what}: the connection stayed open after the Close"
    );
}

/// An OPTIONS over WebSocket from local `port` (Via `WS`), Call-ID
/// `call_id`: the registrar answers it 501, so it shows what came before
/// it was or was not answered.
pub fn ws_options(port: u16, call_id: &str) -> String {
    crate::via_transport(&crate::sip_request("OPTIONS", call_id, 1, port, &[]), "WS")
}

/// Sends an OPTIONS on `s` and asserts that the next reply is its 501:
/// nothing sent before it was answered.
pub fn assert_next_reply_is_options(s: &mut TcpStream) {
    let port = s.local_addr().expect("local address").port();
    let call_id = crate::unique();
    let r = ws_exchange(s, &ws_options(port, &call_id));
    assert_eq!(r.status, 501, "{}", r.raw);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
}
