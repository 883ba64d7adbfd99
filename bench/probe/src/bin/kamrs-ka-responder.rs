//! The phones of bench/keepalive-bench.sh: registers a population of NATed
//! bindings in a registrar and answers its keepalive OPTIONS.
//!
//! `--population N` AoRs `sip:<prefix>K@example.com` (K = 1..N) are spread
//! over `--sockets S` UDP sockets on 127.0.0.1 (N/S AoRs each, one thread
//! per socket). Each AoR registers once from its socket with
//! `Contact: <sip:<prefix>K@10.a.b.c:5060>` (a private address: NATed for
//! nathelper's nat_uac_test and kamrs's), Expires `--expires`, at most
//! `--rate` REGISTERs/s in all and `--window` outstanding per socket, each
//! retransmitted after 1 s up to 5 times.
//!
//! Every OPTIONS that arrives on any socket is answered at once with a 200
//! OK (its Via lines, From, To with a tag added, Call-ID, CSeq) to the
//! address it came from, and counted per wall-clock second (Unix time).
//!
//! Every second it rewrites (write + rename) `--status FILE`:
//!   registered=.. reg_failed=.. reg_done=0|1 options=.. answered=.. other=.. ports=p1,p2,..
//! and `--counts FILE`: one line `unix_second options answered` per second
//! that saw an OPTIONS. Stops after `--duration-s` or as soon as
//! `--stop-file` exists (bounded either way), writing both files a last time.
//!
//! Socket receive buffers are `--rcvbuf` bytes (SO_RCVBUFFORCE when allowed,
//! else SO_RCVBUF, capped by net.core.rmem_max): a registrar that sends its
//! whole population's pings at once must not overflow them.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    target: SocketAddr,
    population: u64,
    sockets: u64,
    prefix: String,
    rate: u64,
    window: usize,
    expires: u64,
    rcvbuf: i32,
    duration: Duration,
    stop_file: Option<PathBuf>,
    status: Option<PathBuf>,
    counts: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        target: "127.0.0.1:5060".parse().unwrap(),
        population: 1000,
        sockets: 10,
        prefix: "ka".into(),
        rate: 5000,
        window: 64,
        expires: 3600,
        rcvbuf: 64 << 20,
        duration: Duration::from_secs(600),
        stop_file: None,
        status: None,
        counts: None,
    };
    let mut target = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--target" => {
                a.target = value()?.parse().map_err(|e| format!("--target: {e}"))?;
                target = true;
            }
            "--population" => a.population = num(value()?)?,
            "--sockets" => a.sockets = num(value()?)?.max(1),
            "--prefix" => a.prefix = value()?,
            "--rate" => a.rate = num(value()?)?.max(1),
            "--window" => a.window = num(value()?)?.max(1) as usize,
            "--expires" => a.expires = num(value()?)?,
            "--rcvbuf" => a.rcvbuf = num(value()?)?.min(i32::MAX as u64) as i32,
            "--duration-s" => a.duration = Duration::from_secs(num(value()?)?),
            "--stop-file" => a.stop_file = Some(PathBuf::from(value()?)),
            "--status" => a.status = Some(PathBuf::from(value()?)),
            "--counts" => a.counts = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !target {
        return Err("--target IP:PORT is required".into());
    }
    Ok(a)
}

extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const u8, len: u32) -> i32;
    fn getsockopt(fd: i32, level: i32, name: i32, value: *mut u8, len: *mut u32) -> i32;
}
const SOL_SOCKET: i32 = 1;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_RCVBUFFORCE: i32 = 33;

/// Sets the receive buffer (forced if we may); returns what the kernel took.
fn set_rcvbuf(sock: &UdpSocket, bytes: i32) -> i32 {
    let fd = sock.as_raw_fd();
    let v = bytes.to_ne_bytes();
    // SAFETY: fd is an open socket, v is a valid 4-byte int for the call.
    unsafe {
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v.as_ptr(), 4) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v.as_ptr(), 4);
        }
        let s = (4i32 << 20).to_ne_bytes();
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, s.as_ptr(), 4);
        let mut out = [0u8; 4];
        let mut len = 4u32;
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, out.as_mut_ptr(), &mut len);
        i32::from_ne_bytes(out)
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Counters shared by the socket threads.
struct Shared {
    start_sec: u64,
    options: Vec<AtomicU64>,  // per second since start_sec
    answered: Vec<AtomicU64>, // per second since start_sec
    registered: AtomicU64,
    reg_failed: AtomicU64,
    sockets_done: AtomicU64,
    other: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn slot(&self) -> Option<usize> {
        let i = unix_secs().checked_sub(self.start_sec)? as usize;
        (i < self.options.len()).then_some(i)
    }
}

/// The value of header `name` (first occurrence, case-insensitive; also
/// the compact form `short` when given).
fn header<'a>(msg: &'a str, name: &str, short: Option<&str>) -> Option<&'a str> {
    for line in msg.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let Some((n, v)) = line.split_once(':') else { continue };
        let n = n.trim();
        if n.eq_ignore_ascii_case(name) || short.is_some_and(|s| n.eq_ignore_ascii_case(s)) {
            return Some(v.trim());
        }
    }
    None
}

/// The 200 OK to an OPTIONS: every Via line, From, To (tagged), Call-ID, CSeq.
fn answer(req: &str, out: &mut String) -> bool {
    use std::fmt::Write as _;
    out.clear();
    out.push_str("SIP/2.0 200 OK\r\n");
    for line in req.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    let (Some(from), Some(to), Some(cid), Some(cseq)) = (
        header(req, "From", Some("f")),
        header(req, "To", Some("t")),
        header(req, "Call-ID", Some("i")),
        header(req, "CSeq", None),
    ) else {
        return false;
    };
    let tagged = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag=kaphone")
    };
    let _ = write!(
        out,
        "From: {from}\r\nTo: {tagged}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\n\
         Server: kamrs-ka-responder\r\nContent-Length: 0\r\n\r\n"
    );
    true
}

struct Pending {
    k: u64,
    sent: Instant,
    tries: u32,
}

fn register_msg(a: &Args, local: SocketAddr, k: u64, nonce: u128, tries: u32, out: &mut String) {
    use std::fmt::Write as _;
    out.clear();
    let p = &a.prefix;
    let (b1, b2, b3) = ((k >> 16) & 255, (k >> 8) & 255, k & 255);
    let _ = write!(
        out,
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-ka-{nonce}-{k}-{tries};rport\r\n\
         From: <sip:{p}{k}@example.com>;tag=ka{k}\r\n\
         To: <sip:{p}{k}@example.com>\r\n\
         Call-ID: ka-{p}{k}-{nonce}@bench\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{p}{k}@10.{b1}.{b2}.{b3}:5060>\r\n\
         Max-Forwards: 70\r\n\
         Expires: {}\r\n\
         User-Agent: kamrs-ka-responder\r\n\
         Content-Length: 0\r\n\r\n",
        a.expires
    );
}

/// One socket: registers AoRs first..=last, answers OPTIONS until stopped.
fn run_socket(a: Arc<Args>, sh: Arc<Shared>, sock: UdpSocket, first: u64, last: u64, nonce: u128) {
    let local = sock.local_addr().expect("bound");
    let mut buf = vec![0u8; 65536];
    let mut out = String::with_capacity(2048);
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut next_k = first;
    let per_socket_rate = (a.rate as f64 / a.sockets as f64).max(1.0);
    let gap = Duration::from_secs_f64(1.0 / per_socket_rate);
    let mut next_send = Instant::now();
    let mut reg_done = first > last;
    if reg_done {
        sh.sockets_done.fetch_add(1, Ordering::Relaxed);
    }
    let mut last_retx_scan = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        // Registering: new REGISTERs while the window and the rate allow.
        if !reg_done {
            let now = Instant::now();
            while next_k <= last && pending.len() < a.window && next_send <= now {
                register_msg(&a, local, next_k, nonce, 0, &mut out);
                let _ = sock.send_to(out.as_bytes(), a.target);
                pending.insert(
                    format!("ka-{}{}-{nonce}@bench", a.prefix, next_k),
                    Pending { k: next_k, sent: now, tries: 0 },
                );
                next_k += 1;
                next_send += gap;
            }
            if next_send < now - Duration::from_millis(100) {
                next_send = now; // no catch-up bursts after a stall
            }
            if now - last_retx_scan >= Duration::from_millis(100) {
                last_retx_scan = now;
                let mut failed = Vec::new();
                for (cid, p) in pending.iter_mut() {
                    if now - p.sent >= Duration::from_secs(1) {
                        if p.tries >= 5 {
                            failed.push(cid.clone());
                        } else {
                            p.tries += 1;
                            p.sent = now;
                            register_msg(&a, local, p.k, nonce, p.tries, &mut out);
                            let _ = sock.send_to(out.as_bytes(), a.target);
                        }
                    }
                }
                for cid in failed {
                    pending.remove(&cid);
                    sh.reg_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if next_k > last && pending.is_empty() {
                reg_done = true;
                sh.sockets_done.fetch_add(1, Ordering::Relaxed);
            }
        }
        let timeout = if reg_done { Duration::from_millis(200) } else { Duration::from_millis(2) };
        let _ = sock.set_read_timeout(Some(timeout));
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let Ok(msg) = std::str::from_utf8(&buf[..n]) else {
            sh.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if msg.starts_with("OPTIONS ") {
            let slot = sh.slot();
            if let Some(i) = slot {
                sh.options[i].fetch_add(1, Ordering::Relaxed);
            }
            if answer(msg, &mut out) && sock.send_to(out.as_bytes(), from).is_ok() {
                if let Some(i) = slot {
                    sh.answered[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if msg.starts_with("SIP/2.0 ") {
            let final_ = !msg.starts_with("SIP/2.0 1");
            let ok = msg.starts_with("SIP/2.0 200 ");
            match header(msg, "Call-ID", Some("i")) {
                Some(cid) if final_ && pending.remove(cid).is_some() => {
                    if ok {
                        sh.registered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        sh.reg_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    // A 1xx, or the answer to a retransmission already counted.
                    if final_ {
                        sh.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        } else {
            sh.other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_atomic(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn report(a: &Args, sh: &Shared, ports: &str) {
    let (mut opt, mut ans) = (0u64, 0u64);
    let mut counts = String::new();
    for i in 0..sh.options.len() {
        let o = sh.options[i].load(Ordering::Relaxed);
        let r = sh.answered[i].load(Ordering::Relaxed);
        opt += o;
        ans += r;
        if o > 0 || r > 0 {
            counts.push_str(&format!("{} {o} {r}\n", sh.start_sec + i as u64));
        }
    }
    let status = format!(
        "registered={} reg_failed={} reg_done={} options={opt} answered={ans} other={} ports={ports}\n",
        sh.registered.load(Ordering::Relaxed),
        sh.reg_failed.load(Ordering::Relaxed),
        (sh.sockets_done.load(Ordering::Relaxed) == a.sockets) as u8,
        sh.other.load(Ordering::Relaxed),
    );
    if let Some(p) = &a.counts {
        write_atomic(p, &counts);
    }
    if let Some(p) = &a.status {
        write_atomic(p, &status);
    } else {
        print!("{status}");
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kamrs-ka-responder: {e}");
            }
            eprintln!(
                "usage: kamrs-ka-responder --target IP:PORT [--population N] [--sockets S] \
                 [--prefix P] [--rate R] [--window W] [--expires S] [--rcvbuf BYTES] \
                 [--duration-s N] [--stop-file PATH] [--status FILE] [--counts FILE]"
            );
            return ExitCode::from(2);
        }
    };
    let a = Arc::new(a);
    let slots = a.duration.as_secs() as usize + 120;
    let sh = Arc::new(Shared {
        start_sec: unix_secs(),
        options: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        answered: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        registered: AtomicU64::new(0),
        reg_failed: AtomicU64::new(0),
        sockets_done: AtomicU64::new(0),
        other: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let per = a.population.div_ceil(a.sockets);
    let mut ports = Vec::new();
    let mut threads = Vec::new();
    let mut bufs = Vec::new();
    for s in 0..a.sockets {
        let sock = match UdpSocket::bind("127.0.0.1:0") {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kamrs-ka-responder: bind: {e}");
                return ExitCode::from(1);
            }
        };
        bufs.push(set_rcvbuf(&sock, a.rcvbuf));
        ports.push(sock.local_addr().expect("bound").port().to_string());
        let first = s * per + 1;
        let last = ((s + 1) * per).min(a.population);
        let (a2, sh2) = (a.clone(), sh.clone());
        threads.push(std::thread::spawn(move || run_socket(a2, sh2, sock, first, last, nonce)));
    }
    eprintln!("kamrs-ka-responder: {} sockets, rcvbuf {:?}", a.sockets, bufs);
    let ports = ports.join(",");
    let start = Instant::now();
    while start.elapsed() < a.duration {
        if a.stop_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
        report(&a, &sh, &ports);
        std::thread::sleep(Duration::from_millis(1000));
    }
    sh.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    report(&a, &sh, &ports);
    ExitCode::SUCCESS
}
