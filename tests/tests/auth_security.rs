//! Digest authentication under attack (README, Security: replay, brute
//! force, cross-domain AoRs, `nc=00000000`), end to end over real sockets:
//!
//! - a captured `Authorization` replayed with an attacker's Contact after a
//!   restart, or on a second node sharing `secret_file`, is not accepted;
//! - wrong guesses from one source lock that user+source out (even the
//!   right password is refused) while another source and another user go
//!   on, until `lockout_time` is over;
//! - several subscriber domains without `use_domain = true` are refused at
//!   start, at `subscriber.add` and at reload;
//! - `nc=00000000` is refused.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{kamrsctl_with, HttpConn};
use kamrs_tests::digest::{answer, challenge, h};
use kamrs_tests::{run_kamrs, udp_client_from, udp_exchange, unique, Kamrs, Response, TempDir};
use serde_json::{json, Value};

/// Writes a subscriber file for `users` (user, domain, password); the
/// realm of each is its domain (kamrs's default).
fn subscribers(dir: &Path, users: &[(&str, &str, &str)]) -> String {
    let mut t = String::new();
    for (u, d, p) in users {
        t += &format!(
            "[[subscriber]]\nusername = \"{u}\"\ndomain = \"{d}\"\nha1 = \"{}\"\nha1_sha256 = \"{}\"\n\n",
            h("MD5", &format!("{u}:{d}:{p}")),
            h("SHA-256", &format!("{u}:{d}:{p}"))
        );
    }
    let path = dir.join("subscribers.toml");
    std::fs::write(&path, t).unwrap();
    path.display().to_string()
}

/// Top-level keys `top`, then an `[auth]` table (digest, the files in
/// `dir`) with `auth_keys`. `[pike] trusted` is empty: sources in it
/// (loopback by default) meet only the user lock-out scope, and these
/// tests' sources are all loopback.
fn config(dir: &Path, users: &[(&str, &str, &str)], top: &str, auth_keys: &str) -> String {
    config_trusting(dir, users, top, auth_keys, "[]")
}

/// [`config`] with `[pike] trusted = {trusted}`.
fn config_trusting(
    dir: &Path,
    users: &[(&str, &str, &str)],
    top: &str,
    auth_keys: &str,
    trusted: &str,
) -> String {
    format!(
        "{top}\n[pike]\ntrusted = {trusted}\n[auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n{auth_keys}\n",
        subscribers(dir, users),
        dir.join("nonce.secret").display()
    )
}

/// A UA for `user@domain` on its own UDP socket.
struct Ua {
    sock: UdpSocket,
    user: String,
    domain: String,
    call_id: String,
    cseq: u32,
}

impl Ua {
    fn new(server: SocketAddr, user: &str, domain: &str) -> Ua {
        Ua::from("127.0.0.1".parse().unwrap(), server, user, domain)
    }

    /// A UA whose socket is bound to `ip` (a second source).
    fn from(ip: IpAddr, server: SocketAddr, user: &str, domain: &str) -> Ua {
        Ua {
            sock: udp_client_from(ip, server),
            user: user.to_owned(),
            domain: domain.to_owned(),
            call_id: format!("{}@auth-security", unique()),
            cseq: 0,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// A REGISTER binding `<sip:user@127.0.0.1:contact_port>`.
    fn register(&mut self, contact_port: u16, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let me = self.addr();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:{d} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{u}@{d}>;tag={t}\r\nTo: <sip:{u}@{d}>\r\n\
             Call-ID: {c}\r\nCSeq: {s} REGISTER\r\n\
             Contact: <sip:{u}@127.0.0.1:{contact_port}>\r\n{auth}Content-Length: 0\r\n\r\n",
            u = self.user,
            d = self.domain,
            b = unique(),
            t = unique(),
            c = self.call_id,
            s = self.cseq
        );
        udp_exchange(&self.sock, msg)
    }

    /// Its own Contact (its socket's port).
    fn register_self(&mut self, authorization: Option<&str>) -> Response {
        let port = self.addr().port();
        self.register(port, authorization)
    }

    /// 401, then the answer with `password` to its MD5 challenge: the
    /// final response and the Authorization sent.
    fn login(&mut self, password: &str) -> (Response, String) {
        let first = self.register_self(None);
        let (realm, nonce, _) = challenge(&first, "MD5");
        let a = answer("MD5", &self.user, password, &realm, &nonce, 1);
        (self.register_self(Some(&a)), a)
    }
}

/// `ul.lookup location AOR` over the daemon's control socket, as text.
fn lookup(k: &Kamrs, aor: &str) -> String {
    let mut conn = HttpConn::unix(k.ctl.as_ref().expect("harness control socket"));
    conn.call("ul.lookup", json!(["location", aor])).to_string()
}

fn rpc(k: &Kamrs, method: &str, params: Value) -> Value {
    let mut conn = HttpConn::unix(k.ctl.as_ref().expect("harness control socket"));
    conn.call(method, params)
}

/// The attacker's Contact port: nothing listens there, it only has to be
/// told apart from the victim's.
const ATTACKER_PORT: u16 = 6666;

#[test]
fn a_captured_answer_replayed_after_a_restart_is_stale() {
    let dir = TempDir::new("auth-sec");
    let cfg = config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "",
    );
    let k = Kamrs::start(&cfg);
    let mut alice = Ua::new(k.udp(), "alice", "example.com");
    let (ok, captured) = alice.login("wonderland");
    assert_eq!(ok.status, 200, "{}", ok.raw);
    drop(k);

    // Same secret_file, same subscribers: a restart.
    let k = Kamrs::start(&cfg);
    let mut mallory = Ua::new(k.udp(), "alice", "example.com");
    let r = mallory.register(ATTACKER_PORT, Some(&captured));
    assert_ne!(r.status, 200, "replay after a restart accepted: {}", r.raw);
    let (_, fresh, stale) = challenge(&r, "MD5");
    assert!(
        stale,
        "a genuine nonce of an earlier boot is stale: {}",
        r.raw
    );
    let found = lookup(&k, "alice");
    assert!(
        !found.contains(&format!(":{ATTACKER_PORT}")),
        "the attacker's contact was bound: {found}"
    );
    // The real UA follows stale=true with the fresh nonce, without a
    // password prompt: one round trip.
    let r = alice_on(&k).register_self(Some(&answer(
        "MD5",
        "alice",
        "wonderland",
        "example.com",
        &fresh,
        1,
    )));
    assert_eq!(r.status, 200, "{}", r.raw);
}

fn alice_on(k: &Kamrs) -> Ua {
    Ua::new(k.udp(), "alice", "example.com")
}

#[test]
fn a_captured_answer_replayed_on_another_node_is_stale() {
    let dir = TempDir::new("auth-sec");
    // Two nodes sharing secret_file and subscribers (and nothing else).
    let cfg = config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "",
    );
    let a = Kamrs::start(&cfg);
    let b = Kamrs::start(&cfg);
    let mut alice = Ua::new(a.udp(), "alice", "example.com");
    let (ok, captured) = alice.login("wonderland");
    assert_eq!(ok.status, 200, "{}", ok.raw);

    let mut mallory = Ua::new(b.udp(), "alice", "example.com");
    let r = mallory.register(ATTACKER_PORT, Some(&captured));
    assert_ne!(r.status, 200, "replay on another node accepted: {}", r.raw);
    let (_, _, stale) = challenge(&r, "MD5");
    assert!(stale, "{}", r.raw);
    let found = lookup(&b, "alice");
    assert!(
        !found.contains(&format!(":{ATTACKER_PORT}")),
        "the attacker's contact was bound on B: {found}"
    );
    // And on A itself the same answer is a replay, as before.
    let r = mallory_on(&a).register(ATTACKER_PORT, Some(&captured));
    assert_eq!(r.status, 401, "{}", r.raw);
    assert!(!lookup(&a, "alice").contains(&format!(":{ATTACKER_PORT}")));
}

fn mallory_on(k: &Kamrs) -> Ua {
    Ua::new(k.udp(), "alice", "example.com")
}

#[test]
fn wrong_guesses_lock_the_user_and_source_out_then_it_ends() {
    const GUESSES: usize = 5;
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[
            ("alice", "example.com", "wonderland"),
            ("bob", "example.com", "builder"),
        ],
        "",
        &format!("lockout_failures = {GUESSES}\nlockout_time = 2\n"),
    ));
    let mut guesser = Ua::new(k.udp(), "alice", "example.com");
    for i in 1..=GUESSES {
        // No Authorization: a fresh nonce (and a fresh per-nonce count)
        // every time, which is what made guessing free.
        let (r, _) = guesser.login(&format!("guess{i}"));
        let want = if i < GUESSES { 401 } else { 403 };
        assert_eq!(r.status, want, "guess {i}: {}", r.raw);
    }
    let locked_at = Instant::now();
    // The right password from the same source is refused too.
    let (r, _) = guesser.login("wonderland");
    assert_eq!(
        r.status, 403,
        "right password during the lock-out: {}",
        r.raw
    );
    assert!(r.reason.contains("Locked Out"), "{}", r.reason);
    // Another source for alice, and another user from this source: served.
    let mut other_source = Ua::from(
        "127.0.0.2".parse().unwrap(),
        k.udp(),
        "alice",
        "example.com",
    );
    let (r, _) = other_source.login("wonderland");
    assert_eq!(r.status, 200, "alice from 127.0.0.2: {}", r.raw);
    let mut bob = Ua::new(k.udp(), "bob", "example.com");
    let (r, _) = bob.login("builder");
    assert_eq!(r.status, 200, "bob from the locked source: {}", r.raw);

    // One fixed-format line per failure, and one for the lock-out.
    let port = guesser.addr().port();
    let line = format!(
        "auth failure: user=\"alice@example.com\" source=127.0.0.1:{port} reason=wrong-password"
    );
    let log = k.log_when(|l| l.matches(&line).count() >= GUESSES && l.contains("auth lockout"));
    assert_eq!(log.matches(&line).count(), GUESSES, "{log}");
    assert!(
        log.contains(&format!(
            "auth lockout: scope=user+source user=\"alice@example.com\" source=127.0.0.1:{port} seconds=2"
        )),
        "{log}"
    );
    assert_eq!(k.stat("auth:lockouts"), 1);
    assert_eq!(k.stat("auth:locked_out"), 1);
    assert!(k.stat("auth:lockout_tracked") >= 1);

    // Past lockout_time the right password works again (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, _) = guesser.login("wonderland");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 403, "{}", r.raw);
        assert!(Instant::now() < deadline, "still locked out after 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        locked_at.elapsed() >= Duration::from_millis(900),
        "the lock-out ended too early: {:?}",
        locked_at.elapsed()
    );
}

#[test]
fn a_phone_that_registered_before_keeps_registering_through_a_user_lockout() {
    // Many sources guessing one subscriber lock that subscriber out
    // (lockout_user_failures), but not from the addresses that proved its
    // password before: the attacker cannot lock the victim's phone out.
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "lockout_failures = 10\nlockout_user_failures = 4\nlockout_time = 60\n",
    ));
    let mut phone = Ua::from(
        "127.0.0.2".parse().unwrap(),
        k.udp(),
        "alice",
        "example.com",
    );
    assert_eq!(phone.login("wonderland").0.status, 200);
    let mut guesser = Ua::new(k.udp(), "alice", "example.com");
    for i in 1..=4 {
        let (r, _) = guesser.login(&format!("guess{i}"));
        assert_eq!(
            r.status,
            if i < 4 { 401 } else { 403 },
            "guess {i}: {}",
            r.raw
        );
    }
    assert!(
        k.log_when(|l| l.contains("auth lockout: scope=user user=\"alice@example.com\""))
            .contains("auth lockout: scope=user user=\"alice@example.com\""),
        "{}",
        k.stderr()
    );
    // A device that never registered is refused even with the password…
    let mut new_device = Ua::from(
        "127.0.0.3".parse().unwrap(),
        k.udp(),
        "alice",
        "example.com",
    );
    let (r, _) = new_device.login("wonderland");
    assert_eq!(r.status, 403, "{}", r.raw);
    // …the phone that did goes on.
    let (r, _) = phone.login("wonderland");
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_trusted_proxy_address_is_not_locked_out_by_guesses_through_it() {
    // 127.0.0.0/8 stands for the operator's edge proxy: everyone behind it
    // shares its address, so guesses through it lock neither the pair nor
    // the source; only the user scope counts there.
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config_trusting(
        dir.path(),
        &[
            ("alice", "example.com", "wonderland"),
            ("bob", "example.com", "builder"),
        ],
        "",
        "lockout_failures = 3
lockout_source_failures = 5
lockout_user_failures = 8
",
        "[\"127.0.0.0/8\"]",
    ));
    let mut mallory = Ua::new(k.udp(), "alice", "example.com");
    for i in 1..=6 {
        let (r, _) = mallory.login(&format!("guess{i}"));
        assert_eq!(r.status, 401, "guess {i}: {}", r.raw);
    }
    // alice's real phone behind the same proxy address, and bob.
    let (r, _) = mallory.login("wonderland");
    assert_eq!(r.status, 200, "alice through the proxy: {}", r.raw);
    let (r, _) = Ua::new(k.udp(), "bob", "example.com").login("builder");
    assert_eq!(r.status, 200, "bob through the proxy: {}", r.raw);
    assert_eq!(k.stat("auth:lockouts"), 0);
    // The user scope still counts: two more lock alice.
    mallory.login("guess7");
    let (r, _) = mallory.login("guess8");
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(
        k.log_when(|l| l.contains("auth lockout: scope=user user=\"alice@example.com\""))
            .contains("auth lockout: scope=user user=\"alice@example.com\""),
        "{}",
        k.stderr()
    );
}

#[test]
fn a_phone_registered_before_a_restart_keeps_registering_through_a_user_lockout() {
    // Trusted pairs live in memory; after a restart a phone is known only
    // by its binding, preloaded from the store. A source holding a live
    // binding of the AoR is spared the user scope.
    let dir = TempDir::new("auth-sec");
    let cfg = config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        &format!(
            "[store]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            dir.path().join("location.db").display()
        ),
        "lockout_failures = 10\nlockout_user_failures = 4\nlockout_time = 60\n",
    );
    let phone_ip: IpAddr = "127.0.0.5".parse().unwrap();
    let k = Kamrs::start(&cfg);
    let mut phone = Ua::from(phone_ip, k.udp(), "alice", "example.com");
    assert_eq!(phone.login("wonderland").0.status, 200);
    drop(k);

    let k = Kamrs::start(&cfg);
    assert!(
        lookup(&k, "alice").contains("127.0.0.5"),
        "{}",
        lookup(&k, "alice")
    );
    // Guesses from two other addresses lock alice's user scope.
    for i in 1..=4u8 {
        let ip: IpAddr = format!("127.0.0.{}", 1 + i % 2).parse().unwrap();
        let (r, _) = Ua::from(ip, k.udp(), "alice", "example.com").login(&format!("guess{i}"));
        assert_eq!(
            r.status,
            if i < 4 { 401 } else { 403 },
            "guess {i}: {}",
            r.raw
        );
    }
    // A fresh address is refused even with the password…
    let (r, _) = Ua::from(
        "127.0.0.6".parse().unwrap(),
        k.udp(),
        "alice",
        "example.com",
    )
    .login("wonderland");
    assert_eq!(r.status, 403, "{}", r.raw);
    // …the registered phone (new socket, same address) goes on, again and again.
    for _ in 0..2 {
        let mut phone = Ua::from(phone_ip, k.udp(), "alice", "example.com");
        let (r, _) = phone.login("wonderland");
        assert_eq!(r.status, 200, "{}", r.raw);
    }
}

#[test]
fn failure_lines_are_capped_and_long_user_names_cut() {
    // Loopback trusted (no pike limit) and lock-outs off: every answer is
    // checked and counted, but at most 100 lines a second are logged, and
    // a summary says how many were left out.
    const ANSWERS: u64 = 300;
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config_trusting(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "lockout_failures = 0\nlockout_source_failures = 0\nlockout_user_failures = 0\n",
        "[\"127.0.0.0/8\"]",
    ));
    // A 2000-byte user name in the answer (the To AoR is alice's).
    let mut guesser = Ua::new(k.udp(), "alice", "example.com");
    let (realm, nonce, _) = challenge(&guesser.register_self(None), "MD5");
    let long = answer("MD5", &"x".repeat(2000), "guess", &realm, &nonce, 1);
    let r = guesser.register_self(Some(&long));
    assert_eq!(r.status, 401, "{}", r.raw);
    for i in 1..ANSWERS {
        guesser.login(&format!("guess{i}"));
    }
    // A line in a later second brings the summary out.
    std::thread::sleep(Duration::from_millis(1100));
    guesser.login("one more");
    assert_eq!(k.stat("auth:wrong_credentials"), ANSWERS + 1);
    // Every failure is either a line or counted in a summary line; the
    // summary comes with the last failure's line.
    let counts = |log: &str| -> (u64, u64) {
        let lines = log.matches("auth failure: user=").count() as u64;
        let suppressed: u64 = log
            .lines()
            .filter_map(|l| {
                l.split(" auth failure lines suppressed in the last second")
                    .next()
                    .filter(|_| l.contains("suppressed in the last second"))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (lines, suppressed)
    };
    let log = k.log_when(|l| {
        let (lines, suppressed) = counts(l);
        lines + suppressed > ANSWERS
    });
    assert!(
        log.contains(&format!(
            "auth failure: user=\"{}…@example.com\" source=",
            "x".repeat(64)
        )),
        "{}",
        &log[..log.len().min(4000)]
    );
    assert!(!log.contains(&"x".repeat(65)), "the whole name was logged");
    let (lines, suppressed) = counts(&log);
    assert!(suppressed > 0, "nothing suppressed: {lines} lines");
    assert_eq!(
        lines + suppressed,
        ANSWERS + 1,
        "{lines} logged, {suppressed} suppressed"
    );
}

#[test]
fn answers_sent_from_another_address_cannot_lock_it_out() {
    // Over UDP a guesser can put a victim's address on its packets, but
    // the 401s go to the victim: a nonce fetched at the guesser's own
    // address and answered "from" the victim's is not checked, so the
    // victim's failure count does not move.
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "lockout_failures = 3\nlockout_source_failures = 3\n",
    ));
    let mut guesser = Ua::new(k.udp(), "alice", "example.com");
    let mut victim = Ua::from(
        "127.0.0.2".parse().unwrap(),
        k.udp(),
        "alice",
        "example.com",
    );
    for i in 0..5 {
        let (realm, nonce, _) = challenge(&guesser.register_self(None), "MD5");
        let wrong = answer("MD5", "alice", &format!("guess{i}"), &realm, &nonce, 1);
        let r = victim.register(ATTACKER_PORT, Some(&wrong));
        let (_, _, stale) = challenge(&r, "MD5");
        assert!(stale, "{}", r.raw);
    }
    assert_eq!(k.stat("auth:wrong_credentials"), 0);
    assert_eq!(k.stat("auth:lockouts"), 0);
    let (r, _) = victim.login("wonderland");
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn nc_zero_is_refused() {
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "",
    ));
    let mut alice = Ua::new(k.udp(), "alice", "example.com");
    let (realm, nonce, _) = challenge(&alice.register_self(None), "MD5");
    let zero = answer("MD5", "alice", "wonderland", &realm, &nonce, 0);
    assert!(zero.contains("nc=00000000"), "{zero}");
    let r = alice.register_self(Some(&zero));
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.reason.contains("nc"), "{}", r.reason);
    assert!(!lookup(&k, "alice").contains("127.0.0.1:"), "nothing bound");
}

#[test]
fn two_subscriber_domains_without_use_domain_refuse_to_start() {
    let dir = TempDir::new("auth-sec");
    let text = format!(
        "listen = [\"udp:127.0.0.1:0\"]\n{}",
        config(
            dir.path(),
            &[
                ("alice", "example.com", "wonderland"),
                ("alice", "evil.org", "her own"),
            ],
            "",
            "",
        )
    );
    let path = dir.path().join("kamrs.toml");
    std::fs::write(&path, text).unwrap();
    let ctl = format!("unix:{}", dir.path().join("ctl.sock").display());
    let out = run_kamrs(&["--config", path.to_str().unwrap(), "--ctl", &ctl]);
    assert!(!out.status.success(), "started: {}", out.stderr);
    assert!(
        out.stderr.contains("use_domain = true")
            && out.stderr.contains("evil.org, example.com")
            && out.stderr.contains("subscribers.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_second_domain_is_refused_at_add_and_at_reload() {
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[("alice", "example.com", "wonderland")],
        "",
        "",
    ));
    let ctl = format!("unix:{}", k.ctl.as_ref().unwrap().display());
    // subscriber.add over the raw API…
    let md5 = h("MD5", "alice:evil.org:her own");
    let v = rpc(&k, "subscriber.add", json!(["alice", "evil.org", md5, ""]));
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("use_domain = true"), "{v}");
    // …and through kamrsctl.
    let run = kamrsctl_with(
        &[
            "--ctl",
            &ctl,
            "subscriber",
            "add",
            "alice@evil.org",
            "--password-stdin",
        ],
        &[],
        None,
        Some(b"her own\n"),
    );
    assert_ne!(run.code(), Some(0), "{run:?}");
    assert!(run.stderr.contains("use_domain = true"), "{run:?}");
    let listed = rpc(&k, "subscriber.list", json!([])).to_string();
    assert!(!listed.contains("evil.org"), "{listed}");

    // A hand-edited file with two domains: refused by subscriber.reload
    // and by SIGHUP, the old list stays in force.
    subscribers(
        dir.path(),
        &[
            ("alice", "example.com", "wonderland"),
            ("alice", "evil.org", "her own"),
        ],
    );
    let v = rpc(&k, "subscriber.reload", json!([]));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("use_domain = true")),
        "{v}"
    );
    k.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !k.stderr().contains("SIGHUP: subscriber list not reloaded") {
        assert!(Instant::now() < deadline, "{}", k.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // alice@evil.org is refused outright (403, not a password prompt);
    // alice@example.com is served.
    let mut evil = Ua::new(k.udp(), "alice", "evil.org");
    let r = evil.register(ATTACKER_PORT, None);
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(r.reason.contains("use_domain"), "{}", r.reason);
    let (r, _) = alice_on(&k).login("wonderland");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(!lookup(&k, "alice").contains(&format!(":{ATTACKER_PORT}")));
}

#[test]
fn with_use_domain_two_domains_register_apart() {
    let dir = TempDir::new("auth-sec");
    let k = Kamrs::start(&config(
        dir.path(),
        &[
            ("alice", "example.com", "wonderland"),
            ("alice", "evil.org", "her own"),
        ],
        "use_domain = true",
        "",
    ));
    let mut good = Ua::new(k.udp(), "alice", "example.com");
    let mut evil = Ua::new(k.udp(), "alice", "evil.org");
    assert_eq!(good.login("wonderland").0.status, 200);
    assert_eq!(evil.login("her own").0.status, 200);
    let (gp, ep) = (good.addr().port(), evil.addr().port());
    let at_good = lookup(&k, "alice@example.com");
    let at_evil = lookup(&k, "alice@evil.org");
    assert!(
        at_good.contains(&format!(":{gp}")) && !at_good.contains(&format!(":{ep}")),
        "{at_good}"
    );
    assert!(
        at_evil.contains(&format!(":{ep}")) && !at_evil.contains(&format!(":{gp}")),
        "{at_evil}"
    );
}
