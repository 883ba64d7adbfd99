//! Calls through the proxy (`[route] mode = "proxy"` or `"redirect"`)
//! with SIPp on both ends: [`Proxy`] starts kamrs (or, for checking the
//! scenarios themselves, the Kamailio reference), [`Sipp`] runs one
//! scenario of `tests/sipp/` as one call, and [`callee`] / [`caller`] set
//! up the two ends of a call the way the scenarios expect.
//!
//! How one SIPp process both registers and answers: the callee scenarios
//! (`uas_*.xml`) send their REGISTER with the Call-ID the caller's INVITE
//! will carry (both get the same `-cid_str`). SIPp matches an incoming
//! request to a call by Call-ID alone, so the INVITE lands in the call that
//! registered, on the socket (UDP) or connection (TCP) it registered from.
//!
//! `KAMRS_TESTS_REFERENCE=kamailio` runs the same tests against Kamailio
//! with `tests/kamailio/proxy.cfg` (a registrar and stateful proxy of a
//! few lines), to show the scenarios and the harness right where kamrs
//! cannot be yet. Of the statistics the reference has only tm's (through
//! `kamcmd tm.stats`); [`Proxy::stat_at_least`] passes for the others. Not
//! for CI: the suite needs no Kamailio.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{udp_client, udp_exchange, unique, Kamrs, Response, TempDir};

/// The domain of every AoR in the call tests.
pub const DOMAIN: &str = "example.com";

/// How long one SIPp call may take before the harness kills it (the
/// scenarios' own `-timeout` is shorter, so SIPp reports first).
const SIPP_DEADLINE: Duration = Duration::from_secs(45);
/// SIPp's own limit for one call (`-timeout`, an error when it fires).
const SIPP_TIMEOUT: &str = "30s";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The `;transport=` parameter for a Contact (none for UDP).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        }
    }
}

/// A UDP and TCP port both free right now on 127.0.0.1 (SIPp binds both).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

// ------------------------------------------------------------------ proxy

/// The proxy under test: kamrs, or the Kamailio reference.
pub struct Proxy {
    inner: Inner,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

enum Inner {
    Kamrs(Box<Kamrs>),
    Kamailio(Kamailio),
}

impl Proxy {
    /// kamrs with `toml` (`[route] mode = "proxy"` …) appended to the
    /// harness config; or Kamailio with the equivalent settings (`mode`,
    /// `fr_timer`, `fr_inv_timer`) when `KAMRS_TESTS_REFERENCE=kamailio`.
    pub fn start(toml: &str) -> Proxy {
        if std::env::var("KAMRS_TESTS_REFERENCE").is_ok_and(|v| v == "kamailio") {
            let k = Kamailio::start(toml);
            return Proxy {
                udp: k.addr,
                tcp: k.addr,
                inner: Inner::Kamailio(k),
            };
        }
        let k = Kamrs::start(toml);
        Proxy {
            udp: k.udp(),
            tcp: k.tcp(),
            inner: Inner::Kamrs(Box::new(k)),
        }
    }

    pub fn addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
        }
    }

    /// The kamrs under test (None against the reference).
    pub fn kamrs(&self) -> Option<&Kamrs> {
        match &self.inner {
            Inner::Kamrs(k) => Some(k),
            Inner::Kamailio(_) => None,
        }
    }

    /// The proxy's log so far, for assertion messages.
    pub fn log(&self) -> String {
        match &self.inner {
            Inner::Kamrs(k) => k.stderr(),
            Inner::Kamailio(k) => std::fs::read_to_string(&k.log).unwrap_or_default(),
        }
    }

    /// Waits up to 5 s for statistic `name` to reach at least `min`
    /// (counters move a moment after the messages they count) and asserts
    /// it did; its value. Passes at once for a statistic the reference
    /// does not have ([`Proxy::stat`]).
    pub fn stat_at_least(&self, name: &str, min: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let Some(v) = self.stat(name) else { return min };
            if v >= min {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} = {v}, want at least {min}\n--- proxy log ---\n{}",
                tail(&self.log(), 8000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Statistic `name` now. Against the reference only the `tm:` ones
    /// Kamailio's `tm.stats` has (`tm:2xx_transactions` is its `2xx`);
    /// None for the others.
    pub fn stat(&self, name: &str) -> Option<u64> {
        match &self.inner {
            Inner::Kamrs(k) => Some(k.stat(name)),
            Inner::Kamailio(k) => k.tm_stat(name),
        }
    }

    /// The Contacts bound to `user`@[`DOMAIN`], by a REGISTER without
    /// Contact (a query) from a socket of our own.
    pub fn bindings(&self, user: &str) -> Vec<String> {
        let sock = udp_client(self.udp);
        let port = sock.local_addr().expect("local addr").port();
        let r = udp_exchange(
            &sock,
            format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:{user}@{DOMAIN}>;tag={t}\r\n\
                 To: <sip:{user}@{DOMAIN}>\r\n\
                 Call-ID: {c}@query\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
                b = unique(),
                t = unique(),
                c = unique()
            ),
        );
        assert_eq!(r.status, 200, "binding query: {}", r.raw);
        r.values("Contact")
    }

    /// Waits up to 10 s for `user` to have `n` bindings (the callee
    /// scenarios register before the caller may call); panics with
    /// `callees`' SIPp logs if it does not.
    pub fn wait_bindings(&self, user: &str, n: usize, callees: &[&Sipp]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let b = self.bindings(user);
            if b.len() >= n {
                return b;
            }
            if Instant::now() >= deadline {
                let logs: String = callees.iter().map(|s| s.report()).collect();
                panic!("{user} has {b:?}, want {n} bindings\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Kamailio in the foreground (`-DD -E`), our own child, ended by its pid.
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// Its binrpc control socket, for kamcmd.
    ctl: PathBuf,
    _dir: TempDir,
}

/// `key = value` of `toml` as text, if the line is there (enough for the
/// few settings the reference mirrors).
fn toml_value<'a>(toml: &'a str, key: &str) -> Option<&'a str> {
    toml.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

impl Kamailio {
    fn start(toml: &str) -> Kamailio {
        let dir = TempDir::new("kamailio");
        let port = free_port();
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kamailio/proxy.cfg"))
                .expect("read tests/kamailio/proxy.cfg");
        let cfg = template
            .replace("@PORT@", &port.to_string())
            .replace("@FR@", toml_value(toml, "fr_timer").unwrap_or("30000"))
            .replace(
                "@FR_INV@",
                toml_value(toml, "fr_inv_timer").unwrap_or("120000"),
            );
        let ctl = dir.path().join("kamailio.ctl");
        let cfg = cfg.replace("@CTL@", &ctl.display().to_string());
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
        let log = dir.path().join("kamailio.log");
        let mut cmd = Command::new("kamailio");
        cmd.arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-Y"])
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path());
        if toml_value(toml, "mode") == Some("redirect") {
            cmd.args(["-A", "REDIRECT"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create kamailio log"))
            .spawn()
            .expect("start kamailio");
        let k = Kamailio {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            ctl,
            _dir: dir,
        };
        // Ready once it answers a REGISTER query.
        let sock = udp_client(k.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let q = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{}\r\n\
                 From: <sip:ready@{DOMAIN}>;tag=1\r\nTo: <sip:ready@{DOMAIN}>\r\n\
                 Call-ID: {}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
                sock.local_addr().unwrap(),
                unique(),
                unique()
            );
            let _ = sock.send(q.as_bytes());
            // Refused (ICMP) until it binds: not an answer.
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("set_read_timeout");
            let mut buf = [0u8; 4096];
            if sock.recv(&mut buf).is_ok() {
                return k;
            }
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                Instant::now() < deadline,
                "kamailio did not start:\n{}",
                std::fs::read_to_string(&k.log).unwrap_or_default()
            );
        }
    }
}

impl Kamailio {
    /// `tm:NAME` from `kamcmd tm.stats` (`current`, `created`, `freed`,
    /// `rpl_*`, `2xx`…`6xx` for `tm:2xx_transactions`…).
    fn tm_stat(&self, name: &str) -> Option<u64> {
        let key = name.strip_prefix("tm:")?;
        let key = key.strip_suffix("_transactions").unwrap_or(key);
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", self.ctl.display()))
            .arg("tm.stats")
            .output()
            .expect("run kamcmd");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to our own child: its main process ends its workers.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        if wait_child(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------- SIPp

/// One SIPp process running one call of a scenario in `tests/sipp/`, with
/// its screen, error log and message trace in a directory of its own.
pub struct Sipp {
    child: Option<Child>,
    pub name: String,
    /// Its local port (UDP, or TCP listen).
    pub port: u16,
    started: Instant,
    dir: TempDir,
}

/// How a SIPp process ended.
pub struct Outcome {
    /// None: the harness killed it at its deadline.
    pub status: Option<ExitStatus>,
    /// From start to exit.
    pub elapsed: Duration,
    /// Its output and logs, for assertion messages.
    pub report: String,
}

impl Outcome {
    /// Exit code 0: every message of the scenario came and went as written.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// The value for SIPp's `-t`: one socket (UDP) or connection (TCP).
fn sipp_transport(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "u1",
        Transport::Tcp => "t1",
    }
}

impl Sipp {
    /// Starts `scenario` (a file name in `tests/sipp/`) as one call to
    /// `remote`, from 127.0.0.1:`port`, Call-ID `call_id`, with `-key`s.
    pub fn start(
        scenario: &str,
        remote: SocketAddr,
        transport: Transport,
        port: u16,
        call_id: &str,
        keys: &[(&str, &str)],
    ) -> Sipp {
        let dir = TempDir::new("sipp");
        let mut cmd = Command::new("sipp");
        cmd.arg(remote.to_string())
            .arg("-sf")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("sipp")
                    .join(scenario),
            )
            .args(["-t", sipp_transport(transport)])
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-cid_str", call_id])
            .args(["-m", "1", "-l", "1"])
            .args(["-timeout", SIPP_TIMEOUT, "-timeout_error"])
            .args(["-max_socket", "64", "-nostdin"])
            .args(["-trace_err", "-trace_msg"]);
        for (k, v) in keys {
            cmd.args(["-key", k, v]);
        }
        let out = std::fs::File::create(dir.path().join("screen.log")).expect("screen log");
        let err = out.try_clone().expect("clone screen log");
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("run sipp");
        Sipp {
            child: Some(child),
            name: scenario.to_owned(),
            port,
            started: Instant::now(),
            dir,
        }
    }

    /// Waits for the call to end (killing SIPp after [`SIPP_DEADLINE`]).
    pub fn wait(&mut self) -> Outcome {
        let child = self.child.as_mut().expect("not waited for yet");
        let left = SIPP_DEADLINE.saturating_sub(self.started.elapsed());
        let status = wait_child(child, left);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.child = None;
        Outcome {
            status,
            elapsed: self.started.elapsed(),
            report: self.report(),
        }
    }

    /// Waits for the call and asserts the scenario completed (exit 0).
    pub fn expect_success(&mut self, proxy: &Proxy) -> Outcome {
        let o = self.wait();
        assert!(
            o.success(),
            "{} failed ({:?}) through the proxy\n{}\n--- proxy log (tail) ---\n{}",
            self.name,
            o.status,
            o.report,
            tail(&proxy.log(), 6000)
        );
        o
    }

    /// Every file SIPp wrote matching `suffix` (`_messages.log`, …), joined.
    fn logs(&self, suffix: &str) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(suffix) {
                    all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        all
    }

    /// The message trace (`-trace_msg`): everything sent and received.
    pub fn messages(&self) -> String {
        self.logs("_messages.log")
    }

    /// The messages this SIPp received, parsed where they are responses
    /// (requests are skipped).
    pub fn received_responses(&self) -> Vec<Response> {
        received(&self.messages())
            .into_iter()
            .filter_map(|m| Response::parse(m.as_bytes()).ok())
            .collect()
    }

    /// The first lines of every request or response received, in order
    /// (`INVITE sip:…`, `SIP/2.0 180 Ringing`).
    pub fn received_first_lines(&self) -> Vec<String> {
        received(&self.messages())
            .into_iter()
            .map(|m| m.lines().next().unwrap_or("").to_owned())
            .collect()
    }

    /// Screen, errors and message trace, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "--- sipp {} (port {}) errors ---\n{}\n--- screen ---\n{}\n--- messages ---\n{}\n",
            self.name,
            self.port,
            self.logs("_errors.log"),
            tail(&self.logs("screen.log"), 3000),
            tail(&self.messages(), 12000)
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        // Only our own child, by its pid.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The messages of a `-trace_msg` log that were received, as text.
fn received(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = log.split('\n').peekable();
    while let Some(line) = lines.next() {
        if !line.contains("message received") {
            continue;
        }
        let mut msg = String::new();
        // A blank line, the message, and a dashed separator line.
        while let Some(l) = lines.peek() {
            if l.starts_with("-----------") {
                break;
            }
            msg.push_str(l.trim_end_matches('\r'));
            msg.push_str("\r\n");
            lines.next();
        }
        out.push(msg.trim_start().to_owned());
    }
    out
}

fn tail(s: &str, n: usize) -> &str {
    let mut at = s.len().saturating_sub(n);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// A Call-ID unique to one test's call (the callees register with it).
pub fn call_id() -> String {
    format!("{}@calltest", unique())
}

/// One callee: `scenario` (`uas_*.xml`) registering `user` with Contact
/// `contact` (None: its own address, `sip:user@127.0.0.1:PORT`, plus
/// `;transport=tcp` over TCP) on a free port, for the call `call_id`.
pub fn callee(
    proxy: &Proxy,
    transport: Transport,
    scenario: &str,
    user: &str,
    call_id: &str,
    contact: Option<&str>,
) -> Sipp {
    let port = free_port();
    let own = format!("sip:{user}@127.0.0.1:{port}{}", transport.uri_param());
    let contact = contact.map_or(own, str::to_owned);
    Sipp::start(
        scenario,
        proxy.addr(transport),
        transport,
        port,
        call_id,
        &[("user", user), ("domain", DOMAIN), ("contact", &contact)],
    )
}

/// The caller: `scenario` (`uac_*.xml`) calling `callee`@[`DOMAIN`]
/// through the proxy, Contact `contact` (None: its own address).
pub fn caller(
    proxy: &Proxy,
    transport: Transport,
    scenario: &str,
    callee: &str,
    call_id: &str,
    contact: Option<&str>,
) -> Sipp {
    let port = free_port();
    let own = format!("sip:alice@127.0.0.1:{port}{}", transport.uri_param());
    let contact = contact.map_or(own, str::to_owned);
    Sipp::start(
        scenario,
        proxy.addr(transport),
        transport,
        port,
        call_id,
        &[
            ("callee", callee),
            ("domain", DOMAIN),
            ("contact", &contact),
        ],
    )
}
