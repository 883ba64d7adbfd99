//! Latency probe for bench/run.sh.
//!
//! Sends one REGISTER at a time to a registrar over its own UDP socket, one
//! every `--interval-us` (a refresh of one AoR: same Call-ID, rising CSeq),
//! and times the 200 OK with `Instant` (microseconds). One request is
//! outstanding at a time, so a stalled registrar shows as one long sample,
//! never as a queue of the probe's own making. A request without a 200
//! within `--timeout-ms` counts as lost and the next one is sent.
//!
//! Stops after `--duration-s` or as soon as `--stop-file` exists, whichever
//! comes first (bounded either way), then prints one summary line of
//! `key=value` pairs (also written to `--out` when given):
//!
//!   sent=.. ok=.. lost=.. other=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. mean_us=..
//!
//! `--samples FILE` writes every sample as `t_since_start_us latency_us`
//! (latency -1 = lost), for looking at a stall in time.
//!
//! Usage: kamrs-probe --target 127.0.0.1:5060 [--interval-us 2000]
//!        [--duration-s 10] [--stop-file PATH] [--timeout-ms 1000]
//!        [--user probe] [--out FILE] [--samples FILE]

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    target: SocketAddr,
    interval: Duration,
    duration: Duration,
    stop_file: Option<PathBuf>,
    timeout: Duration,
    user: String,
    out: Option<PathBuf>,
    samples: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut target = None;
    let mut interval = Duration::from_micros(2000);
    let mut duration = Duration::from_secs(10);
    let mut stop_file = None;
    let mut timeout = Duration::from_millis(1000);
    let mut user = "probe".to_string();
    let mut out = None;
    let mut samples = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--target" => target = Some(value()?.parse().map_err(|e| format!("--target: {e}"))?),
            "--interval-us" => interval = Duration::from_micros(num(value()?)?),
            "--duration-s" => duration = Duration::from_secs(num(value()?)?),
            "--timeout-ms" => timeout = Duration::from_millis(num(value()?)?),
            "--stop-file" => stop_file = Some(PathBuf::from(value()?)),
            "--user" => user = value()?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--samples" => samples = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        target: target.ok_or("--target IP:PORT is required")?,
        interval,
        duration,
        stop_file,
        timeout: timeout.max(Duration::from_millis(1)),
        user,
        out,
        samples,
    })
}

/// `CSeq: <n> REGISTER` of a response, and whether it is a 200.
fn parse_response(msg: &[u8]) -> Option<(u32, bool)> {
    let text = std::str::from_utf8(msg).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?;
    let is_200 = status.starts_with("SIP/2.0 200 ");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("cseq") {
            let n = value.split_whitespace().next()?.parse().ok()?;
            return Some((n, is_200));
        }
    }
    None
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kamrs-probe: {e}");
            }
            eprintln!(
                "usage: kamrs-probe --target IP:PORT [--interval-us N] [--duration-s N] \
                 [--stop-file PATH] [--timeout-ms N] [--user NAME] [--out FILE] [--samples FILE]"
            );
            return ExitCode::from(2);
        }
    };
    let socket = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kamrs-probe: bind: {e}");
            return ExitCode::from(1);
        }
    };
    let local = socket.local_addr().expect("bound socket has an address");
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let call_id = format!("probe-{}-{nonce}@bench", std::process::id());
    let user = &args.user;
    let mut buf = vec![0u8; 65536];
    let mut msg = String::with_capacity(1024);
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 16);
    let mut samples: Vec<(u64, i64)> = Vec::new();
    let (mut sent, mut lost, mut other) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut next_send = start;
    let mut cseq: u32 = 0;
    while Instant::now() < deadline {
        if let Some(f) = &args.stop_file {
            if f.exists() {
                break;
            }
        }
        let now = Instant::now();
        if next_send > now {
            std::thread::sleep(next_send - now);
        } else {
            // Late (the previous answer took longer than the interval): no
            // burst to catch up, the period restarts from now.
            next_send = now;
        }
        next_send += args.interval;
        cseq += 1;
        msg.clear();
        use std::fmt::Write as _;
        let _ = write!(
            msg,
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{nonce}-{cseq};rport\r\n\
             From: <sip:{user}@example.com>;tag=probe{nonce}\r\n\
             To: <sip:{user}@example.com>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Max-Forwards: 70\r\n\
             Expires: 3600\r\n\
             User-Agent: kamrs-probe\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let t0 = Instant::now();
        if let Err(e) = socket.send_to(msg.as_bytes(), args.target) {
            eprintln!("kamrs-probe: send: {e}");
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        sent += 1;
        let wait_until = t0 + args.timeout;
        let mut answered = None;
        loop {
            let now = Instant::now();
            if now >= wait_until {
                break;
            }
            let _ = socket.set_read_timeout(Some(wait_until - now));
            // A timeout or EINTR: the loop checks the clock.
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let t1 = Instant::now();
            match parse_response(&buf[..n]) {
                Some((n, true)) if n == cseq => {
                    answered = Some(t1 - t0);
                    break;
                }
                // An error reply to this request (a 1xx is not the end).
                Some((n, false)) if n == cseq && !buf.starts_with(b"SIP/2.0 1") => {
                    other += 1;
                    break;
                }
                // A 1xx, or a late reply to an earlier (lost) request.
                _ => {}
            }
        }
        let at = (t0 - start).as_micros() as u64;
        match answered {
            Some(d) => {
                let us = d.as_micros() as u64;
                latencies.push(us);
                if args.samples.is_some() {
                    samples.push((at, us as i64));
                }
            }
            None => {
                if Instant::now() >= wait_until {
                    lost += 1;
                }
                if args.samples.is_some() {
                    samples.push((at, -1));
                }
            }
        }
    }
    let ok = latencies.len() as u64;
    let mean = latencies.iter().sum::<u64>().checked_div(ok).unwrap_or(0);
    let mut sorted = latencies;
    sorted.sort_unstable();
    let summary = format!(
        "sent={sent} ok={ok} lost={lost} other={other} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} mean_us={mean} secs={:.3}",
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        percentile(&sorted, 99.0),
        percentile(&sorted, 99.9),
        sorted.last().copied().unwrap_or(0),
        start.elapsed().as_secs_f64(),
    );
    println!("{summary}");
    if let Some(path) = &args.out {
        if let Err(e) = std::fs::write(path, format!("{summary}\n")) {
            eprintln!("kamrs-probe: {}: {e}", path.display());
        }
    }
    if let Some(path) = &args.samples {
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            for (t, l) in &samples {
                writeln!(f, "{t} {l}")?;
            }
            f.flush()
        };
        if let Err(e) = write() {
            eprintln!("kamrs-probe: {}: {e}", path.display());
        }
    }
    ExitCode::SUCCESS
}
