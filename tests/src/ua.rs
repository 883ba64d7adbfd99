//! A scriptable SIP phone for proxy tests: sends the requests and
//! responses a test writes and reads whole messages, over UDP or TCP, so a
//! test can play caller and callee around kamrs and check every header
//! the proxy changed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

enum Wire {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

pub struct Phone {
    wire: Wire,
    pub server: SocketAddr,
    /// Our address as kamrs sees it.
    pub local: SocketAddr,
}

impl Phone {
    pub fn udp(server: SocketAddr) -> Phone {
        Phone::udp_on("127.0.0.1:0", server)
    }

    /// A UDP phone bound to `bind` (`[::1]:0` for IPv6).
    pub fn udp_on(bind: &str, server: SocketAddr) -> Phone {
        let s = UdpSocket::bind(bind).expect("bind udp");
        let local = s.local_addr().expect("local addr");
        Phone {
            wire: Wire::Udp(s),
            server,
            local,
        }
    }

    pub fn tcp(server: SocketAddr) -> Phone {
        let stream = TcpStream::connect(server).expect("connect tcp");
        let local = stream.local_addr().expect("local addr");
        Phone {
            wire: Wire::Tcp {
                stream,
                buf: Vec::new(),
            },
            server,
            local,
        }
    }

    /// `UDP` or `TCP`, for Via headers.
    pub fn transport(&self) -> &'static str {
        match self.wire {
            Wire::Udp(_) => "UDP",
            Wire::Tcp { .. } => "TCP",
        }
    }

    pub fn send(&mut self, msg: &str) {
        match &mut self.wire {
            Wire::Udp(s) => {
                s.send_to(msg.as_bytes(), self.server).expect("send udp");
            }
            Wire::Tcp { stream, .. } => stream.write_all(msg.as_bytes()).expect("send tcp"),
        }
    }

    /// The next whole message within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        match &mut self.wire {
            Wire::Udp(s) => {
                let mut b = vec![0u8; 65_536];
                loop {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .ok()?;
                    let (n, _) = s.recv_from(&mut b).ok()?;
                    // CRLF keepalives and STUN are not messages.
                    if n > 4 {
                        return Some(String::from_utf8_lossy(&b[..n]).into_owned());
                    }
                }
            }
            Wire::Tcp { stream, buf } => loop {
                if let Some(msg) = cut_message(buf) {
                    return Some(msg);
                }
                let left = deadline.checked_duration_since(Instant::now())?;
                stream
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .ok()?;
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            },
        }
    }

    /// The next message, which must be a request `method` (responses and
    /// other requests before it fail the test).
    pub fn expect_request(&mut self, method: &str) -> String {
        let msg = self
            .recv(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no {method} arrived"));
        assert!(
            msg.starts_with(&format!("{method} ")),
            "expected {method}, got:\n{msg}"
        );
        msg
    }

    /// The next message, which must be a response with `status`.
    pub fn expect_status(&mut self, status: u16) -> String {
        let msg = self
            .recv(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no {status} arrived"));
        assert!(
            msg.starts_with(&format!("SIP/2.0 {status} ")),
            "expected {status}, got:\n{msg}"
        );
        msg
    }

    /// Nothing arrives within `wait`.
    pub fn expect_nothing(&mut self, wait: Duration) {
        if let Some(msg) = self.recv(wait) {
            panic!("expected silence, got:\n{msg}");
        }
    }

    /// Registers `user@example.com` with `contact` (default: our address)
    /// and returns the status.
    pub fn register(&mut self, user: &str, contact: Option<&str>, extra: &str) -> u16 {
        let contact = contact.map(str::to_owned).unwrap_or_else(|| {
            format!(
                "<sip:{user}@{};transport={}>",
                self.local,
                self.transport().to_lowercase()
            )
        });
        let call_id = format!("reg-{user}-{}", crate::unique());
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bK{};rport\r\nFrom: <sip:{user}@example.com>;tag=r\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\nExpires: 600\r\n{extra}Content-Length: 0\r\n\r\n",
            self.transport(),
            self.local,
            crate::unique()
        );
        self.send(&msg);
        let r = self
            .recv(Duration::from_secs(5))
            .expect("REGISTER answered");
        status_of(&r)
    }
}

/// Cuts one message (headers, then Content-Length bytes) off `buf`.
fn cut_message(buf: &mut Vec<u8>) -> Option<String> {
    while buf.starts_with(b"\r\n") {
        buf.drain(..2);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = header(&head, "Content-Length")
        .or_else(|| header(&head, "l"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    let msg = String::from_utf8_lossy(&buf[..end + len]).into_owned();
    buf.drain(..end + len);
    Some(msg)
}

pub fn status_of(msg: &str) -> u16 {
    msg.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Every value of header `name` (case-insensitive), one per header line.
pub fn headers(msg: &str, name: &str) -> Vec<String> {
    msg.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

pub fn header(msg: &str, name: &str) -> Option<String> {
    headers(msg, name).into_iter().next()
}

/// A response to `req` as a UAS writes it: its Vias, Record-Routes,
/// From, Call-ID and CSeq copied, To with `to_tag` added when it has none.
pub fn reply(req: &str, status: u16, reason: &str, to_tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in headers(req, "Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    let to = header(req, "To").unwrap_or_default();
    let to = if to.contains(";tag=") || status == 100 {
        to
    } else {
        format!("{to};tag={to_tag}")
    };
    for (name, value) in [
        ("From", header(req, "From").unwrap_or_default()),
        ("To", to),
        ("Call-ID", header(req, "Call-ID").unwrap_or_default()),
        ("CSeq", header(req, "CSeq").unwrap_or_default()),
    ] {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A request from `from_user` to `ruri` with the given extra headers.
#[allow(clippy::too_many_arguments)]
pub fn request(
    method: &str,
    ruri: &str,
    phone: &Phone,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &str,
) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bK{};rport\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n",
        phone.transport(),
        phone.local,
        crate::unique()
    )
}
