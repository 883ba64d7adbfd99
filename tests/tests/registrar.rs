//! Every row of docs/design.md §3 through real sockets against the real daemon,
//! over UDP and over TCP.

use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use kamrs_tests::{
    param, read_response, tcp_connect, udp_client, udp_exchange, unique, Kamrs, Response,
    REPLY_TIMEOUT,
};

/// A client connection of either transport.
enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Conn {
    fn both(k: &Kamrs) -> [Conn; 2] {
        [
            Conn::Udp(udp_client(k.udp())),
            Conn::Tcp(tcp_connect(k.tcp())),
        ]
    }

    fn transport(&self) -> &'static str {
        match self {
            Conn::Udp(_) => "UDP",
            Conn::Tcp(_) => "TCP",
        }
    }

    fn port(&self) -> u16 {
        match self {
            Conn::Udp(s) => s.local_addr().unwrap().port(),
            Conn::Tcp(s) => s.local_addr().unwrap().port(),
        }
    }

    fn exchange(&mut self, msg: &str) -> Response {
        match self {
            Conn::Udp(s) => udp_exchange(s, msg),
            Conn::Tcp(s) => {
                use std::io::Write;
                s.write_all(msg.as_bytes()).unwrap();
                read_response(s, REPLY_TIMEOUT).unwrap_or_else(|| panic!("no TCP reply to:\n{msg}"))
            }
        }
    }
}

/// One phone registering one AoR: keeps its Call-ID and counts CSeq.
struct Phone {
    conn: Conn,
    user: String,
    call_id: String,
    cseq: u32,
}

impl Phone {
    fn new(conn: Conn) -> Phone {
        Phone {
            user: format!("u{}", unique()),
            call_id: format!("{}@test", unique()),
            cseq: 0,
            conn,
        }
    }

    fn request(&mut self, extra: &[&str]) -> String {
        self.cseq += 1;
        self.request_with_cseq(self.cseq, extra)
    }

    fn request_with_cseq(&self, cseq: u32, extra: &[&str]) -> String {
        let mut s = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/{t} 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{u}@example.com>;tag={tag}\r\n\
             To: <sip:{u}@example.com>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             User-Agent: kamrs-e2e\r\n",
            t = self.conn.transport(),
            port = self.conn.port(),
            b = unique(),
            u = self.user,
            tag = unique(),
            cid = self.call_id,
        );
        for h in extra {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }

    fn register(&mut self, extra: &[&str]) -> Response {
        let msg = self.request(extra);
        self.conn.exchange(&msg)
    }

    /// A query: REGISTER without Contact lists the bindings.
    fn bindings(&mut self) -> Vec<(String, u64)> {
        let r = self.register(&[]);
        assert_eq!(r.status, 200, "{}", r.raw);
        contacts(&r)
    }
}

/// (URI, expires) of each Contact in a 200, in order.
fn contacts(r: &Response) -> Vec<(String, u64)> {
    r.values("Contact")
        .iter()
        .map(|c| {
            let uri = c
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(u, _)| u.to_string())
                .unwrap_or_else(|| panic!("contact without <>: {c}"));
            let expires = param(c, "expires")
                .unwrap_or_else(|| panic!("contact without expires: {c}"))
                .parse()
                .unwrap();
            (uri, expires)
        })
        .collect()
}

fn uris(r: &[(String, u64)]) -> Vec<&str> {
    r.iter().map(|(u, _)| u.as_str()).collect()
}

fn assert_near(got: u64, want: u64, what: &str) {
    assert!(
        got <= want && got + 2 >= want,
        "{what}: expires {got}, want about {want}"
    );
}

fn assert_refused(r: &Response, status: u16, reason_has: &str) {
    assert_eq!(r.status, status, "{}", r.raw);
    assert!(
        r.reason.to_lowercase().contains(&reason_has.to_lowercase()),
        "reason {:?} should mention {reason_has:?}",
        r.reason
    );
    assert!(r.header("P-Registrar-Error").is_some(), "{}", r.raw);
}

#[test]
fn add_refresh_and_remove() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let contact = format!("Contact: <sip:{}@127.0.0.1:{}>", p.user, p.conn.port());
        let r = p.register(&[&contact, "Expires: 600"]);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.reason, "OK");
        let c = contacts(&r);
        assert_eq!(c.len(), 1, "{}", r.raw);
        assert_near(c[0].1, 600, "new binding");
        assert!(
            r.header("Date").is_some_and(|d| d.ends_with("GMT")),
            "{}",
            r.raw
        );
        assert!(r.header("To").unwrap().contains("tag="), "{}", r.raw);

        let r = p.register(&[&contact, "Expires: 1200"]);
        let c = contacts(&r);
        assert_eq!(c.len(), 1, "refresh keeps one binding: {}", r.raw);
        assert_near(c[0].1, 1200, "refreshed binding");

        let r = p.register(&[&format!("{contact};expires=0")]);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert!(contacts(&r).is_empty(), "{}", r.raw);

        p.register(&[&contact]);
        let r = p.register(&[&contact, "Expires: 0"]);
        assert!(contacts(&r).is_empty(), "Expires: 0 removes: {}", r.raw);
    }
}

#[test]
fn contact_star() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:a@192.0.2.1>, <sip:b@192.0.2.2>"]);
        assert_eq!(p.bindings().len(), 2);
        let r = p.register(&["Contact: *", "Expires: 60"]);
        assert_refused(&r, 400, "expires");
        let r = p.register(&["Contact: *"]);
        assert_refused(&r, 400, "expires");
        let r = p.register(&["Contact: *", "Contact: <sip:c@192.0.2.3>", "Expires: 0"]);
        assert_refused(&r, 400, "only contact");
        assert_eq!(p.bindings().len(), 2, "nothing changed");
        let r = p.register(&["Contact: *", "Expires: 0"]);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert!(contacts(&r).is_empty(), "{}", r.raw);
        assert!(p.bindings().is_empty());
    }
}

#[test]
fn query_lists_by_q_then_recency() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let empty = p.register(&[]);
        assert_eq!(empty.status, 200, "query of an unknown AoR: {}", empty.raw);
        assert!(contacts(&empty).is_empty());
        p.register(&["Contact: <sip:low@192.0.2.1>;q=0.1"]);
        p.register(&["Contact: <sip:old@192.0.2.2>"]);
        p.register(&["Contact: <sip:high@192.0.2.3>;q=0.9"]);
        let r = p.register(&[]);
        assert_eq!(
            uris(&contacts(&r)),
            [
                "sip:old@192.0.2.2",
                "sip:high@192.0.2.3",
                "sip:low@192.0.2.1"
            ],
            "no q counts as 1.0: {}",
            r.raw
        );
        assert!(r.values("Contact")[2].contains(";q=0.1"), "{}", r.raw);
    }
}

#[test]
fn expires_precedence_and_bounds() {
    let k = Kamrs::start("default_expires = 900\nmin_expires = 60\nmax_expires = 1800");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let r = p.register(&[
            "Contact: <sip:param@192.0.2.1>;expires=120, <sip:header@192.0.2.2>",
            "Contact: <sip:clamped@192.0.2.3>;expires=99999",
            "Expires: 300",
        ]);
        assert_eq!(r.status, 200, "{}", r.raw);
        let mut c = contacts(&r);
        c.sort();
        assert_eq!(
            uris(&c),
            [
                "sip:clamped@192.0.2.3",
                "sip:header@192.0.2.2",
                "sip:param@192.0.2.1"
            ]
        );
        assert_near(c[0].1, 1800, "clamped to max_expires");
        assert_near(c[1].1, 300, "Expires header");
        assert_near(c[2].1, 120, "contact param wins");
        let mut q = Phone::new(Conn::Udp(udp_client(k.udp())));
        let r = q.register(&["Contact: <sip:default@192.0.2.4>"]);
        assert_near(contacts(&r)[0].1, 900, "default_expires");

        let r = p.register(&["Contact: <sip:brief@192.0.2.5>;expires=30"]);
        assert_eq!(r.status, 423, "{}", r.raw);
        assert_eq!(r.reason, "Interval Too Brief");
        assert_eq!(r.header("Min-Expires"), Some("60"), "{}", r.raw);
        assert_eq!(p.bindings().len(), 3, "nothing changed");
    }
}

#[test]
fn min_expires_raise_mode() {
    let k = Kamrs::start("min_expires = 60\nmin_expires_mode = \"raise\"");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let r = p.register(&["Contact: <sip:a@192.0.2.1>;expires=5"]);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_near(contacts(&r)[0].1, 60, "raised to min_expires");
    }
}

#[test]
fn call_id_and_cseq_ordering() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.cseq = 10;
        let contact = "Contact: <sip:a@192.0.2.1>";
        let first = p.register(&[contact, "Expires: 600"]);
        assert_eq!(first.status, 200);
        // The same CSeq again: a retransmission, same answer, no change.
        let again = p
            .conn
            .exchange(&p.request_with_cseq(11, &[contact, "Expires: 900"]));
        assert_eq!(again.status, 200, "{}", again.raw);
        assert_near(contacts(&again)[0].1, 600, "retransmission changes nothing");
        let lower = p
            .conn
            .exchange(&p.request_with_cseq(5, &[contact, "Expires: 900"]));
        assert_refused(&lower, 400, "CSeq");
        assert_near(p.bindings()[0].1, 600, "refused request changed nothing");
    }
}

#[test]
fn max_contacts_reject() {
    let k = Kamrs::start("max_contacts = 2");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:a@192.0.2.1>;expires=100, <sip:b@192.0.2.2>;expires=200"]);
        let r = p.register(&["Contact: <sip:c@192.0.2.3>"]);
        assert_refused(&r, 503, "too many");
        let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
        assert!(
            (98..=100).contains(&retry),
            "retry when the first expires: {retry}"
        );
        assert_eq!(p.bindings().len(), 2);
        // A refresh of a registered contact still works.
        assert_eq!(p.register(&["Contact: <sip:a@192.0.2.1>"]).status, 200);
    }
}

#[test]
fn max_contacts_evict_oldest() {
    let k = Kamrs::start("max_contacts = 2\nmax_contacts_policy = \"evict-oldest\"");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:a@192.0.2.1>"]);
        // Last-modified has one-second resolution: make `a` strictly older.
        std::thread::sleep(Duration::from_millis(1100));
        p.register(&["Contact: <sip:b@192.0.2.2>"]);
        let r = p.register(&["Contact: <sip:c@192.0.2.3>"]);
        assert_eq!(r.status, 200, "{}", r.raw);
        let mut got = uris(&contacts(&r))
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        got.sort();
        assert_eq!(got, ["sip:b@192.0.2.2", "sip:c@192.0.2.3"], "{}", r.raw);
    }
}

#[test]
fn malformed_registers_get_400_naming_the_fault() {
    let k = Kamrs::start("contact_max_size = 64");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:keep@192.0.2.1>"]);
        let long = format!("Contact: <sip:{}@192.0.2.1>", "x".repeat(80));
        for (contact, reason) in [
            (long.as_str(), "too long"),
            ("Contact: <sip:a@192.0.2.1>;q=1.5", "q"),
            ("Contact: <sip:a@192.0.2.1>;expires=soon", "expires"),
            ("Contact: <mailto:a@b>", "contact"),
            ("Contact: <sip:a@192.0.2.1", "contact"),
        ] {
            let r = p.register(&[contact]);
            assert_eq!(r.status, 400, "{contact}: {}", r.raw);
            assert!(
                r.reason.to_lowercase().contains(reason),
                "{contact}: reason {:?}",
                r.reason
            );
        }
        assert_eq!(
            uris(&p.bindings()),
            ["sip:keep@192.0.2.1"],
            "nothing changed"
        );
        let bad_cseq = p
            .request(&["Contact: <sip:a@192.0.2.1>"])
            .replace(" REGISTER\r\nUser", " INVITE\r\nUser");
        let r = p.conn.exchange(&bad_cseq);
        assert_eq!(r.status, 400, "{}", r.raw);
        assert!(r.reason.contains("CSeq"), "{}", r.reason);
    }
}

/// A NUL or a CR inside a header line (header-bound values must
/// not carry line breaks or NULs into storage, replies or an admin's
/// terminal) is refused with a reason, over UDP and TCP, and changes
/// nothing; the reply does not carry what followed the bare CR.
#[test]
fn nul_and_bare_cr_in_headers_get_400() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:keep@192.0.2.1>"]);
        for bad in [
            "User-Agent: evil\0phone",
            "User-Agent: evil\rX-Forged: yes",
            "X-Anything: a\0b",
        ] {
            let msg = p.request(&["Contact: <sip:intruder@192.0.2.9>", bad]);
            let r = p.conn.exchange(&msg);
            assert_eq!(r.status, 400, "{bad:?}: {}", r.raw);
            assert_eq!(r.reason, "NUL Or Bare CR In Header", "{bad:?}");
            assert!(
                !r.raw.contains("X-Forged") && !r.raw.contains('\0'),
                "{}",
                r.raw
            );
        }
        assert_eq!(
            uris(&p.bindings()),
            ["sip:keep@192.0.2.1"],
            "nothing changed"
        );
    }
}

#[test]
fn unsupported_require_gets_420() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let r = p.register(&["Require: gruu, path", "Contact: <sip:a@192.0.2.1>"]);
        assert_refused(&r, 420, "extension");
        assert_eq!(
            r.header("Unsupported"),
            Some("gruu, path"),
            "use_path is off"
        );
        assert!(p.bindings().is_empty());
    }
}

#[test]
fn path_is_stored_and_echoed_when_supported() {
    let k = Kamrs::start("use_path = true");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let r = p.register(&[
            "Require: path",
            "Supported: path",
            "Path: <sip:edge1.example.com;lr>",
            "Contact: <sip:a@192.0.2.1>",
        ]);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(
            r.header("Path"),
            Some("<sip:edge1.example.com;lr>"),
            "{}",
            r.raw
        );
        let r = p.register(&[
            "Path: <sip:edge1.example.com;lr>",
            "Contact: <sip:a@192.0.2.1>",
        ]);
        assert_eq!(r.header("Path"), None, "not echoed without Supported: path");
    }
}

#[test]
fn instance_and_reg_id_replace_the_flow() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\"";
        let r = p.register(&[&format!("Contact: <sip:a@10.0.0.1:5060>;{inst};reg-id=1")]);
        assert!(r.values("Contact")[0].contains("reg-id=1"), "{}", r.raw);
        // The phone moved (new IP, new Call-ID): same instance and reg-id.
        p.call_id = format!("{}@moved", unique());
        let r = p.register(&[&format!("Contact: <sip:a@10.0.0.2:5062>;{inst};reg-id=1")]);
        assert_eq!(uris(&contacts(&r)), ["sip:a@10.0.0.2:5062"], "{}", r.raw);
    }
}

#[test]
fn contacts_compare_as_uris_not_bytes() {
    let k = Kamrs::start("");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        p.register(&["Contact: <sip:alice@PHONE.example.com;transport=udp>"]);
        let r = p.register(&["Contact: <sip:%61lice@phone.EXAMPLE.com;Transport=UDP>;expires=500"]);
        let c = contacts(&r);
        assert_eq!(c.len(), 1, "one binding: {}", r.raw);
        assert_near(c[0].1, 500, "the refresh applied");
    }
}

#[test]
fn bindings_expire() {
    let k = Kamrs::start("min_expires = 1");
    for conn in Conn::both(&k) {
        let mut p = Phone::new(conn);
        let r = p.register(&[
            "Contact: <sip:short@192.0.2.1>;expires=1, <sip:long@192.0.2.2>;expires=600",
        ]);
        assert_eq!(contacts(&r).len(), 2, "{}", r.raw);
        // Bounded wait for the 1-second binding to go.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = p.bindings();
            if uris(&left) == ["sip:long@192.0.2.2"] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "binding did not expire: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
