//! What an operator reads in kamrs's log: one line per registration
//! outcome (new, refreshed, removed, refused), one per binding expired,
//! and JSON lines for log shippers. kamrs runs here at `info`
//! (`RUST_LOG`), as a production daemon would; every wait is a bounded
//! poll on the log file.

use std::time::{Duration, Instant};

use kamrs_tests::ctl::register;
use kamrs_tests::{udp_client, udp_exchange, unique, Kamrs};

/// kamrs at `info` with `extra` config, listening on loopback.
fn at_info(extra: &str, args: &[&str]) -> Kamrs {
    let config = format!("listen = [\"udp:127.0.0.1:0\"]\nmin_expires = 1\n{extra}\n");
    Kamrs::start_custom(&config, args, true, |c| {
        c.env("RUST_LOG", "info");
    })
}

/// The log lines containing every one of `parts`, waiting up to 5 s for
/// at least `n` of them (the writer thread writes them a moment later).
fn lines_with(k: &Kamrs, parts: &[&str], n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<String> = k
            .stderr()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {n} log line(s) with {parts:?} in:\n{}",
            k.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A phone with one Contact and one Call-ID registering `aor` (a unique
/// name starting with `prefix`).
struct Phone {
    sock: std::net::UdpSocket,
    port: u16,
    aor: String,
    contact: String,
    call_id: String,
}

impl Phone {
    fn new(k: &Kamrs, prefix: &str) -> Phone {
        let sock = udp_client(k.udp());
        let port = sock.local_addr().unwrap().port();
        let aor = format!("{prefix}{}", unique().replace(['x', '@'], ""));
        Phone {
            contact: format!("sip:{aor}@127.0.0.1:{port}"),
            call_id: unique(),
            sock,
            port,
            aor,
        }
    }

    fn send(&self, cseq: u32, expires: u32) -> kamrs_tests::Response {
        let msg = register(
            &self.aor,
            Some(&self.contact),
            Some(expires),
            &self.call_id,
            cseq,
            self.port,
            "logs",
        );
        udp_exchange(&self.sock, msg)
    }
}

#[test]
fn each_registration_outcome_is_one_line() {
    let k = at_info("", &[]);
    let phone = Phone::new(&k, "logs");
    let (aor, contact, port) = (&phone.aor, &phone.contact, phone.port);
    let send = |cseq, expires| phone.send(cseq, expires);
    assert_eq!(send(1, 600).status, 200);
    let registered = lines_with(&k, &["INFO", " registered ", aor], 1);
    let want = format!(
        "aor=\"{aor}\" contact=\"{contact}\" source=127.0.0.1:{port} transport=\"udp\" expires=600 status=200"
    );
    assert!(registered[0].contains(&want), "{}", registered[0]);

    // A refresh is not an info line by default; a refusal and a removal are.
    assert_eq!(send(2, 600).status, 200);
    // An old CSeq of the same Call-ID.
    let stale = send(1, 0);
    assert_eq!(stale.status, 400, "{}", stale.raw);
    let refused = lines_with(&k, &["REGISTER refused", aor], 1);
    assert!(refused[0].contains("status=400"), "{}", refused[0]);
    assert!(
        refused[0].contains("reason=\"Invalid CSeq Number\""),
        "{}",
        refused[0]
    );
    assert_eq!(send(3, 0).status, 200);
    let unregistered = lines_with(&k, &[" unregistered ", aor], 1);
    assert!(
        unregistered[0].contains("expires=0 status=200"),
        "{}",
        unregistered[0]
    );
    assert!(
        !k.stderr().contains(" refreshed "),
        "a refresh logged at info:\n{}",
        k.stderr()
    );
}

#[test]
fn refreshes_at_info_when_asked_and_expiry_has_its_cause() {
    let k = at_info("[log]\nrefreshes = \"info\"", &[]);
    let phone = Phone::new(&k, "exp");
    let (aor, contact) = (&phone.aor, &phone.contact);
    for (cseq, expires) in [(1, 600), (2, 1)] {
        let r = phone.send(cseq, expires);
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    let refreshed = lines_with(&k, &[" refreshed ", aor], 1);
    assert!(
        refreshed[0].contains("expires=1 status=200"),
        "{}",
        refreshed[0]
    );
    let expired = lines_with(&k, &["binding removed", aor], 1);
    assert!(expired[0].contains("cause=\"expired\""), "{}", expired[0]);
    assert!(
        expired[0].contains(&format!("contact=\"{contact}\"")),
        "{}",
        expired[0]
    );
}

#[test]
fn json_lines_carry_the_same_fields() {
    let k = at_info("[log]\nformat = \"json\"", &[]);
    let sock = udp_client(k.udp());
    let port = sock.local_addr().unwrap().port();
    let aor = format!("json{}", unique().replace(['x', '@'], ""));
    let contact = format!("sip:{aor}@127.0.0.1:{port};x=a%22b");
    let r = udp_exchange(
        &sock,
        register(&aor, Some(&contact), Some(600), &unique(), 1, port, "logs"),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let line = lines_with(&k, &["\"registered\"", &aor], 1).remove(0);
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{v}");
    assert_eq!(v["message"], "registered", "{v}");
    assert_eq!(v["aor"], aor.as_str(), "{v}");
    assert_eq!(v["contact"], contact.as_str(), "{v}");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["expires"], 600, "{v}");
    // Every line kamrs wrote is one JSON object.
    for l in k.stderr().lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}
