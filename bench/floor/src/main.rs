//! The floor row of bench/run.sh: the least a UDP registrar can cost per
//! REGISTER on this kernel. It answers every SIP request with a 200 OK of
//! a fixed length (`--reply-len`, what kamrs sends to the bench's REGISTER;
//! the harness measures it before the run) and keeps no state.
//!
//! Threads and batching are kamrs's (kamrs/src/transport/udp.rs and
//! kamrs/src/datagram.rs): `--workers` threads share one socket (no
//! SO_REUSEPORT), a leader blocks in `recvmmsg` (MSG_WAITFORONE, up to
//! [`BATCH`] datagrams), helpers sleep until the leader takes a full batch
//! and then drain the socket without blocking, and each batch's replies
//! leave with one `sendmmsg`. So the floor pays for the same syscalls,
//! wake-ups and copies as kamrs and for nothing else.
//!
//! The reply. SIPp must accept it as the answer to its REGISTER, and a
//! constant byte string cannot be: SIPp matches a response to its call by
//! Call-ID (and the probe by CSeq). So the floor copies, byte for byte, the
//! request's Via, From, To, Call-ID, CSeq, Contact and Expires lines (found
//! by their header name at the start of a line, compact forms included;
//! nothing is parsed or validated beyond that), adds `;tag=floor` to a To
//! without a tag (RFC 3261 §8.2.6.2), then `X-Pad: xxx…` sized so that the
//! whole reply, ended by `Content-Length: 0`, is exactly `--reply-len`
//! bytes: as many bytes through `sendmmsg` and loopback as kamrs's 200.
//! The result is a valid 200 OK to the REGISTER (it lists the Contact it
//! was sent, as a registrar's would). Copying lines costs a scan of the
//! request, which is less than any SIP parser does; that is the floor's
//! only per-message work. Datagrams that are not requests (responses,
//! keep-alive CRLFs) are dropped.
//!
//! Usage: kamrs-floor --listen 127.0.0.1:PORT [--workers N (0: one per
//!   CPU, kamrs's udp_workers = 0)] [--reply-len BYTES] [--duration-s S]
//!   [--stop-file PATH]
//! Prints `ready` on stdout once the socket is bound. Stops after
//! `--duration-s` (default 3600) or once the stop file exists, or on
//! SIGTERM.

use std::io::{self, Write};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Datagrams per `recvmmsg`, as kamrs's `transport::udp::BATCH`.
const BATCH: usize = 16;
/// Receive slot: kamrs's default max_message_size is far below this.
const SLOT: usize = 65536;
/// The leader's receive timeout and the helpers' park timeout.
const POLL: Duration = Duration::from_millis(100);

struct Args {
    listen: String,
    workers: usize,
    reply_len: usize,
    duration: Duration,
    stop_file: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: String::new(),
        workers: 0,
        reply_len: 0,
        duration: Duration::from_secs(3600),
        stop_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--listen" => a.listen = value()?,
            "--workers" => a.workers = num(value()?)? as usize,
            "--reply-len" => a.reply_len = num(value()?)? as usize,
            "--duration-s" => a.duration = Duration::from_secs(num(value()?)?),
            "--stop-file" => a.stop_file = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.listen.is_empty() {
        return Err("--listen IP:PORT is required".into());
    }
    if a.workers == 0 {
        a.workers = std::thread::available_parallelism().map_or(1, usize::from);
    }
    Ok(a)
}

/// Header names whose lines are copied into the reply (lower case; the
/// compact forms of RFC 3261 §7.3.3 included).
const COPIED: [&[u8]; 12] = [
    b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq", b"contact", b"m",
    b"expires",
];

fn is_to(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t")
}

/// Writes the 200 OK for `req` into `out`; false when `req` is not a
/// request (nothing to answer).
fn build_reply(req: &[u8], reply_len: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    // A request line starts with a method token; responses start "SIP/".
    if req.len() < 8 || !req[0].is_ascii_alphabetic() || req.starts_with(b"SIP/") {
        return false;
    }
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    let mut lines = req.split(|&b| b == b'\n');
    lines.next(); // the request line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the headers
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !COPIED.iter().any(|c| name.eq_ignore_ascii_case(c)) {
            continue;
        }
        out.extend_from_slice(line);
        if is_to(name) && !line.windows(5).any(|w| w.eq_ignore_ascii_case(b";tag=")) {
            out.extend_from_slice(b";tag=floor");
        }
        out.extend_from_slice(b"\r\n");
    }
    const TAIL: &[u8] = b"Content-Length: 0\r\n\r\n";
    const PAD: &[u8] = b"X-Pad: \r\n";
    let have = out.len() + TAIL.len();
    if reply_len >= have + PAD.len() {
        out.extend_from_slice(b"X-Pad: ");
        out.resize(out.len() + reply_len - have - PAD.len(), b'x');
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(TAIL);
    true
}

/// One thread's buffers for `recvmmsg` and `sendmmsg` (the iovecs and
/// headers point into the other fields: they are rebuilt before each call,
/// never across a move).
struct Batch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    outs: Vec<Vec<u8>>,
    /// Per reply: (index of its datagram in the batch).
    replies: Vec<usize>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            bufs: vec![0; BATCH * SLOT],
            // SAFETY: all-zero is a valid sockaddr_storage / mmsghdr.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            iovs: Vec::with_capacity(BATCH),
            hdrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            outs: (0..BATCH).map(|_| Vec::with_capacity(2048)).collect(),
            replies: Vec::with_capacity(BATCH),
        }
    }

    fn recv(&mut self, fd: i32, flags: libc::c_int) -> io::Result<usize> {
        self.iovs.clear();
        for chunk in self.bufs.chunks_exact_mut(SLOT) {
            self.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: SLOT,
            });
        }
        for (i, h) in self.hdrs.iter_mut().enumerate() {
            // SAFETY: all-zero is a valid msghdr.
            h.msg_hdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
        }
        // SAFETY: BATCH headers, each pointing at its own SLOT-byte chunk
        // of `bufs` and its own sockaddr_storage; nothing is resized until
        // the call returns.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Builds the replies of the `n` datagrams received and sends them.
    fn answer(&mut self, fd: i32, n: usize, reply_len: usize) {
        self.replies.clear();
        for i in 0..n {
            let len = (self.hdrs[i].msg_len as usize).min(SLOT);
            let req = &self.bufs[i * SLOT..i * SLOT + len];
            if build_reply(req, reply_len, &mut self.outs[i]) {
                self.replies.push(i);
            }
        }
        // The send headers reuse the receive headers: same peer address
        // (msg_name, msg_namelen as the kernel left it), new iovec.
        self.iovs.clear();
        for &i in &self.replies {
            self.iovs.push(libc::iovec {
                iov_base: self.outs[i].as_mut_ptr().cast(),
                iov_len: self.outs[i].len(),
            });
        }
        let mut k = 0;
        for (j, &i) in self.replies.iter().enumerate() {
            let namelen = self.hdrs[i].msg_hdr.msg_namelen;
            let h = &mut self.hdrs[j];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut self.iovs[j];
            h.msg_hdr.msg_iovlen = 1;
            k += 1;
        }
        // As kamrs's SendBatch::send in its UDP workers: a blocking
        // sendmmsg (flags 0); when one fails, it is skipped and the rest
        // go on.
        let mut sent = 0;
        while sent < k {
            // SAFETY: headers [sent, k) point at live iovecs of `iovs`
            // (one per reply buffer of `outs`) and at addresses of `addrs`.
            let r =
                unsafe { libc::sendmmsg(fd, self.hdrs[sent..].as_mut_ptr(), (k - sent) as u32, 0) };
            if r > 0 {
                sent += r as usize;
            } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                sent += 1;
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn worker(socket: Arc<UdpSocket>, leader: bool, helpers: Vec<Thread>, reply_len: usize) {
    let fd = socket.as_raw_fd();
    let mut b = Batch::new();
    loop {
        let flags = if leader {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        let n = match b.recv(fd, flags) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                if !leader {
                    std::thread::park_timeout(POLL);
                }
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if n == BATCH {
            for h in &helpers {
                h.unpark();
            }
        }
        b.answer(fd, n, reply_len);
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kamrs-floor: {e}");
            }
            eprintln!(
                "usage: kamrs-floor --listen IP:PORT [--workers N] [--reply-len BYTES] \
                 [--duration-s S] [--stop-file PATH]"
            );
            return ExitCode::from(2);
        }
    };
    let socket = match UdpSocket::bind(&a.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kamrs-floor: bind {}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = socket.set_read_timeout(Some(POLL)) {
        eprintln!("kamrs-floor: receive timeout: {e}");
    }
    let socket = Arc::new(socket);
    let mut helpers = Vec::new();
    for i in 1..a.workers {
        let s = Arc::clone(&socket);
        let t = std::thread::Builder::new()
            .name(format!("floor-udp{i}"))
            .spawn(move || worker(s, false, Vec::new(), a.reply_len))
            .expect("spawn a worker thread");
        helpers.push(t.thread().clone());
    }
    let s = Arc::clone(&socket);
    let reply_len = a.reply_len;
    std::thread::Builder::new()
        .name("floor-udp0".into())
        .spawn(move || worker(s, true, helpers, reply_len))
        .expect("spawn the leader thread");
    println!("ready");
    let _ = io::stdout().flush();
    let t0 = Instant::now();
    while t0.elapsed() < a.duration {
        if a.stop_file.as_ref().is_some_and(|p| p.exists()) {
            break;
        }
        std::thread::sleep(POLL);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::build_reply;

    #[test]
    fn copies_the_lines_and_pads_to_length() {
        let req = b"REGISTER sip:example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n\
            From: <sip:p1@example.com>;tag=1SIPpTag01\r\n\
            To: <sip:p1@example.com>\r\n\
            Call-ID: p-1@bench\r\n\
            CSeq: 2 REGISTER\r\n\
            Contact: <sip:p1@127.0.0.1:5061>\r\n\
            Max-Forwards: 70\r\n\
            Expires: 3600\r\n\
            User-Agent: SIPp\r\n\
            Content-Length: 0\r\n\r\n";
        let mut out = Vec::new();
        assert!(build_reply(req, 400, &mut out));
        let s = String::from_utf8(out.clone()).unwrap();
        assert_eq!(out.len(), 400, "{s}");
        assert!(s.starts_with(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n"
        ));
        assert!(s.contains("\r\nTo: <sip:p1@example.com>;tag=floor\r\n"));
        assert!(s.contains("\r\nCSeq: 2 REGISTER\r\n"));
        assert!(!s.contains("User-Agent"));
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
        // Too short a target: no padding, still a whole reply.
        assert!(build_reply(req, 10, &mut out));
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
        assert!(!build_reply(b"SIP/2.0 200 OK\r\n\r\n", 400, &mut out));
        assert!(!build_reply(b"\r\n\r\n", 400, &mut out));
    }
}
