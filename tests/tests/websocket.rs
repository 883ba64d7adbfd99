//! SIP over WebSocket (RFC 7118) end to end: a real JsSIP user agent
//! under Node (tests/web/jssip.mjs) over ws: and wss:, and hostile raw
//! clients written here byte by byte (frames per RFC 6455 §5, masked as a
//! client must, except where the test is that they are not).
//!
//! After each hostile client, a fresh WebSocket REGISTER must get its 200:
//! the daemon still serves. Every wait is on an event (a JSON line from
//! node, a frame, a closed socket, a changed lookup) with a bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{kamrsctl, register, HttpConn};
use kamrs_tests::pki::Ca;
use kamrs_tests::*;
use serde_json::{json, Value};

/// How long JsSIP may take for one step (connect and register, or
/// unregister).
const NODE_STEP: Duration = Duration::from_secs(20);

// ------------------------------------------------------------- the daemon

/// A daemon with UDP, WS and WSS on 127.0.0.1, its certificate signed by
/// `ca`. `top` is added to the top-level keys, `websocket` to the
/// `[websocket]` table.
fn start(ca: &Ca, dir: &TempDir, top: &str, websocket: &str) -> Kamrs {
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

fn ctl_socket(k: &Kamrs) -> String {
    format!("unix:{}", k.ctl.as_ref().expect("control socket").display())
}

/// `kamrsctl --json ul.lookup AOR`: the AoR, or None when it is not found.
fn lookup(k: &Kamrs, aor: &str) -> Option<Value> {
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

/// Polls `ul.lookup AOR` until `want(found)` holds, for up to `within`;
/// returns the last answer either way.
fn lookup_until(
    k: &Kamrs,
    aor: &str,
    within: Duration,
    want: impl Fn(&Option<Value>) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = lookup(k, aor);
        if want(&got) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One statistic (`group:name`) over the control socket.
fn stat(k: &Kamrs, name: &str) -> u64 {
    let mut conn = HttpConn::unix(k.ctl.as_ref().expect("control socket"));
    let v = conn.call("stats.get_statistics", json!([name]));
    let list = v["result"].as_array().unwrap_or_else(|| panic!("{v}"));
    let line = list
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in {v}"));
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: not a number in {line}"))
}

/// Waits up to 5 s for a statistic to reach `want`; its last value.
fn stat_until(k: &Kamrs, name: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = stat(k, name);
        if v == want || Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ JsSIP

/// Whether node and tests/web/node_modules (jssip, ws) are there; under
/// CI=true their absence fails the test.
fn jssip_ready() -> Option<PathBuf> {
    if !have("node") {
        return None;
    }
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let installed = ["jssip", "ws"]
        .iter()
        .all(|p| web.join(format!("node_modules/{p}/package.json")).exists());
    if !installed {
        let fix = format!("npm ci --prefix {}", web.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("jssip/ws are not installed, and CI=true: .ci/run must run `{fix}`");
        }
        eprintln!("SKIPPED: jssip/ws are not installed: run `{fix}`");
        return None;
    }
    Some(web.join("jssip.mjs"))
}

/// tests/web/jssip.mjs running; killed when dropped.
struct JsSip {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl JsSip {
    fn start(script: &Path, url: &str, aor: &str, ca: Option<&Path>) -> JsSip {
        let mut command = Command::new("node");
        command.arg(script).arg(url).arg(aor);
        if let Some(ca) = ca {
            command.arg(ca);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let keep = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            keep.lock().unwrap().push_str(&s);
        });
        JsSip {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    /// Reads events until `event`, within [`NODE_STEP`]; panics on a
    /// failure event, an exit or the timeout, with what node wrote.
    fn wait_for(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + NODE_STEP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "no {event:?} from jssip.mjs ({e}); saw {seen:?}; stderr:\n{}",
                        self.stderr.lock().unwrap()
                    );
                }
            };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("jssip.mjs printed {line:?}: {e}"));
            if v["event"] == event {
                return v;
            }
            if ["registrationFailed", "error", "timeout"]
                .contains(&v["event"].as_str().unwrap_or(""))
            {
                panic!("jssip.mjs, waiting for {event:?}: {v}; before: {seen:?}");
            }
            seen.push(v);
        }
    }

    fn command(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write to jssip.mjs");
        stdin.flush().expect("flush");
    }

    /// SIGKILL: node gets no chance to unregister; the kernel closes its
    /// socket.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for JsSip {
    fn drop(&mut self) {
        self.stdin.take();
        self.kill();
    }
}

/// The one binding of a lookup: (Address, Received, Socket).
fn binding(l: &Value) -> (String, String, String) {
    let contacts = l["Contacts"].as_array().unwrap_or_else(|| panic!("{l}"));
    assert_eq!(contacts.len(), 1, "{l}");
    let c = &contacts[0]["Contact"];
    let field = |n: &str| {
        c[n].as_str()
            .unwrap_or_else(|| panic!("no {n} in {l}"))
            .to_owned()
    };
    (field("Address"), field("Received"), field("Socket"))
}

#[test]
fn jssip_registers_over_ws_and_unregisters() {
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs ws test CA");
    let dir = TempDir::new("ws-jssip");
    let k = start(&ca, &dir, "", "");
    let url = format!("ws://{}", k.ws());
    let mut ua = JsSip::start(&script, &url, "sip:alice@localhost", None);
    let reg = ua.wait_for("registered");
    assert_eq!(reg["status"], 200, "{reg}");
    let contact = reg["contact"].as_str().unwrap().to_owned();
    assert!(
        contact.contains(".invalid") && contact.contains("transport=ws"),
        "{reg}"
    );

    let l = lookup(&k, "alice").expect("alice is registered");
    let (address, received, socket) = binding(&l);
    assert!(address.contains(".invalid"), "{l}");
    assert!(address.contains("transport=ws"), "{l}");
    assert!(
        received.starts_with("sip:127.0.0.1:") && received.ends_with(";transport=ws"),
        "{l}"
    );
    assert_eq!(socket, format!("ws:{}", k.ws()), "{l}");
    assert_eq!(stat(&k, "websocket:ws_current_connections"), 1);
    assert_eq!(stat(&k, "websocket:wss_current_connections"), 0);
    assert_eq!(stat(&k, "websocket:ws_successful_handshakes"), 1);

    ua.command("unregister");
    let unreg = ua.wait_for("unregistered");
    assert_eq!(unreg["status"], 200, "{unreg}");
    assert_eq!(lookup(&k, "alice"), None);
    ua.command("quit");
    ua.wait_for("quit");
    assert_eq!(stat_until(&k, "websocket:ws_current_connections", 0), 0);
}

#[test]
fn jssip_registers_over_wss_and_a_killed_phone_takes_its_binding_along() {
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs wss test CA");
    let dir = TempDir::new("wss-jssip");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let k = start(&ca, &dir, "", "");
    let url = format!("wss://localhost:{}", k.wss().port());
    let mut ua = JsSip::start(&script, &url, "sip:carol@localhost", Some(&ca_path));
    let reg = ua.wait_for("registered");
    assert_eq!(reg["status"], 200, "{reg}");

    let l = lookup(&k, "carol").expect("carol is registered");
    let (address, received, socket) = binding(&l);
    assert!(address.contains(".invalid"), "{l}");
    assert!(received.ends_with(";transport=wss"), "{l}");
    assert_eq!(socket, format!("wss:{}", k.wss()), "{l}");
    assert_eq!(stat(&k, "websocket:wss_current_connections"), 1);
    assert_eq!(stat(&k, "websocket:ws_current_connections"), 0);

    ua.kill();
    let after = lookup_until(&k, "carol", Duration::from_secs(5), Option::is_none);
    assert_eq!(after, None, "the binding outlived its WebSocket");
    assert_eq!(stat_until(&k, "websocket:wss_current_connections", 0), 0);
}

#[test]
fn a_wss_client_that_does_not_trust_the_certificate_is_refused_by_jssip() {
    // The CA argument is what makes the wss test pass: another CA fails.
    let Some(script) = jssip_ready() else { return };
    let ca = Ca::new("kamrs wss test CA");
    let other = Ca::new("another CA");
    let dir = TempDir::new("wss-jssip-untrusted");
    let ca_path = dir.path().join("other.pem");
    std::fs::write(&ca_path, &other.cert_pem).unwrap();
    let k = start(&ca, &dir, "", "");
    let url = format!("wss://localhost:{}", k.wss().port());
    let mut ua = JsSip::start(&script, &url, "sip:dave@localhost", Some(&ca_path));
    let gone = ua.wait_for("disconnected");
    assert_eq!(gone["error"], true, "{gone}");
    assert_eq!(lookup(&k, "dave"), None);
    assert_eq!(stat(&k, "websocket:ws_successful_handshakes"), 0);
}

// ------------------------------------------------------------ raw clients

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The Sec-WebSocket-Accept for [`KEY`] (RFC 6455 §1.3).
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The HTTP answer to an upgrade: status, header section, body (what came
/// until the close for a refusal; nothing for a 101).
struct Upgrade {
    stream: TcpStream,
    status: u16,
    head: String,
    body: String,
}

/// Sends an upgrade request with these extra header lines and reads the
/// answer.
fn upgrade(addr: SocketAddr, extra: &[&str]) -> Upgrade {
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
fn http_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// An accepted SIP WebSocket.
fn open(addr: SocketAddr) -> TcpStream {
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
fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = frame_header(fin, opcode, payload.len() as u64, mask);
    match mask {
        Some(m) => f.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4])),
        None => f.extend_from_slice(payload),
    }
    f
}

/// Only the header of a frame announcing `len` payload bytes.
fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
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

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// A frame from the server: (FIN, opcode, payload).
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl Frame {
    /// The status code of a Close frame.
    fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OP_CLOSE, "{self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// The next server frame, or None when the connection closes or nothing
/// complete comes within `timeout`. A server frame must not be masked.
fn read_frame(s: &mut TcpStream, timeout: Duration) -> Option<Frame> {
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
fn must_read(s: &mut TcpStream, what: &str) -> Frame {
    read_frame(s, REPLY_TIMEOUT).unwrap_or_else(|| panic!("no frame: {what}"))
}

/// A REGISTER for `aor` from a WebSocket phone (Contact on a `.invalid`
/// host, as JsSIP's).
fn ws_register_request(aor: &str, port: u16, expires: u32) -> String {
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
fn ws_exchange(s: &mut TcpStream, msg: &str) -> Response {
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
fn ws_register(k: &Kamrs, aor: &str) -> TcpStream {
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request(aor, port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
    s
}

/// The daemon still serves: a fresh WebSocket REGISTER gets 200 (and the
/// connection is closed again, taking its binding with it).
fn assert_ws_alive(k: &Kamrs) {
    drop(ws_register(k, &format!("alive{}", unique())));
}

/// Reads until a Close frame (returned) or the end of the connection
/// (None), skipping other frames; panics if it stays open past `timeout`.
fn wait_close(s: &mut TcpStream, timeout: Duration, what: &str) -> Option<Frame> {
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
fn assert_eof(s: &mut TcpStream, what: &str) {
    assert!(
        matches!(wait_closed(s, REPLY_TIMEOUT), Closed::Yes { .. }),
        "{what}: the connection stayed open after the Close"
    );
}

/// Every connection the test opened is closed (after the test dropped
/// its own): none leaks in the daemon's count.
fn assert_no_connections_left(k: &Kamrs) {
    assert_eq!(stat_until(k, "websocket:ws_current_connections", 0), 0);
}

fn raw_daemon(top: &str, websocket: &str) -> (Kamrs, TempDir) {
    let ca = Ca::new("kamrs ws raw CA");
    let dir = TempDir::new("ws-raw");
    let k = start(&ca, &dir, top, websocket);
    (k, dir)
}

#[test]
fn an_upgrade_without_the_sip_subprotocol_gets_400_and_is_counted() {
    let (k, _dir) = raw_daemon("", "");
    for extra in [&[][..], &["Sec-WebSocket-Protocol: chat, SIP"][..]] {
        let u = upgrade(k.ws(), extra);
        assert_eq!(u.status, 400, "{extra:?}: {}{}", u.head, u.body);
        assert!(u.body.contains("Sec-WebSocket-Protocol"), "{}", u.body);
        assert_eq!(
            http_header(&u.head, "Sec-WebSocket-Protocol"),
            Some("sip"),
            "{}",
            u.head
        );
    }
    assert_eq!(stat_until(&k, "websocket:ws_failed_handshakes", 2), 2);
    assert_eq!(stat(&k, "websocket:ws_successful_handshakes"), 0);
    // `sip` among others is enough, and is what the 101 names.
    let u = upgrade(k.ws(), &["Sec-WebSocket-Protocol: chat, sip"]);
    assert_eq!(u.status, 101, "{}", u.head);
    assert_eq!(http_header(&u.head, "Sec-WebSocket-Protocol"), Some("sip"));
    drop(u);
    assert_ws_alive(&k);
    assert_eq!(stat(&k, "websocket:ws_failed_handshakes"), 2);
}

#[test]
fn allowed_origins_refuse_other_pages_with_403() {
    let (k, _dir) = raw_daemon("", "allowed_origins = [\"https://phone.example.com\"]");
    let evil = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://evil.example",
        ],
    );
    assert_eq!(evil.status, 403, "{}{}", evil.head, evil.body);
    assert!(evil.body.contains("allowed_origins"), "{}", evil.body);
    // With a list, no Origin at all is not an allowed page either.
    let none = upgrade(k.ws(), &["Sec-WebSocket-Protocol: sip"]);
    assert_eq!(none.status, 403, "{}", none.head);
    // A sandboxed page's opaque Origin is not on the list either.
    let null = upgrade(k.ws(), &["Sec-WebSocket-Protocol: sip", "Origin: null"]);
    assert_eq!(null.status, 403, "{}", null.head);
    assert_eq!(stat_until(&k, "websocket:ws_failed_handshakes", 3), 3);
    // Scheme and host compare without case (RFC 6454 serialises them in
    // lower case).
    let upper = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: HTTPS://Phone.Example.COM",
        ],
    );
    assert_eq!(upper.status, 101, "{}", upper.head);
    // Another port is another origin.
    let port = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://phone.example.com:8443",
        ],
    );
    assert_eq!(port.status, 403, "{}", port.head);

    let good = upgrade(
        k.ws(),
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://phone.example.com",
        ],
    );
    assert_eq!(good.status, 101, "{}", good.head);
    let mut s = good.stream;
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request("erin", port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_frame_over_max_message_size_closes_with_1009_without_being_read() {
    let (k, _dir) = raw_daemon("max_message_size = 4096", "");
    // A header announcing 1 GiB, and 100 bytes of it.
    let mut s = open(k.ws());
    let mut bytes = frame_header(true, OP_TEXT, 1 << 30, MASK);
    bytes.extend_from_slice(&[b'x'; 100]);
    s.write_all(&bytes).unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "1 GiB frame").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    assert_eof(&mut s, "1 GiB frame");

    // Fragments each under the limit, a message over it: the same.
    let mut s = open(k.ws());
    let chunk = [b'y'; 3000];
    s.write_all(&frame(false, OP_TEXT, &chunk, MASK)).unwrap();
    s.write_all(&frame(false, OP_CONT, &chunk, MASK)).unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "6000-byte message").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1009), "{close:?}");
    assert_eof(&mut s, "6000-byte message");

    // Just under the limit is a message (a REGISTER padded with a header).
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("frank", port, 600);
    let pad = format!("X-Pad: {}", "p".repeat(4096 - req.len() - 10));
    let req = req.replacen("Content-Length", &format!("{pad}\r\nContent-Length"), 1);
    assert!(req.len() <= 4096 && req.len() > 4000, "{}", req.len());
    let r = ws_exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_ws_alive(&k);
    drop(s);
    assert_no_connections_left(&k);
}

#[test]
fn a_never_finished_frame_is_closed_after_the_timeouts_while_others_are_served() {
    let (k, _dir) = raw_daemon("tcp_msg_data_timeout = 1\ntcp_connection_lifetime = 3", "");
    let mut bytes = frame_header(true, OP_TEXT, 200, MASK);
    bytes.extend_from_slice(&[b'z'; 50]);
    // Lower bounds are from before the daemon starts counting, upper ones
    // from after.
    //
    // The first message never finishes: tcp_msg_data_timeout (1 s), not
    // tcp_connection_lifetime (3 s).
    let before = Instant::now();
    let mut first = open(k.ws());
    let after = Instant::now();
    first.write_all(&bytes).unwrap();
    // Meanwhile another phone is served.
    assert_ws_alive(&k);
    let close = wait_close(&mut first, Duration::from_secs(6), "unfinished first frame")
        .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert_eof(&mut first, "unfinished first frame");
    let (min, max) = (before.elapsed(), after.elapsed());
    assert!(min >= Duration::from_secs(1), "closed after {min:?}");
    assert!(
        max < Duration::from_millis(2500),
        "closed after {max:?}, not tcp_msg_data_timeout"
    );

    // After a whole message (an OPTIONS: no binding), an unfinished one:
    // tcp_connection_lifetime, counted from the last whole message.
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "WS");
    let before = Instant::now();
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
    s.write_all(&bytes).unwrap();
    assert_ws_alive(&k);
    let close = wait_close(&mut s, Duration::from_secs(8), "unfinished second frame")
        .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert_eof(&mut s, "unfinished second frame");
    let took = before.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "closed after {took:?}, before tcp_connection_lifetime"
    );
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn a_close_in_the_middle_of_a_fragmented_message_is_answered() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("gina", port, 600);
    let (a, _rest) = req.split_at(40);
    s.write_all(&frame(false, OP_TEXT, a.as_bytes(), MASK))
        .unwrap();
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    s.write_all(&frame(true, OP_CLOSE, &close, MASK)).unwrap();
    let answer = wait_close(&mut s, REPLY_TIMEOUT, "Close mid-message").expect("a Close back");
    assert_eq!(answer.close_code(), Some(1000), "{answer:?}");
    assert_eof(&mut s, "Close mid-message");
    // The half message registered nothing.
    assert_eq!(lookup(&k, "gina"), None);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn an_unmasked_client_frame_closes_with_1002() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("hank", port, 600);
    s.write_all(&frame(true, OP_TEXT, req.as_bytes(), None))
        .unwrap();
    let close = wait_close(&mut s, REPLY_TIMEOUT, "unmasked frame").expect("a Close frame");
    assert_eq!(close.close_code(), Some(1002), "{close:?}");
    assert_eof(&mut s, "unmasked frame");
    assert_eq!(lookup(&k, "hank"), None);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}

#[test]
fn a_client_ping_gets_its_pong() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    s.write_all(&frame(true, OP_PING, b"are you there", MASK))
        .unwrap();
    let pong = must_read(&mut s, "a Pong");
    assert_eq!(pong.opcode, OP_PONG, "{pong:?}");
    assert_eq!(pong.payload, b"are you there");
    // The connection is still usable.
    let port = s.local_addr().unwrap().port();
    let r = ws_exchange(&mut s, &ws_register_request("ivan", port, 600));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_registered_client_that_never_answers_pings_is_closed_as_lost() {
    let (k, _dir) = raw_daemon("", "keepalive_timeout = 1");
    // Before the REGISTER: the daemon's silence starts after it.
    let since = Instant::now();
    let mut mute = ws_register(&k, "mute");
    let mut polite = ws_register(&k, "polite");

    // The polite one answers every Ping, in a thread, for 4 s.
    let answering = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut pings = 0;
        while let Some(f) = read_frame(
            &mut polite,
            deadline.saturating_duration_since(Instant::now()),
        ) {
            assert_eq!(f.opcode, OP_PING, "{f:?}");
            pings += 1;
            polite
                .write_all(&frame(true, OP_PONG, &f.payload, MASK))
                .unwrap();
        }
        (pings, polite)
    });

    let ping = must_read(&mut mute, "a keepalive Ping");
    assert_eq!(ping.opcode, OP_PING, "{ping:?}");
    assert!(
        since.elapsed() >= Duration::from_millis(950),
        "pinged after {:?}",
        since.elapsed()
    );
    // No Pong: closed as lost (no Close frame is owed to a lost peer).
    let end = wait_close(&mut mute, Duration::from_secs(5), "mute client");
    assert!(end.is_none(), "{end:?}");
    let gone = lookup_until(&k, "mute", Duration::from_secs(5), Option::is_none);
    assert_eq!(gone, None, "the lost client's binding stayed");
    assert_eq!(stat_until(&k, "websocket:ws_keepalive_lost", 1), 1);

    let (pings, mut polite) = answering.join().unwrap();
    assert!(pings >= 2, "the polite client got {pings} Pings in 4 s");
    assert!(
        lookup(&k, "polite").is_some(),
        "the polite client was dropped"
    );
    let port = polite.local_addr().unwrap().port();
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "WS");
    assert_eq!(ws_exchange(&mut polite, &options).status, 501);
    assert_eq!(stat(&k, "websocket:ws_keepalive_lost"), 1);
    assert_ws_alive(&k);
    drop(polite);
    assert_no_connections_left(&k);
    assert_eq!(
        lookup_until(&k, "polite", Duration::from_secs(5), Option::is_none),
        None
    );
}

#[test]
fn an_unfinished_upgrade_is_closed_after_handshake_timeout_and_counted() {
    let (k, _dir) = raw_daemon("", "handshake_timeout = 1");
    let before = Instant::now();
    let mut s = tcp_connect(k.ws());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    let after = Instant::now();
    // Meanwhile a whole upgrade is served.
    assert_ws_alive(&k);
    assert!(
        matches!(
            wait_closed(&mut s, Duration::from_secs(5)),
            Closed::Yes { .. }
        ),
        "an unfinished upgrade stayed open"
    );
    assert!(
        before.elapsed() >= Duration::from_secs(1),
        "{:?}",
        before.elapsed()
    );
    assert!(
        after.elapsed() < Duration::from_millis(2500),
        "{:?}",
        after.elapsed()
    );
    assert_eq!(stat_until(&k, "websocket:ws_failed_handshakes", 1), 1);
    assert_eq!(stat(&k, "websocket:ws_successful_handshakes"), 1);
    assert_no_connections_left(&k);
}

#[test]
fn a_sip_message_in_fragments_or_a_binary_frame_is_one_request() {
    const OP_BINARY: u8 = 0x2;
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    // Binary: the reply is still text.
    let req = ws_register_request("jane", port, 600);
    s.write_all(&frame(true, OP_BINARY, req.as_bytes(), MASK))
        .unwrap();
    let f = must_read(&mut s, "the reply to a binary REGISTER");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    assert_eq!(Response::parse(&f.payload).unwrap().status, 200);
    // Three fragments with a Ping between them: one REGISTER, one reply.
    let req = ws_register_request("kate", port, 600);
    let (a, rest) = req.as_bytes().split_at(30);
    let (b, c) = rest.split_at(30);
    s.write_all(&frame(false, OP_TEXT, a, MASK)).unwrap();
    s.write_all(&frame(false, OP_CONT, b, MASK)).unwrap();
    s.write_all(&frame(true, OP_PING, b"mid", MASK)).unwrap();
    s.write_all(&frame(true, OP_CONT, c, MASK)).unwrap();
    let pong = must_read(&mut s, "the Pong between fragments");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (OP_PONG, &b"mid"[..])
    );
    let f = must_read(&mut s, "the reply to a fragmented REGISTER");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    let r = Response::parse(&f.payload).unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(lookup(&k, "jane").is_some() && lookup(&k, "kate").is_some());
    // Nothing more came: the next reply is the next request's.
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "WS");
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
}

#[test]
fn a_crlf_keepalive_in_a_message_is_not_a_request() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = ws_register(&k, "lena");
    for ka in ["\r\n\r\n", "\r\n"] {
        s.write_all(&frame(true, OP_TEXT, ka.as_bytes(), MASK))
            .unwrap();
    }
    // The next frame is the OPTIONS's 501: nothing answered the CRLFs.
    let port = s.local_addr().unwrap().port();
    let call_id = unique();
    let options = via_transport(&sip_request("OPTIONS", &call_id, 1, port, &[]), "WS");
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
    assert!(lookup(&k, "lena").is_some());
}

#[test]
fn an_upgrade_with_endless_headers_is_refused_before_the_handshake_timeout() {
    // The handshake timeout is far: what ends it is a bound on its size.
    let (k, _dir) = raw_daemon("", "handshake_timeout = 30");
    let mut s = tcp_connect(k.ws());
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: sip\r\n")
        .unwrap();
    let line = format!("X-Junk: {}\r\n", "j".repeat(1000));
    let mut sent = 0;
    // Up to 1 MiB of header lines; the daemon may hang up on the way.
    while sent < 1 << 20 {
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
        sent += line.len();
    }
    assert!(
        matches!(
            wait_closed(&mut s, Duration::from_secs(10)),
            Closed::Yes { .. }
        ),
        "an upgrade with {sent} bytes of headers is still open"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(stat_until(&k, "websocket:ws_failed_handshakes", 1), 1);
    assert_ws_alive(&k);
    drop(s);
    assert_no_connections_left(&k);
}

#[test]
fn a_websocket_peer_that_never_reads_is_closed_after_tcp_send_timeout() {
    let (k, _dir) = raw_daemon(
        "max_message_size = 4194304\nmax_line_length = 65536\nmax_contacts = 5000\n\
         contact_max_size = 600\ntcp_send_timeout = 2",
        "",
    );
    // `big` gets 1,000 bindings of about 500 bytes: every query's 200 is
    // half a megabyte. Its connection stays open (the bindings go with it).
    let mut setup = open(k.ws());
    let port = setup.local_addr().unwrap().port();
    let pad = "p".repeat(440);
    let contacts: Vec<String> = (0..1000)
        .map(|i| format!("<sip:big{i}-{pad}@{i}.invalid;transport=ws>"))
        .collect();
    let mut req = register("big", None, Some(600), &unique(), 1, port, "raw-ws");
    let lines: String = contacts
        .chunks(100)
        .map(|c| format!("Contact: {}\r\n", c.join(", ")))
        .collect();
    req = via_transport(&req, "WS").replacen("Expires:", &format!("{lines}Expires:"), 1);
    let r = ws_exchange(&mut setup, &req);
    assert_eq!(r.status, 200, "{}", &r.raw[..r.raw.len().min(500)]);
    assert_eq!(r.values("Contact").len(), 1000);
    let before = proc_status_kb(k.pid(), "VmHWM");

    // 200 queries (100 MB of replies) from a peer that never reads.
    let mut hog = open(k.ws());
    let port = hog.local_addr().unwrap().port();
    hog.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut queries = Vec::new();
    for _ in 0..200 {
        let q = via_transport(
            &register("big", None, None, &unique(), 1, port, "hog"),
            "WS",
        );
        queries.extend(frame(true, OP_TEXT, q.as_bytes(), MASK));
    }
    // The daemon takes one request at a time: it may stop reading first.
    let _ = hog.write_all(&queries);
    let closed = wait_hangup(&hog, Duration::from_secs(20));
    let grown_mb = proc_status_kb(k.pid(), "VmHWM").saturating_sub(before) / 1024;
    let closed = closed.expect("the daemon must close a WebSocket that does not read");
    assert!(closed < Duration::from_secs(15), "closed after {closed:?}");
    assert!(
        grown_mb < 12,
        "peak RSS grew by {grown_mb} MB for one WebSocket that never reads"
    );
    assert_eq!(stat_until(&k, "tcp:send_timeout", 1), 1);
    // The setup connection and everyone else are still served.
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "WS");
    assert_eq!(ws_exchange(&mut setup, &options).status, 501);
    assert_ws_alive(&k);
}

#[test]
fn nat_keepalive_options_reach_a_websocket_binding_over_its_connection() {
    let (k, _dir) = raw_daemon("ka_mode = 1\nka_interval = 1", "");
    let mut s = ws_register(&k, "olga");
    let f = read_frame(&mut s, Duration::from_secs(10)).expect("a keepalive OPTIONS");
    assert_eq!(f.opcode, OP_TEXT, "{f:?}");
    let options = String::from_utf8(f.payload).expect("UTF-8");
    assert!(options.starts_with("OPTIONS sip:olga@"), "{options}");
    assert!(options.contains("Via: SIP/2.0/WS "), "{options}");
    s.write_all(&frame(
        true,
        OP_TEXT,
        answer_options(&options).as_bytes(),
        MASK,
    ))
    .unwrap();
    assert_eq!(stat_until(&k, "usrloc:ka_answered", 1), 1);
    let l = lookup(&k, "olga").expect("olga");
    assert!(
        l["Contacts"][0]["Contact"]["KA-Roundtrip"]
            .as_u64()
            .is_some_and(|rtt| rtt > 0),
        "{l}"
    );
}

#[test]
fn a_crlf_nat_keepalive_to_a_websocket_goes_as_a_ping() {
    let (k, _dir) = raw_daemon("ka_mode = 1\nka_interval = 1\nka_method = \"CRLF\"", "");
    let mut s = ws_register(&k, "pavel");
    let f = read_frame(&mut s, Duration::from_secs(10)).expect("a keepalive");
    assert_eq!(f.opcode, OP_PING, "not a WebSocket Ping: {f:?}");
    s.write_all(&frame(true, OP_PONG, &f.payload, MASK))
        .unwrap();
    let port = s.local_addr().unwrap().port();
    let options = via_transport(&sip_request("OPTIONS", &unique(), 1, port, &[]), "WS");
    assert_eq!(ws_exchange(&mut s, &options).status, 501);
    assert!(lookup(&k, "pavel").is_some());
}

#[test]
fn a_websocket_whose_last_binding_expires_is_closed() {
    let (k, _dir) = raw_daemon("min_expires = 1", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    // Before the REGISTER; expiry has second resolution, so 3 s last
    // more than 2 s.
    let registered = Instant::now();
    let r = ws_exchange(&mut s, &ws_register_request("quinn", port, 3));
    assert_eq!(r.status, 200, "{}", r.raw);
    let close = wait_close(
        &mut s,
        Duration::from_secs(15),
        "expired binding's WebSocket",
    )
    .expect("a Close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert!(
        registered.elapsed() >= Duration::from_millis(1900),
        "closed after {:?}, before its binding expired",
        registered.elapsed()
    );
    assert_eof(&mut s, "expired binding's WebSocket");
    assert_eq!(lookup(&k, "quinn"), None);
    assert_no_connections_left(&k);
}

#[test]
fn an_unregistered_websocket_stays_open_and_can_register_again() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = open(k.ws());
    let port = s.local_addr().unwrap().port();
    let req = ws_register_request("rita", port, 600);
    let r = ws_exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    let unreg = req
        .replace("Expires: 600", "Expires: 0")
        .replace("CSeq: 1 ", "CSeq: 2 ");
    let r = ws_exchange(&mut s, &unreg);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(lookup(&k, "rita"), None);
    // Not closed (close_expired_tcp is about expiry, not a phone's own
    // unregistration): the same connection registers again.
    let again = req.replace("CSeq: 1 ", "CSeq: 3 ");
    let r = ws_exchange(&mut s, &again);
    assert_eq!(r.status, 200, "{}", r.raw);
    let l = lookup(&k, "rita").expect("rita again");
    assert_eq!(binding(&l).2, format!("ws:{}", k.ws()), "{l}");
    drop(s);
    assert_eq!(
        lookup_until(&k, "rita", Duration::from_secs(5), Option::is_none),
        None
    );
}

#[test]
fn handle_lost_tcp_false_keeps_a_closed_websockets_bindings() {
    let (k, _dir) = raw_daemon("", "handle_lost_tcp = false");
    let s = ws_register(&k, "sven");
    drop(s);
    // The daemon has seen the close once it no longer counts it.
    assert_no_connections_left(&k);
    let l = lookup(&k, "sven").expect("the binding outlives its connection");
    assert_eq!(binding(&l).2, format!("ws:{}", k.ws()), "{l}");
}

#[test]
fn plain_http_on_the_wss_port_is_closed_without_an_upgrade() {
    let (k, _dir) = raw_daemon("", "");
    let mut s = tcp_connect(k.wss());
    s.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if let Err(e) = s.read_to_end(&mut got) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "still open after 10 s: {got:?}"
        );
    }
    assert!(
        !String::from_utf8_lossy(&got).contains("101"),
        "a WebSocket without TLS on wss: {got:?}"
    );
    assert_eq!(stat(&k, "websocket:ws_successful_handshakes"), 0);
    assert_eq!(stat_until(&k, "websocket:wss_current_connections", 0), 0);
    assert_ws_alive(&k);
}

#[test]
fn protocol_errors_close_with_1002_and_bad_utf8_with_1007() {
    let (k, _dir) = raw_daemon("", "");
    let rsv1 = {
        let mut f = frame(true, OP_TEXT, b"x", MASK);
        f[0] |= 0x40;
        f
    };
    let text_in_text = {
        let mut f = frame(false, OP_TEXT, b"x", MASK);
        f.extend(frame(true, OP_TEXT, b"y", MASK));
        f
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a reserved opcode", frame(true, 0x3, b"x", MASK), 1002),
        ("RSV1 without an extension", rsv1, 1002),
        ("a fragmented Ping", frame(false, OP_PING, b"x", MASK), 1002),
        (
            "a 200-byte Ping",
            frame(true, OP_PING, &[b'p'; 200], MASK),
            1002,
        ),
        (
            "a continuation first",
            frame(true, OP_CONT, b"x", MASK),
            1002,
        ),
        ("a text frame inside a text message", text_in_text, 1002),
        ("a 1-byte Close", frame(true, OP_CLOSE, b"x", MASK), 1002),
        (
            "non-UTF-8 in a text message",
            frame(true, OP_TEXT, b"OPTIONS sip:\xff\xfe SIP/2.0\r\n", MASK),
            1007,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut s = open(k.ws());
        s.write_all(&bytes).unwrap();
        let close = wait_close(&mut s, REPLY_TIMEOUT, what).expect("a Close frame");
        assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
        assert_eof(&mut s, what);
    }
    // The same bytes in a binary message are a (bad) SIP request: no close.
    let mut s = open(k.ws());
    s.write_all(&frame(
        true,
        0x2,
        b"OPTIONS sip:\xff\xfe SIP/2.0\r\n\r\n",
        MASK,
    ))
    .unwrap();
    let port = s.local_addr().unwrap().port();
    let call_id = unique();
    let options = via_transport(&sip_request("OPTIONS", &call_id, 1, port, &[]), "WS");
    // Without a Via the garbage cannot be answered: the next reply is the
    // OPTIONS's.
    let r = ws_exchange(&mut s, &options);
    assert_eq!(r.status, 501, "{}", r.raw);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
    drop(s);
    assert_ws_alive(&k);
    assert_no_connections_left(&k);
}
