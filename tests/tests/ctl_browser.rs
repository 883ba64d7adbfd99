//! The HTTP control API against a hostile web page (README, Security).
//!
//! With `[ctl] listen = "http://127.0.0.1:…"` and no token (allowed on
//! loopback), any page the admin's browser shows can try to reach the
//! API: a WebSocket (`new WebSocket("ws://127.0.0.1:PORT/")` sends
//! `Origin: https://evil.example` and a `Host` the Host check accepts) or
//! a "simple" cross-site POST (`Content-Type: text/plain`, no preflight).
//! These tests play that page with a real RFC 6455 client (tungstenite,
//! independent of jsonrpsee/soketto on both sides) and a hand-written
//! HTTP client, then check with kamrsctl that nothing changed; and that
//! kamrsctl and curl on loopback still work without a token.

use std::net::{SocketAddr, TcpStream};

use kamrs_tests::ctl::*;
use kamrs_tests::*;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};

const EVIL: &str = "https://evil.example";
const TOKEN: &str = "0123456789abcdef-browser-token";

/// What a page would do once connected: take over `victim`'s calls and
/// set a password of its choosing.
fn attack_calls() -> [Value; 2] {
    [
        json!({"jsonrpc": "2.0", "id": 1, "method": "ul.add",
               "params": ["location", "victim", "sip:attacker@192.0.2.66:5060", 0, -1, "0", 0, 0, 0]}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "subscriber.add",
               "params": ["victim", "example.com", "0123456789abcdef0123456789abcdef", ""]}),
    ]
}

/// kamrs with the HTTP control API on loopback, digest auth on (so
/// `subscriber.add` exists), `ctl_keys` added to `[ctl]`.
fn start(dir: &TempDir, ctl_keys: &str) -> (Kamrs, SocketAddr) {
    let k = Kamrs::start(&format!(
        "[ctl]\nlisten = \"http://127.0.0.1:0\"\n{ctl_keys}\n\
         [auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n",
        dir.path().join("subscribers.toml").display(),
        dir.path().join("nonce.secret").display()
    ));
    let addr = http_ctl_addr(&k);
    (k, addr)
}

fn token_file(dir: &TempDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// How a browser-like WebSocket handshake ended.
enum Handshake {
    /// 101: connected (the calls were sent; their answers are here).
    Open(Vec<Value>),
    /// Refused with this status and body.
    Refused(u16, String),
}

/// Opens `ws://addr/` with the headers a browser sends (`Origin`, and
/// `Sec-Fetch-*` when given), plus `extra`; on 101 sends `calls` and
/// reads their answers (bounded by the socket timeout).
fn browser_ws(addr: SocketAddr, headers: &[(&str, &str)], calls: &[Value]) -> Handshake {
    let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(CTL_TIMEOUT)).unwrap();
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    req.headers_mut().insert(
        "user-agent",
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"),
    );
    for (name, value) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    match tungstenite::client::client(req, stream) {
        Ok((mut ws, resp)) => {
            assert_eq!(resp.status(), 101);
            let mut answers = Vec::new();
            for call in calls {
                ws.send(tungstenite::Message::text(call.to_string()))
                    .expect("send");
                loop {
                    match ws.read().expect("read") {
                        tungstenite::Message::Text(t) => {
                            answers.push(serde_json::from_str(t.as_str()).unwrap());
                            break;
                        }
                        tungstenite::Message::Close(_) => return Handshake::Open(answers),
                        _ => continue,
                    }
                }
            }
            Handshake::Open(answers)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Handshake::Refused(resp.status().as_u16(), body)
        }
        Err(e) => panic!("WebSocket handshake broke instead of being answered: {e}"),
    }
}

/// Asserts the handshake was refused with `status` and a body containing
/// `why`; a 101 fails the test with what the calls did.
fn assert_refused(h: Handshake, status: u16, why: &str, what: &str) {
    match h {
        Handshake::Refused(s, body) => {
            assert_eq!(s, status, "{what}: {body}");
            assert!(body.contains(why), "{what}: {s} {body}");
        }
        Handshake::Open(answers) => {
            panic!(
                "{what}: the WebSocket was accepted (101); the page's calls answered {answers:?}"
            )
        }
    }
}

/// Nothing the page tried happened: no binding for victim, no subscriber.
fn assert_untouched(addr: SocketAddr) {
    let ctl = format!("http://{addr}");
    let run = kamrsctl(&["--ctl", &ctl, "ul.lookup", "victim"], &[]);
    assert_eq!(run.code(), Some(1), "victim was registered: {run:?}");
    let run = kamrsctl(&["--ctl", &ctl, "--json", "subscriber", "list"], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(!run.stdout.contains("victim"), "{run:?}");
}

fn stat(addr: SocketAddr, name: &str) -> u64 {
    let v = HttpConn::tcp(addr).call("stats.get_statistics", json!([name]));
    let line = v["result"][0].as_str().unwrap_or_else(|| panic!("{v}"));
    line.rsplit(" = ").next().unwrap().parse().unwrap()
}

#[test]
fn a_web_pages_websocket_is_refused_and_changes_nothing() {
    let dir = TempDir::new("ctl-browser-ws");
    let (_k, addr) = start(&dir, "");
    let host = addr.to_string();
    let calls = attack_calls();

    // What Firefox and Chrome send for `new WebSocket(...)` from a page.
    let h = browser_ws(
        addr,
        &[
            ("origin", EVIL),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "websocket"),
        ],
        &calls,
    );
    assert_refused(h, 403, "Origin", "cross-site page");
    // Older browsers send no Sec-Fetch-*: the Origin alone is enough.
    assert_refused(
        browser_ws(addr, &[("origin", EVIL)], &calls),
        403,
        "Origin",
        "Origin only",
    );
    // Sandboxed iframes and file:// pages send `Origin: null`.
    assert_refused(
        browser_ws(addr, &[("origin", "null")], &calls),
        403,
        "Origin",
        "Origin null",
    );
    // A page on another local port is another site too.
    assert_refused(
        browser_ws(addr, &[("origin", "http://127.0.0.1:8080")], &calls),
        403,
        "Origin",
        "another local port",
    );
    // Even the listener's own origin needs the token: the web view's page
    // (/ui) is served from it, but without a token_file no browser gets
    // data, and a browser there may as well be a rebinding.
    let own = format!("http://{host}");
    assert_refused(
        browser_ws(addr, &[("origin", &own)], &calls),
        403,
        "token",
        "own origin without a token",
    );
    // Sec-Fetch-Site alone (a browser that strips Origin) is a browser.
    assert_refused(
        browser_ws(addr, &[("sec-fetch-site", "same-site")], &calls),
        403,
        "Sec-Fetch-Site",
        "same-site",
    );

    assert_untouched(addr);
    assert!(stat(addr, "ctl:refused_cross_origin") >= 6);

    // The CLI on the same listener, token-free on loopback, still works
    // (kamrsctl speaks WebSocket without an Origin).
    let ctl = format!("http://{addr}");
    let run = kamrsctl(
        &["--ctl", &ctl, "ul.add", "alice", "sip:alice@192.0.2.1:5060"],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let run = kamrsctl(&["--ctl", &ctl, "ul.lookup", "alice"], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("sip:alice@192.0.2.1:5060"), "{run:?}");
    // A plain WebSocket client without Origin (websocat, scripts) too.
    match browser_ws(
        addr,
        &[],
        &[json!({"jsonrpc": "2.0", "id": 1, "method": "core.version"})],
    ) {
        Handshake::Open(a) => assert!(a[0]["result"].is_string(), "{a:?}"),
        Handshake::Refused(s, b) => panic!("no-Origin WebSocket refused: {s} {b}"),
    }
}

#[test]
fn a_web_pages_posts_are_refused_and_change_nothing() {
    let dir = TempDir::new("ctl-browser-post");
    let (_k, addr) = start(&dir, "");
    let [add, subscriber] = attack_calls();
    let post = |headers: &[(&str, &str)], content_type: &str, body: &Value| {
        let mut conn = HttpConn::tcp(addr);
        conn.headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        conn.try_post(body.to_string().as_bytes(), content_type)
            .unwrap_or_else(|e| panic!("no HTTP answer: {e}"))
    };
    for body in [&add, &subscriber] {
        // fetch(..., {method: "POST", mode: "no-cors", body}): a CORS
        // "simple" request, sent without a preflight.
        for ct in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
        ] {
            let r = post(
                &[("origin", EVIL), ("sec-fetch-site", "cross-site")],
                ct,
                body,
            );
            assert_eq!(r.status, 403, "{ct}: {r:?}");
        }
        // With a JSON type the browser would preflight first; if it did
        // not (or the preflight were misread), the POST is still refused.
        let r = post(&[("origin", EVIL)], "application/json", body);
        assert_eq!(r.status, 403, "{r:?}");
        assert!(String::from_utf8_lossy(&r.body).contains("Origin"), "{r:?}");
        let r = post(
            &[("sec-fetch-site", "cross-site")],
            "application/json",
            body,
        );
        assert_eq!(r.status, 403, "{r:?}");
        // Whatever the headers, a POST body that is not declared JSON is
        // not read as JSON-RPC.
        let r = post(&[], "text/plain", body);
        assert_eq!(r.status, 415, "{r:?}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("application/json"),
            "{r:?}"
        );
    }
    // The preflight itself is refused too, so no CORS is ever granted.
    let mut conn = HttpConn::tcp(addr);
    conn.headers = vec![
        ("Origin".into(), EVIL.into()),
        ("Access-Control-Request-Method".into(), "POST".into()),
    ];
    let r = conn.try_post(b"", "application/json").unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");

    assert_untouched(addr);
    assert!(stat(addr, "ctl:refused_content_type") >= 2);
    // curl on loopback, no token, no Origin: served.
    let v = HttpConn::tcp(addr).call("core.version", json!([]));
    assert!(v["result"].is_string(), "{v}");
}

#[test]
fn an_allowed_origin_with_the_token_is_served() {
    let dir = TempDir::new("ctl-browser-allowed");
    let token = token_file(&dir);
    let (_k, addr) = start(
        &dir,
        &format!("token_file = \"{token}\"\nallowed_origins = [\"https://admin.example.com\"]\n"),
    );
    let bearer = format!("Bearer {TOKEN}");
    let version = [json!({"jsonrpc": "2.0", "id": 1, "method": "core.version"})];
    match browser_ws(
        addr,
        &[
            ("origin", "https://admin.example.com"),
            ("authorization", &bearer),
        ],
        &version,
    ) {
        Handshake::Open(a) => assert!(a[0]["result"].is_string(), "{a:?}"),
        Handshake::Refused(s, b) => panic!("allowed origin refused: {s} {b}"),
    }
    // Allowed origin, no token: 401 (the token is what proves the page).
    assert_refused(
        browser_ws(addr, &[("origin", "https://admin.example.com")], &version),
        401,
        "Bearer",
        "allowed origin without token",
    );
    // The token does not make a foreign origin acceptable.
    assert_refused(
        browser_ws(
            addr,
            &[("origin", EVIL), ("authorization", &bearer)],
            &version,
        ),
        403,
        "Origin",
        "foreign origin with token",
    );
    // kamrsctl with the token works as before.
    let run = kamrsctl(
        &["--ctl", &format!("http://{addr}"), "core.version"],
        &[("KAMRSCTL_TOKEN", TOKEN)],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[test]
fn bad_allowed_origins_stop_start_up_with_the_key() {
    let dir = TempDir::new("ctl-origin-cfg");
    let config = dir.path().join("kamrs.toml");
    let config = config.to_str().unwrap();
    for (bad, why) in [
        ("*", "scheme://host"),
        ("null", "scheme://host"),
        ("https://admin.example.com/path", "no path"),
        ("admin.example.com", "scheme://host"),
    ] {
        std::fs::write(
            config,
            format!("[ctl]\nlisten = \"http://127.0.0.1:0\"\nallowed_origins = [\"{bad}\"]\n"),
        )
        .unwrap();
        let out = run_kamrs(&["--listen", "udp:127.0.0.1:0", "--config", config]);
        assert_ne!(out.status.code(), Some(0), "{bad}: {out:?}");
        assert!(
            out.stderr.contains("ctl.allowed_origins") && out.stderr.contains(why),
            "{bad}: {out:?}"
        );
    }
}
