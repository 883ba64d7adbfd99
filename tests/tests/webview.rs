//! The web view (`GET /ui`) end to end: its shell and headers, the token
//! a WebSocket carries as a subprotocol, and the page in a real headless
//! chromium (Debian's, driven by puppeteer-core from tests/web/): a
//! REGISTER sent during the test shows up in the live events, the counters
//! and the chart without a reload, the search finds it, markup in SIP data
//! stays text; without a token the page asks for one and gets no data;
//! without `[ctl] token_file` it says that one is needed.
//!
//! Coordination with the node script is by JSON lines: it prints `ready`
//! once the page is live, the test then registers and writes the AoR to
//! its stdin, and it answers `done` with what it saw. Every wait is
//! bounded. A screenshot is left at `target/webview.png` (or
//! `$KAMRS_WEBVIEW_SCREENSHOT`); docs/webview.png is a copy of one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc;
use std::time::Duration;

use kamrs_tests::ctl::{http_ctl_addr, parse_reply, register};
use kamrs_tests::*;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

const TOKEN: &str = "0123456789abcdef-webview-token";
/// How long the node script may take to say it is ready, and then done
/// (it bounds its own waits by less).
const NODE_TIMEOUT: Duration = Duration::from_secs(100);

fn token_file(dir: &TempDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// kamrs with the HTTP control API on loopback; with the token file when
/// `token` is set.
fn start(dir: &TempDir, token: bool) -> (Kamrs, SocketAddr) {
    let token = if token {
        format!("token_file = \"{}\"\n", token_file(dir))
    } else {
        String::new()
    };
    let k = Kamrs::start(&format!("[ctl]\nlisten = \"http://127.0.0.1:0\"\n{token}"));
    let addr = http_ctl_addr(&k);
    (k, addr)
}

/// A GET with extra header lines: (status, lower-cased headers, body).
fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_shell_is_static_with_strict_headers_and_needs_no_token() {
    let dir = TempDir::new("webview-shell");
    let (_k, addr) = start(&dir, true);
    // What a browser sends when the admin types the address.
    let nav = "Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\n";
    let (status, h, body) = get(addr, "/ui", nav);
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "content-type"), Some("text/html; charset=utf-8"));
    let csp = header(&h, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header(&h, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&h, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&h, "cache-control"), Some("no-store"));
    assert!(body.contains("/ui/app.js"), "{body}");
    let (status, h, js) = get(addr, "/ui/app.js", nav);
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(js.contains("ul.subscribe"));
    assert_eq!(get(addr, "/ui/nope", nav).0, 404);
    // The shell is the only thing served without the token: the API, the
    // metrics and the root still need it, from a browser or not.
    assert_eq!(get(addr, "/metrics", nav).0, 401);
    assert_eq!(get(addr, "/metrics", "").0, 401);
    let mut conn = kamrs_tests::ctl::HttpConn::tcp(addr);
    conn.headers = vec![
        ("Origin".into(), format!("http://{addr}")),
        ("Sec-Fetch-Site".into(), "same-origin".into()),
    ];
    let r = conn
        .try_post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "ul.dump_prefix", "params": ["", "", 5]})
                .to_string()
                .as_bytes(),
            "application/json",
        )
        .unwrap();
    assert_eq!(r.status, 401, "{r:?}");
}

/// How a WebSocket handshake from the web view's origin ended: the
/// subprotocol the 101 named, or the refusal's status.
fn ws(addr: SocketAddr, protocols: Option<&str>, origin: &str) -> Result<Option<String>, u16> {
    let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("origin", HeaderValue::from_str(origin).unwrap());
    h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    h.insert("sec-fetch-mode", HeaderValue::from_static("websocket"));
    if let Some(p) = protocols {
        h.insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
    }
    match tungstenite::client::client(req, stream) {
        Ok((mut socket, resp)) => {
            let named = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            // Connected for real: a call is answered.
            socket
                .send(tungstenite::Message::text(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "core.version"}).to_string(),
                ))
                .unwrap();
            let answer = socket.read().unwrap();
            assert!(answer.to_string().contains("\"result\""), "{answer}");
            Ok(named)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        // A 101 naming a protocol we did not offer, and the like.
        Err(e) => panic!("handshake broke: {e}"),
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_websocket_carries_the_token_as_a_subprotocol() {
    let dir = TempDir::new("webview-ws");
    let (_k, addr) = start(&dir, true);
    let own = format!("http://{addr}");
    let right = format!("kamrs, kamrs.bearer.{}", hex(TOKEN));
    assert_eq!(ws(addr, Some(&right), &own), Ok(Some("kamrs".to_owned())));
    // Missing, wrong, not hex-encoded, or with a foreign Origin: refused.
    assert_eq!(ws(addr, None, &own), Err(401));
    assert_eq!(ws(addr, Some("kamrs"), &own), Err(401));
    let wrong = format!(
        "kamrs, kamrs.bearer.{}",
        hex("0123456789abcdef-webview-tokeN")
    );
    assert_eq!(ws(addr, Some(&wrong), &own), Err(401));
    assert_eq!(
        ws(addr, Some(&format!("kamrs, kamrs.bearer.{TOKEN}")), &own),
        Err(401)
    );
    assert_eq!(ws(addr, Some(&right), "https://evil.example"), Err(403));
    // Without a token file, no token opens a browser's socket.
    let dir2 = TempDir::new("webview-ws-open");
    let (_k2, addr2) = start(&dir2, false);
    assert_eq!(
        ws(addr2, Some(&right), &format!("http://{addr2}")),
        Err(403)
    );
}

/// Whether node, chromium and tests/web/node_modules are there; under
/// CI=true their absence fails the test (`have`).
fn browser_ready() -> Option<PathBuf> {
    if !have("chromium") {
        return None;
    }
    kamrs_tests::node::web_script("webview.mjs", &["puppeteer-core"])
}

/// The node script, in a process group of its own so that its chromium
/// goes with it if it must be killed.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Node {
    fn start(script: &Path, config: &Value) -> Node {
        let mut command = Command::new("node");
        command.arg(script).arg(config.to_string()).process_group(0);
        let kamrs_tests::node::NodeScript {
            child,
            stdin,
            lines,
            stderr,
        } = kamrs_tests::node::NodeScript::spawn(command);
        Node {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The next JSON line, which must be `step`; panics on `failed`, on
    /// anything else and on a timeout, with what node wrote.
    fn expect(&mut self, step: &str) -> Value {
        let line = match self.lines.recv_timeout(NODE_TIMEOUT) {
            Ok(l) => l,
            Err(e) => {
                let _ = self.child.wait();
                panic!(
                    "node said nothing ({e}) while the test waited for {step:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                )
            }
        };
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("node printed {line:?}, not JSON: {e}"));
        assert_eq!(
            v["step"],
            step,
            "node: {}\nstderr:\n{}",
            v["error"].as_str().unwrap_or(&line),
            self.stderr.lock().unwrap()
        );
        v
    }

    fn send(&mut self, v: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{v}").expect("write to node");
        stdin.flush().expect("flush");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            // Our own child's group: node and the chromium it started.
            let pid = self.child.id() as i32;
            // SAFETY: kill(2) on a process group we created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

fn screenshot_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KAMRS_WEBVIEW_SCREENSHOT") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/webview-… → target/
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("webview.png")
}

/// Every API answer a page without a usable token got was a refusal.
fn assert_no_data(api: &Value, what: &str) {
    let api = api.as_array().unwrap_or_else(|| panic!("{what}: {api}"));
    for r in api {
        let status = r["status"].as_u64().unwrap_or(0);
        assert!(status == 401 || status == 403, "{what}: data served: {r}");
        assert!(
            !r["body"].as_str().unwrap_or("").contains("\"result\""),
            "{what}: {r}"
        );
    }
}

#[test]
fn a_registration_appears_on_the_page_without_a_reload() {
    let Some(script) = browser_ready() else {
        return;
    };
    let dir = TempDir::new("webview-live");
    let (k, addr) = start(&dir, true);
    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let mut node = Node::start(
        &script,
        &json!({"mode": "live", "base": format!("http://{addr}"), "token": TOKEN,
                "screenshot": shot}),
    );
    let ready = node.expect("ready");
    // The token is out of the address bar.
    assert_eq!(ready["href"], format!("http://{addr}/ui"), "{ready}");

    // Attacker-chosen SIP data: markup in the User-Agent must stay text.
    let aor = format!("webview-{}", unique().replace('x', ""));
    let ua = "<img src=x onerror=alert(1)><b>phone</b>";
    let sock = k.udp_client();
    let port = sock.local_addr().unwrap().port();
    let contact = format!("sip:{aor}@127.0.0.1:{port}");
    let msg = register(&aor, Some(&contact), Some(600), &unique(), 1, port, ua);
    let reply = parse_reply(&{
        send_udp(&sock, &msg);
        recv_udp(&sock, REPLY_TIMEOUT).expect("a reply to the REGISTER")
    });
    assert_eq!(reply.status, 200, "{reply:?}");
    node.send(&json!({"aor": aor, "ua": ua}));
    let done = node.expect("done");

    // Without the token: asked for it, given nothing.
    let anon = &done["noToken"];
    assert_eq!(anon["state"], "needs-token", "{anon}");
    assert!(
        anon["login"].as_str().unwrap().contains("[ctl] token_file"),
        "{anon}"
    );
    assert_eq!(anon["viewHidden"], true, "{anon}");
    assert_no_data(&anon["api"], "no token");
    assert_eq!(
        anon["sockets"],
        json!([]),
        "no socket without a token: {anon}"
    );
    let csp = anon["shell"]["headers"]["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{anon}");

    // With it: live, and the registration shown.
    assert_eq!(done["final"]["state"], "live", "{done}");
    assert_eq!(done["stored"], true, "{done}");
    let count = |id: &str| -> u64 {
        let shown = done["counters"][id]
            .as_str()
            .unwrap_or_default()
            .replace(',', "");
        shown.parse().unwrap_or_else(|_| panic!("{id}: {done}"))
    };
    assert!(count("c-aors") >= 1 && count("c-accepted") >= 1, "{done}");
    assert!(done["events"].as_u64().unwrap() >= 1, "{done}");
    assert_eq!(done["uaShown"], true, "the User-Agent as text: {done}");
    assert_eq!(
        done["bindings"]["elements"], 0,
        "markup in the table: {done}"
    );
    assert!(
        done["bindings"]["text"]
            .as_str()
            .unwrap()
            .contains(&contact),
        "{done}"
    );
    // The socket's 101 named the protocol the page offered.
    assert!(
        done["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == 101 && s["protocol"] == "kamrs"),
        "{done}"
    );
    // Nothing broke or was blocked by the policy.
    assert_eq!(done["errors"], json!([]), "{done}");
    assert_eq!(done["console"], json!([]), "{done}");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG"), "{}", shot.display());
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn without_a_token_file_the_page_says_it_needs_one() {
    let Some(script) = browser_ready() else {
        return;
    };
    let dir = TempDir::new("webview-unconfigured");
    let (_k, addr) = start(&dir, false);
    let mut node = Node::start(
        &script,
        &json!({"mode": "unconfigured", "base": format!("http://{addr}")}),
    );
    let done = node.expect("done");
    for case in ["plain", "withToken"] {
        let r = &done[case];
        assert_eq!(r["state"], "no-token-file", "{case}: {r}");
        let text = r["login"].as_str().unwrap();
        assert!(text.contains("no [ctl] token_file"), "{case}: {r}");
        assert_eq!(r["formHidden"], true, "{case}: {r}");
        assert_eq!(r["viewHidden"], true, "{case}: {r}");
        assert_no_data(&r["api"], case);
        assert_eq!(r["errors"], json!([]), "{case}: {r}");
    }
}
