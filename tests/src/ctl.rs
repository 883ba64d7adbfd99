//! Harness for the control API tests: a daemon with its own control
//! socket, running `kamrsctl`, a raw JSON-RPC client (hand-written HTTP/1.1
//! over the Unix socket or TCP, no jsonrpsee), and REGISTERs for any AoR.
//!
//! The raw client is deliberately naive and independent of both binaries:
//! what it sees is what `curl` or a Kamailio script would see.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{recv_udp, unique, Kamrs, Response, TempDir, REPLY_TIMEOUT};

/// How long a kamrsctl run may take before the test fails.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of the `kamrsctl` binary: `$KAMRSCTL_BIN`, else next to `kamrs`.
pub fn kamrsctl_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KAMRSCTL_BIN") {
        return PathBuf::from(p);
    }
    let kamrs = crate::kamrs_bin();
    let bin = kamrs.with_file_name(format!("kamrsctl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first: cargo build --workspace (or set KAMRSCTL_BIN)",
        bin.display()
    );
    bin
}

/// A daemon whose control API is a Unix socket in its own temp dir.
#[derive(Debug)]
pub struct CtlKamrs {
    pub kamrs: Kamrs,
    /// `unix:/tmp/…/ctl.sock`
    pub ctl: String,
    pub socket: PathBuf,
    pub dir: TempDir,
}

impl CtlKamrs {
    /// Starts kamrs (UDP and TCP on 127.0.0.1:0) with `top_level` config
    /// keys and `ctl_keys` added to its `[ctl]` table.
    pub fn start(top_level: &str, ctl_keys: &str) -> CtlKamrs {
        let dir = TempDir::new("ctl");
        let socket = dir.path().join("ctl.sock");
        let extra = format!(
            "{top_level}\n[ctl]\nlisten = \"unix:{}\"\n{ctl_keys}\n",
            socket.display()
        );
        let kamrs = Kamrs::start(&extra);
        CtlKamrs {
            kamrs,
            ctl: format!("unix:{}", socket.display()),
            socket,
            dir,
        }
    }

    /// Runs `kamrsctl --ctl <our socket> ARGS`.
    pub fn ctl(&self, args: &[&str]) -> CtlRun {
        let mut all = vec!["--ctl", self.ctl.as_str()];
        all.extend_from_slice(args);
        kamrsctl(&all, &[])
    }

    /// Runs `kamrsctl --ctl <our socket> ARGS` with `input` on its stdin.
    pub fn ctl_stdin(&self, args: &[&str], input: &[u8]) -> CtlRun {
        let mut all = vec!["--ctl", self.ctl.as_str()];
        all.extend_from_slice(args);
        kamrsctl_with(&all, &[], None, Some(input))
    }

    /// Runs kamrsctl and asserts it succeeded; returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let run = self.ctl(args);
        assert_eq!(run.code(), Some(0), "kamrsctl {args:?} failed: {run:?}");
        run.stdout
    }

    /// Runs `kamrsctl --json ARGS` and parses what it printed.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl_ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kamrsctl --json {args:?}: {e}:\n{out}"))
    }

    /// One JSON-RPC call over the socket with the raw client; the whole
    /// response object (`result` or `error`).
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let mut conn = HttpConn::unix(&self.socket);
        conn.call(method, params)
    }

    pub fn udp(&self) -> SocketAddr {
        self.kamrs.udp()
    }
}

/// What a kamrsctl run did.
#[derive(Debug)]
pub struct CtlRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl CtlRun {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs kamrsctl with `args` and extra environment, bounded by
/// [`CTL_TIMEOUT`] (killed, and the test fails, past it).
pub fn kamrsctl(args: &[&str], env: &[(&str, &str)]) -> CtlRun {
    kamrsctl_as(args, env, None)
}

/// Like [`kamrsctl`], as another uid (root only).
pub fn kamrsctl_as(args: &[&str], env: &[(&str, &str)], uid: Option<u32>) -> CtlRun {
    kamrsctl_with(args, env, uid, None)
}

/// Runs kamrsctl as [`kamrsctl_as`] does, with `stdin` written to its
/// standard input (then closed), or an empty one (`/dev/null`) for None.
pub fn kamrsctl_with(
    args: &[&str],
    env: &[(&str, &str)],
    uid: Option<u32>,
    stdin: Option<&[u8]>,
) -> CtlRun {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut cmd = Command::new(kamrsctl_bin());
    cmd.args(args)
        .env_remove("KAMRSCTL_CTL")
        .env_remove("KAMRSCTL_TOKEN")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().expect("spawn kamrsctl");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A thread, so a child that does not read cannot block the test;
        // the pipe closes when the thread ends. A child that exits first
        // makes the write fail, which is fine.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = start + CTL_TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kamrsctl {args:?} did not finish within {CTL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    CtlRun {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        took,
    }
}

/// The `http://127.0.0.1:PORT` the daemon logged for its control API (for
/// `listen = "http://…:0"`).
pub fn http_ctl_addr(kamrs: &Kamrs) -> SocketAddr {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let log = kamrs.stderr();
        if let Some(rest) = log.split("control API listening on http://").nth(1) {
            let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return addr
                .parse()
                .unwrap_or_else(|e| panic!("bad address {addr:?}: {e}"));
        }
        assert!(
            Instant::now() < deadline,
            "no control API address in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ------------------------------------------------------------ raw client

/// An HTTP response as the raw client read it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A keep-alive HTTP/1.1 connection speaking JSON-RPC, written by hand.
pub struct HttpConn {
    stream: Box<dyn ReadWrite>,
    pub host: String,
    pub auth: Option<String>,
    /// More request headers (`Origin`, `Sec-Fetch-Site`, …), sent as is.
    pub headers: Vec<(String, String)>,
    next_id: u64,
}

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

impl HttpConn {
    pub fn unix(path: &Path) -> HttpConn {
        let s =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        s.set_read_timeout(Some(CTL_TIMEOUT)).expect("timeout");
        HttpConn {
            stream: Box::new(s),
            host: "localhost".to_owned(),
            auth: None,
            headers: Vec::new(),
            next_id: 1,
        }
    }

    pub fn tcp(addr: SocketAddr) -> HttpConn {
        let s = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(CTL_TIMEOUT)).expect("timeout");
        HttpConn {
            stream: Box::new(s),
            host: addr.to_string(),
            auth: None,
            headers: Vec::new(),
            next_id: 1,
        }
    }

    /// POSTs `body` as JSON and reads the response. Panics when the
    /// connection fails.
    pub fn post(&mut self, body: &[u8]) -> HttpResponse {
        self.try_post(body, "application/json")
            .unwrap_or_else(|e| panic!("HTTP exchange failed: {e}"))
    }

    /// POSTs `body`; Err when the server closed or the exchange broke.
    pub fn try_post(&mut self, body: &[u8], content_type: &str) -> Result<HttpResponse, String> {
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(auth) = &self.auth {
            req.push_str(&format!("Authorization: {auth}\r\n"));
        }
        for (name, value) in &self.headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream
            .write_all(&bytes)
            .map_err(|e| format!("write: {e}"))?;
        read_http_response(&mut self.stream)
    }

    /// A JSON-RPC call; the response object.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let resp = self.post(req.to_string().as_bytes());
        assert_eq!(
            resp.status,
            200,
            "{method}: HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
        let v = resp.json();
        assert_eq!(v["id"], id, "{v}");
        v
    }
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body).
fn read_http_response(stream: &mut impl Read) -> Result<HttpResponse, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(format!(
                    "connection closed after {} bytes of head",
                    head.len()
                ))
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
        if head.len() > 65536 {
            return Err("response head over 64 KiB".to_owned());
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad Content-Length {len}"))?;
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .map_err(|e| format!("body: {e}"))?;
        body
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream
                    .read_exact(&mut byte)
                    .map_err(|e| format!("chunk: {e}"))?;
                line.push(byte[0]);
            }
            let size_text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            let mut chunk = vec![0u8; size + 2];
            stream
                .read_exact(&mut chunk)
                .map_err(|e| format!("chunk: {e}"))?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        body
    } else {
        Vec::new()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

// ------------------------------------------------------------------ SIP

/// A REGISTER for `aor` (the To/From user, domain example.com) from
/// `via_port`. `contact` None makes a query; `expires` None leaves the
/// Expires header out.
pub fn register(
    aor: &str,
    contact: Option<&str>,
    expires: Option<u32>,
    call_id: &str,
    cseq: u32,
    via_port: u16,
    user_agent: &str,
) -> String {
    let mut s = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{aor}@example.com>;tag={tag}\r\n\
         To: <sip:{aor}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n",
        branch = unique(),
        tag = unique(),
    );
    if let Some(c) = contact {
        s.push_str(&format!("Contact: <{c}>\r\n"));
    }
    if let Some(e) = expires {
        s.push_str(&format!("Expires: {e}\r\n"));
    }
    s.push_str(&format!(
        "User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n"
    ));
    s
}

/// The Call-ID of a raw reply, without parsing the whole message.
fn reply_call_id(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.starts_with("SIP/2.0 200 ") {
        return None;
    }
    let at = text.find("\r\nCall-ID: ")? + "\r\nCall-ID: ".len();
    text[at..].split("\r\n").next()
}

/// `kamrsctl --json ul.watch` on `k`, its stdout lines coming over a
/// channel; killed when dropped.
pub struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    pub fn start(k: &CtlKamrs) -> Watch {
        let mut child = Command::new(kamrsctl_bin())
            .args(["--ctl", &k.ctl])
            .args(["--json", "ul.watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kamrsctl ul.watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next event, within `secs`.
    pub fn next(&self, secs: u64) -> Option<Value> {
        let line = self.lines.recv_timeout(Duration::from_secs(secs)).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One phone's life over UDP at `server`, each step answered 200: it
/// registers a new AoR for 600 s, refreshes for 300 s, unregisters, and
/// registers again for 1 s (which then expires, with `min_expires = 1`).
/// Returns the AoR and the Contact: the events it makes are registered,
/// refreshed, unregistered, registered, expired.
pub fn a_phones_life(server: SocketAddr) -> (String, String) {
    let sock = crate::udp_client(server);
    let port = sock.local_addr().expect("local addr").port();
    let aor = format!("alice{}", unique().replace(['x', '@'], ""));
    let contact = format!("sip:{aor}@127.0.0.1:{port}");
    let call_id = unique();
    for (cseq, expires) in [(1, 600), (2, 300), (3, 0), (4, 1)] {
        let req = register(
            &aor,
            Some(&contact),
            Some(expires),
            &call_id,
            cseq,
            port,
            "w",
        );
        let r = crate::udp_exchange(&sock, req);
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    (aor, contact)
}

/// Registers AoRs `{prefix}{i}` for every `i` in `range` over UDP: windows
/// of `window` REGISTERs, each answered before the next window goes, and
/// up to five rounds re-sending what got no 200 (a full socket buffer may
/// drop datagrams). Bounded in count and time; panics if some AoR could
/// not be registered. Returns how many REGISTERs were sent.
pub fn register_many(
    sock: &UdpSocket,
    prefix: &str,
    range: std::ops::Range<usize>,
    window: usize,
    expires: u32,
    cseq: u32,
) -> usize {
    let port = sock.local_addr().expect("local addr").port();
    let mut pending: Vec<usize> = range.collect();
    let mut sent = 0;
    let call_id = |i: usize| format!("{prefix}{i}-reg");
    for _round in 0..5 {
        let mut missing = Vec::new();
        for chunk in pending.chunks(window) {
            for &i in chunk {
                let aor = format!("{prefix}{i}");
                let contact = format!("sip:{aor}@127.0.0.1:{port}");
                let msg = register(
                    &aor,
                    Some(&contact),
                    Some(expires),
                    &call_id(i),
                    cseq,
                    port,
                    "kamrs-bench",
                );
                sock.send(msg.as_bytes()).expect("udp send");
                sent += 1;
            }
            let wanted: HashSet<String> = chunk.iter().map(|&i| call_id(i)).collect();
            let mut answered = HashSet::new();
            while answered.len() < wanted.len() {
                let Some(bytes) = recv_udp(sock, Duration::from_millis(500)) else {
                    break;
                };
                if let Some(cid) = reply_call_id(&bytes) {
                    if wanted.contains(cid) {
                        answered.insert(cid.to_owned());
                    }
                }
            }
            missing.extend(
                chunk
                    .iter()
                    .copied()
                    .filter(|&i| !answered.contains(&call_id(i))),
            );
        }
        if missing.is_empty() {
            return sent;
        }
        pending = missing;
    }
    panic!("{} REGISTERs got no 200 after 5 rounds", pending.len());
}

/// Parses a UDP reply (panics on garbage).
pub fn parse_reply(bytes: &[u8]) -> Response {
    Response::parse(bytes).unwrap_or_else(|e| panic!("bad reply: {e}"))
}

/// One statistic (`group:name`) read over the control API with the raw
/// client; panics if the daemon does not report it.
pub fn stat(k: &CtlKamrs, name: &str) -> u64 {
    crate::stat_value(
        &k.rpc("stats.get_statistics", serde_json::json!([name])),
        name,
    )
}
