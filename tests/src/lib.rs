//! End-to-end test harness: start the real `kamrs` binary on free ports and
//! talk SIP to it over real sockets.
//!
//! Everything here is deliberately independent of kamrs's own code: the
//! request builder and the response parser are small, separate
//! implementations, so a bug in the daemon's parser cannot hide itself by
//! also being in the tests.
//!
//! Waiting is always on an event (a line, a datagram, a closed socket) with
//! a bounded timeout, never a sleep that happens to be long enough.

pub mod ctl;
pub mod digest;
pub mod jssip;
pub mod node;
pub mod phone;
pub mod pki;
pub mod sipp;
pub mod tls_client;
pub mod ua;
pub mod ws;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the daemon may take to print `ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a reply that must come.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to listen to be reasonably sure no reply is coming. Silence is
/// never trusted alone: each such check is followed by a request that must
/// be answered on the same socket.
pub const SILENCE: Duration = Duration::from_millis(300);

/// The `Server:` value the daemon must send. Built from this crate's
/// version (the workspace shares one), not from kamrs's constant.
pub fn server_name() -> String {
    format!("kamrs/{}", env!("CARGO_PKG_VERSION"))
}

/// A value unique within this test process run (and across concurrent
/// runs, through the pid), for branches, tags, Call-IDs and temp dirs.
pub fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}x{n}x{nanos:x}", std::process::id())
}

/// Path of the `kamrs` binary under test: `$KAMRS_BIN`, else next to the
/// test executable's directory (`target/debug/deps/..` → `target/debug`).
pub fn kamrs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KAMRS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = dir.join(format!("kamrs{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first: cargo build --workspace (or set KAMRS_BIN)",
        bin.display()
    );
    bin
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("kamrs-{tag}-{}", unique()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `kamrs` daemon, killed when dropped.
#[derive(Debug)]
pub struct Kamrs {
    child: Child,
    /// The first UDP socket it announced, if any.
    pub udp: Option<SocketAddr>,
    /// The first TCP socket it announced, if any.
    pub tcp: Option<SocketAddr>,
    /// The first TLS, WS and WSS sockets it announced, if any.
    pub tls: Option<SocketAddr>,
    pub ws: Option<SocketAddr>,
    pub wss: Option<SocketAddr>,
    /// Every `listening …` line, without the prefix (`udp:127.0.0.1:40001`).
    pub listening: Vec<String>,
    /// The `control …` line without the prefix: the control endpoint in
    /// use (`unix:/…/kamrs.sock`), or `none`.
    pub control: Option<String>,
    stderr_path: PathBuf,
    config_path: PathBuf,
    /// The control socket the harness gave this daemon, if it gave one.
    pub ctl: Option<PathBuf>,
    _dir: TempDir,
}

impl Kamrs {
    /// Starts kamrs listening on UDP and TCP on 127.0.0.1 with kernel-chosen
    /// ports, plus `extra_toml` appended to the config (top-level keys
    /// first, then tables, as TOML requires).
    pub fn start(extra_toml: &str) -> Kamrs {
        let config = format!("listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n{extra_toml}\n");
        Kamrs::start_with_config(&config, &[])
    }

    /// Starts kamrs with exactly this config text and extra arguments.
    pub fn start_with_config(config: &str, args: &[&str]) -> Kamrs {
        Kamrs::start_custom(config, args, true, |_| {})
    }

    /// Starts kamrs with this config text and arguments; `give_ctl`: give it
    /// a control socket of its own (unless the config or `args` name one);
    /// `customize` may change the command (environment, uid) before it is
    /// spawned. The temp dir holding the config is readable by all users.
    pub fn start_custom(
        config: &str,
        args: &[&str],
        give_ctl: bool,
        customize: impl FnOnce(&mut Command),
    ) -> Kamrs {
        let dir = TempDir::new("e2e");
        let config_path = dir.path().join("kamrs.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr log");
        // Each daemon gets its own control socket unless the config names
        // one, so tests never share (or fight over) the default path.
        let mut own_ctl = Vec::new();
        let mut ctl = None;
        if give_ctl && !config.contains("[ctl]") && !args.contains(&"--ctl") {
            let path = dir.path().join("ctl.sock");
            own_ctl.push("--ctl".to_owned());
            own_ctl.push(format!("unix:{}", path.display()));
            ctl = Some(path);
        }
        let mut command = Command::new(kamrs_bin());
        command
            .arg("--config")
            .arg(&config_path)
            .arg("-vv")
            .args(&own_ctl)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        customize(&mut command);
        let mut child = command.spawn().expect("spawn kamrs");
        let stdout = child.stdout.take().expect("piped stdout");
        // A thread reads stdout for the daemon's whole life, so it can
        // never block on a full pipe; lines come to us over a channel.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining.
                    continue;
                }
            }
        });
        let mut kamrs = Kamrs {
            child,
            udp: None,
            tcp: None,
            tls: None,
            ws: None,
            wss: None,
            listening: Vec::new(),
            control: None,
            stderr_path,
            config_path,
            ctl,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) if line.starts_with("control ") => {
                    kamrs.control = Some(line["control ".len()..].to_owned());
                }
                Ok(line) => {
                    let Some(addr) = line.strip_prefix("listening ") else {
                        kamrs.fail(&format!("unexpected stdout line {line:?}"));
                    };
                    let parsed = addr
                        .split_once(':')
                        .and_then(|(proto, sock)| Some((proto, sock.parse::<SocketAddr>().ok()?)));
                    match parsed {
                        Some(("udp", sock)) => kamrs.udp = kamrs.udp.or(Some(sock)),
                        Some(("tcp", sock)) => kamrs.tcp = kamrs.tcp.or(Some(sock)),
                        Some(("tls", sock)) => kamrs.tls = kamrs.tls.or(Some(sock)),
                        Some(("ws", sock)) => kamrs.ws = kamrs.ws.or(Some(sock)),
                        Some(("wss", sock)) => kamrs.wss = kamrs.wss.or(Some(sock)),
                        _ => kamrs.fail(&format!("bad address in {line:?}")),
                    }
                    kamrs.listening.push(addr.to_owned());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    kamrs.fail("no `ready` line within the start timeout")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = kamrs.wait_exit(Duration::from_secs(2));
                    kamrs.fail("kamrs exited before printing `ready`")
                }
            }
        }
        kamrs
    }

    fn fail(&mut self, what: &str) -> ! {
        let status = self.child.try_wait().ok().flatten();
        panic!(
            "kamrs start failed: {what} (exit status: {status:?})\n--- config {} ---\n{}\n--- stderr ---\n{}",
            self.config_path.display(),
            std::fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.stderr()
        );
    }

    /// Everything the daemon wrote to stderr so far (its logs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The log once `f` holds for it, waiting up to 5 s: kamrs writes its
    /// log lines from a writer thread, a moment after what they report.
    /// Returns the log either way, for the caller's assertion to show.
    pub fn log_when(&self, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.stderr();
            if f(&log) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn udp(&self) -> SocketAddr {
        self.udp.expect("kamrs has no UDP socket")
    }

    pub fn tcp(&self) -> SocketAddr {
        self.tcp.expect("kamrs has no TCP socket")
    }

    pub fn tls(&self) -> SocketAddr {
        self.tls.expect("kamrs has no TLS socket")
    }

    pub fn ws(&self) -> SocketAddr {
        self.ws.expect("kamrs has no WS socket")
    }

    pub fn wss(&self) -> SocketAddr {
        self.wss.expect("kamrs has no WSS socket")
    }

    /// A UDP socket on 127.0.0.1 connected to the daemon's UDP address.
    pub fn udp_client(&self) -> UdpSocket {
        udp_client(self.udp())
    }

    /// A TCP connection to the daemon.
    pub fn tcp_connect(&self) -> TcpStream {
        tcp_connect(self.tcp())
    }

    /// One statistic (`group:name`) over the control socket the harness
    /// gave this daemon.
    pub fn stat(&self, name: &str) -> u64 {
        let socket = self
            .ctl
            .as_ref()
            .expect("the harness gave kamrs a ctl socket");
        let answer =
            ctl::HttpConn::unix(socket).call("stats.get_statistics", serde_json::json!([name]));
        stat_value(&answer, name)
    }

    /// Waits up to 5 s for statistic `name` to reach `want` (the daemon
    /// counts closes a moment after they happen); its last value.
    pub fn stat_until(&self, name: &str, want: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.stat(name);
            if v == want || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to this daemon, our own child.
    pub fn signal(&self, sig: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits up to `timeout` for the daemon to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for Kamrs {
    fn drop(&mut self) {
        // Only our own child, by its pid (Child::kill).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The result of running kamrs to completion (for start-up failures and
/// `--print-config`).
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs kamrs with `args`, expecting it to exit on its own within 10 s;
/// kills it and panics otherwise.
pub fn run_kamrs(args: &[&str]) -> Finished {
    let mut child = Command::new(kamrs_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kamrs");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = match wait_child(&mut child, Duration::from_secs(10)) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kamrs {args:?} did not exit within 10 s; stderr:\n{}",
                err_reader.join().unwrap_or_default()
            );
        }
    };
    Finished {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- requests

/// A request with every mandatory header, CRLF line ends and an empty body:
///
/// ```text
/// {method} sip:kamrs@127.0.0.1 SIP/2.0
/// Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{unique};rport
/// Max-Forwards: 70
/// From: <sip:alice@example.com>;tag={unique}
/// To: <sip:bob@example.com>
/// Call-ID: {call_id}
/// CSeq: {cseq} {method}
/// {extra_headers, one per line}
/// Content-Length: 0
/// ```
pub fn sip_request(
    method: &str,
    call_id: &str,
    cseq: u32,
    via_port: u16,
    extra_headers: &[&str],
) -> String {
    let mut s = format!(
        "{method} sip:kamrs@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag={tag}\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n",
        branch = unique(),
        tag = unique(),
    );
    for h in extra_headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// Removes every header line named `name` (case-insensitive, full name).
pub fn without_header(msg: &str, name: &str) -> String {
    let (head, body) = split_message(msg);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && header_line_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// Replaces the value of every header line named `name`, keeping its place.
pub fn with_header(msg: &str, name: &str, value: &str) -> String {
    let (head, body) = split_message(msg);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && header_line_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
            out.push_str(&format!("{name}: {value}\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// Removes the `;rport` flag from the top Via.
pub fn without_rport(msg: &str) -> String {
    msg.replacen(";rport\r\n", "\r\n", 1)
}

/// Rewrites the top Via's transport, e.g. to `TCP` for requests sent on a
/// stream.
pub fn via_transport(msg: &str, transport: &str) -> String {
    msg.replacen("SIP/2.0/UDP ", &format!("SIP/2.0/{transport} "), 1)
}

fn split_message(msg: &str) -> (&str, &str) {
    match msg.find("\r\n\r\n") {
        Some(i) => (&msg[..i], &msg[i + 4..]),
        None => (msg.trim_end_matches("\r\n"), ""),
    }
}

fn header_line_name(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    line.split_once(':').map(|(n, _)| n.trim())
}

// --------------------------------------------------------------- responses

/// A parsed SIP response: just enough structure to check replies.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header lines in order: (name as sent, value trimmed), folded lines
    /// joined.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The whole message as received, for assertion messages.
    pub raw: String,
}

/// Compact header forms (RFC 3261 §7.3.3) mapped to full names.
fn full_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        other => other,
    }
    .to_owned()
}

impl Response {
    /// Parses one complete response. Errors describe what is malformed.
    pub fn parse(bytes: &[u8]) -> Result<Response, String> {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let end = raw
            .find("\r\n\r\n")
            .ok_or_else(|| format!("no CRLFCRLF in {raw:?}"))?;
        let head = &raw[..end];
        let body = bytes[end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let rest = status_line
            .strip_prefix("SIP/2.0 ")
            .ok_or_else(|| format!("not a SIP/2.0 status line: {status_line:?}"))?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 {
            return Err(format!("status code not 3 digits: {status_line:?}"));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| format!("bad status code in {status_line:?}"))?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers
                    .last_mut()
                    .ok_or_else(|| format!("continuation before any header: {line:?}"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("header line without colon: {line:?}"))?;
            if name.is_empty() || name.trim() != name.trim_start() {
                return Err(format!("bad header name in {line:?}"));
            }
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body,
            raw,
        })
    }

    /// The first header with this name (case-insensitive, compact forms
    /// understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// Every header line with this name, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let want = full_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| full_name(n) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value of a comma-separable header (Via, Contact…): header lines
    /// in order, each split at commas outside quotes and angle brackets.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers(name)
            .into_iter()
            .flat_map(split_commas)
            .collect()
    }
}

fn split_commas(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_owned());
    parts
}

/// Looks up a `;name=value` (or `;name`) parameter of a Via or similar
/// value, case-insensitively. `Some("")` for a flag without value.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

// --------------------------------------------------------------------- UDP

/// A UDP socket bound to 127.0.0.1 on a free port and connected to
/// `server`, so it only hears from the daemon.
pub fn udp_client(server: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp client");
    // Tests send hundreds of REGISTERs at once and read the replies after:
    // a write-through group commit releases them together, and on a busy
    // machine the default ~200 KiB buffer overflows before the test reads
    // it (the kernel caps this at net.core.rmem_max; asking is enough).
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
    sock.connect(server).expect("connect udp client");
    sock
}

/// Like [`udp_client`], bound to `ip` (another loopback address such as
/// `127.0.0.2`, to be a second source).
pub fn udp_client_from(ip: std::net::IpAddr, server: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind udp client");
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
    sock.connect(server).expect("connect udp client");
    sock
}

pub fn send_udp(sock: &UdpSocket, bytes: impl AsRef<[u8]>) {
    sock.send(bytes.as_ref()).expect("udp send");
}

/// The next datagram, or None if none arrives within `timeout`.
pub fn recv_udp(sock: &UdpSocket, timeout: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .expect("set_read_timeout");
    let mut buf = vec![0u8; 65536];
    match sock.recv(&mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("udp recv: {e} (is kamrs still running?)"),
    }
}

/// Sends `request` and returns the parsed reply, panicking if none comes.
pub fn udp_exchange(sock: &UdpSocket, request: impl AsRef<[u8]>) -> Response {
    send_udp(sock, request.as_ref());
    let bytes = recv_udp(sock, REPLY_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "no UDP reply to:\n{}",
            String::from_utf8_lossy(request.as_ref())
        )
    });
    Response::parse(&bytes).unwrap_or_else(|e| panic!("bad reply: {e}"))
}

/// Asserts that nothing arrives on `sock` for [`SILENCE`], then that the
/// server still answers an OPTIONS on it, so silence cannot pass by luck
/// (e.g. because the daemon died).
pub fn assert_udp_silent_then_alive(sock: &UdpSocket, what: &str) {
    if let Some(got) = recv_udp(sock, SILENCE) {
        panic!(
            "expected no reply to {what}, got:\n{}",
            String::from_utf8_lossy(&got)
        );
    }
    assert_udp_alive(sock);
}

/// Asserts that an OPTIONS on `sock` gets its 501 (the server is serving).
pub fn assert_udp_alive(sock: &UdpSocket) {
    let port = sock.local_addr().expect("local addr").port();
    let call_id = unique();
    let r = udp_exchange(sock, sip_request("OPTIONS", &call_id, 1, port, &[]));
    assert_eq!(r.status, 501, "alive check: {}", r.raw);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
}

// --------------------------------------------------------------------- TCP

/// A TCP connection to `server` with Nagle off, so split writes really go
/// out split.
pub fn tcp_connect(server: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&server, REPLY_TIMEOUT).expect("tcp connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads one response framed by Content-Length. Reads byte by byte so it
/// never consumes the start of the next pipelined response. None when the
/// connection closes or nothing complete arrives within `timeout`.
pub fn read_response(stream: &mut TcpStream, timeout: Duration) -> Option<Response> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = read_some(stream, 1, deadline)?;
        head.extend_from_slice(&b);
        // A 200 listing thousands of bindings over TCP is legitimate.
        if head.len() > 4 << 20 {
            panic!("response header section over 4 MiB");
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let len = text
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| full_name(n.trim()) == "content-length")
        .map(|(_, v)| {
            v.trim()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("bad Content-Length in reply: {text}"))
        })
        .unwrap_or_else(|| panic!("reply on a stream without Content-Length: {text}"));
    let mut msg = head;
    while msg.len() < text.len() + len {
        let chunk = read_some(stream, text.len() + len - msg.len(), deadline)?;
        msg.extend_from_slice(&chunk);
    }
    Some(Response::parse(&msg).unwrap_or_else(|e| panic!("bad reply: {e}")))
}

/// Reads exactly `n` bytes, or None on close/timeout.
pub fn read_exact_timeout(stream: &mut TcpStream, n: usize, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.extend_from_slice(&read_some(stream, n - got.len(), deadline)?);
    }
    Some(got)
}

/// One read of at most `max` bytes before `deadline`; None on EOF, error
/// or timeout.
fn read_some(stream: &mut TcpStream, max: usize, deadline: Instant) -> Option<Vec<u8>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    stream
        .set_read_timeout(Some(left))
        .expect("set_read_timeout");
    let mut buf = vec![0u8; max];
    match stream.read(&mut buf) {
        Ok(0) => None,
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// What a peer sees on a connection that should be closing.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// EOF or reset, after this many bytes of data.
    Yes { bytes_before: usize },
    /// Still open at the deadline.
    No,
}

/// Reads (discarding data) until the server closes the connection or
/// `timeout` passes.
pub fn wait_closed(stream: &mut TcpStream, timeout: Duration) -> Closed {
    let deadline = Instant::now() + timeout;
    let mut bytes_before = 0;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Closed::No;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set_read_timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Closed::Yes { bytes_before },
            Ok(n) => bytes_before += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Closed::No
            }
            Err(_) => return Closed::Yes { bytes_before },
        }
    }
}

/// Writes `request` and returns the parsed reply, panicking if none comes.
pub fn tcp_exchange(stream: &mut TcpStream, request: impl AsRef<[u8]>) -> Response {
    stream.write_all(request.as_ref()).expect("tcp write");
    read_response(stream, REPLY_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "no TCP reply to:\n{}",
            String::from_utf8_lossy(request.as_ref())
        )
    })
}

/// Asserts that an OPTIONS on this connection gets its 501.
pub fn assert_tcp_alive(stream: &mut TcpStream) {
    let call_id = unique();
    let port = stream.local_addr().expect("local addr").port();
    let req = via_transport(&sip_request("OPTIONS", &call_id, 1, port, &[]), "TCP");
    let r = tcp_exchange(stream, req);
    assert_eq!(r.status, 501, "alive check: {}", r.raw);
    assert_eq!(r.header("Call-ID"), Some(call_id.as_str()), "{}", r.raw);
}

/// Whether the external tool `tool` (sipp, baresip, redis-server, …) can be
/// run. Missing, a test skips with a printed reason, except under CI
/// (`CI=true`), where `.ci/run` installs them and a missing one fails.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is not installed, and CI=true: .ci/run must install it");
        }
        eprintln!("SKIPPED: {tool} is not installed (.ci/run lists the Debian packages)");
    }
    found
}

/// A UDP port free right now on 127.0.0.1, for tools that need a fixed one.
/// A baresip (a real softphone) with its own config directory: SIP on
/// 127.0.0.1:`sip_port` (UDP and TCP), only the modules a registration
/// needs, and the one account line `account`. It exits by itself after
/// `-t` seconds and is killed when dropped, so a failing test leaves none.
pub struct Baresip {
    child: Child,
    _dir: TempDir,
}

impl Baresip {
    pub fn start(sip_port: u16, account: &str) -> Baresip {
        Baresip::start_with(sip_port, account, "")
    }

    /// Like [`Baresip::start`], with SIP over TLS too, trusting the CAs
    /// in the PEM file `cafile` (`sip_cafile`). baresip 1.0 listens for
    /// TLS on `sip_port + 1` and puts that port in its TLS Contacts; an
    /// account with `;transport=tls` (or an `outbound=` proxy with it)
    /// registers over TLS.
    ///
    /// Debian's baresip 1.0 on libre 1.1.0 does not check the server's
    /// certificate at all: it registers as well with a CA file that did
    /// not sign it. So a test with it proves the handshake and the SIP
    /// over TLS, not that the phone verified the daemon.
    pub fn start_tls(sip_port: u16, account: &str, cafile: &Path) -> Baresip {
        Baresip::start_with(
            sip_port,
            account,
            &format!("sip_cafile {}\n", cafile.display()),
        )
    }

    fn start_with(sip_port: u16, account: &str, extra_config: &str) -> Baresip {
        let dir = TempDir::new("baresip");
        std::fs::write(
            dir.path().join("config"),
            format!(
                "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
                 module_path /usr/lib/baresip/modules\nmodule_tmp uuid.so\nmodule_tmp account.so\n\
                 {extra_config}"
            ),
        )
        .expect("write the baresip config");
        std::fs::write(dir.path().join("accounts"), format!("{account}\n"))
            .expect("write the baresip account");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .args(["-t", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start baresip");
        Baresip { child, _dir: dir }
    }

    /// Ends baresip now (its connections close with it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP port free right now on 127.0.0.1, for tools that need a fixed one.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The next OPTIONS `sock` receives within `secs`, as text.
pub fn next_options(sock: &UdpSocket, secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(bytes) = recv_udp(sock, Duration::from_millis(200)) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if text.starts_with("OPTIONS ") {
                return Some(text);
            }
        }
    }
    None
}

/// A phone's 200 to the keepalive OPTIONS `req`: its Via, From, Call-ID and CSeq, To with a tag.
pub fn answer_options(req: &str) -> String {
    let header = |name: &str| {
        req.lines()
            .find(|l| l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name))
            .unwrap_or_else(|| panic!("no {name} in {req}"))
            .to_owned()
    };
    format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{};tag=phone\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:"),
    )
}

/// A field of /proc/PID/status in kB (`VmHWM`, the daemon's peak RSS).
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits until the peer has closed or reset the connection, without
/// reading from it (a reader would drain the data the server is blocked
/// on). `poll` reports POLLRDHUP on a FIN even with data still unread,
/// POLLHUP/POLLERR on a reset. How long it took; None if still open at
/// the deadline.
pub fn wait_hangup(stream: &TcpStream, timeout: Duration) -> Option<Duration> {
    use std::os::fd::AsRawFd;
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut fds = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for a socket we own, for the call only.
        let rc = unsafe { libc::poll(&mut fds, 1, ms) };
        if rc > 0 && fds.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return Some(t0.elapsed());
        }
    }
}

/// The value of `name` in a `stats.get_statistics` answer; panics when
/// the daemon does not report it.
pub fn stat_value(answer: &serde_json::Value, name: &str) -> u64 {
    let list = answer["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    let line = list
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in {answer}"));
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: not a number in {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_parser_reads_headers_and_values() {
        let raw = b"SIP/2.0 501 Not Implemented\r\n\
            Via: SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2\r\n\
            v: SIP/2.0/TCP c;branch=3\r\n\
            To: \"B, b\" <sip:b@x>;tag=9\r\n\
            Content-Length: 0\r\n\r\n";
        let r = Response::parse(raw).unwrap();
        assert_eq!(r.status, 501);
        assert_eq!(r.reason, "Not Implemented");
        assert_eq!(
            r.values("via"),
            [
                "SIP/2.0/UDP a;branch=1",
                "SIP/2.0/UDP b;branch=2",
                "SIP/2.0/TCP c;branch=3"
            ]
        );
        assert_eq!(r.values("t"), ["\"B, b\" <sip:b@x>;tag=9"]);
        assert_eq!(param(r.header("to").unwrap(), "tag"), Some("9"));
        assert_eq!(r.header("l"), Some("0"));
    }

    #[test]
    fn request_helpers_edit_headers() {
        let req = sip_request("OPTIONS", "cid", 7, 5060, &["X-A: 1"]);
        assert!(req.ends_with("X-A: 1\r\nContent-Length: 0\r\n\r\n"));
        assert!(req.contains("CSeq: 7 OPTIONS\r\n"));
        let no_cid = without_header(&req, "call-id");
        assert!(!no_cid.contains("Call-ID"));
        assert!(no_cid.ends_with("\r\n\r\n"));
        let cl = with_header(&req, "Content-Length", "abc");
        assert!(cl.contains("Content-Length: abc\r\n\r\n"));
        assert!(!without_rport(&req).contains("rport"));
        assert!(via_transport(&req, "TCP").contains("Via: SIP/2.0/TCP 127.0.0.1:5060;"));
    }
}
