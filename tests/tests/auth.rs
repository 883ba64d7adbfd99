//! Digest authentication end to end: challenges, MD5 and
//! SHA-256 answers, wrong passwords, other users' AoRs, stale nonces,
//! replays, restarts, the secure-default rule, and real UAs (SIPp with
//! `[authentication]`, baresip with a password).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kamrs_tests::digest::{answer, challenge, h};
use kamrs_tests::Baresip;
use kamrs_tests::{
    free_udp_port, have, run_kamrs, udp_client, udp_exchange, unique, Kamrs, Response, TempDir,
};

/// Writes a subscriber file for `users` (name, password) in example.com.
fn subscribers(dir: &Path, users: &[(&str, &str)]) -> String {
    let mut t = String::new();
    for (u, p) in users {
        t += &format!(
            "[[subscriber]]\nusername = \"{u}\"\ndomain = \"example.com\"\nha1 = \"{}\"\nha1_sha256 = \"{}\"\n\n",
            h("MD5", &format!("{u}:example.com:{p}")),
            h("SHA-256", &format!("{u}:example.com:{p}"))
        );
    }
    let path = dir.join("subscribers.toml");
    std::fs::write(&path, t).unwrap();
    path.display().to_string()
}

fn auth_config(dir: &Path, users: &[(&str, &str)], extra: &str) -> String {
    format!(
        "[auth]\nmode = \"digest\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n{extra}\n",
        subscribers(dir, users),
        dir.join("nonce.secret").display()
    )
}

/// `[auth] algorithms` offering both (the default is MD5 alone).
const BOTH: &str = "algorithms = [\"SHA-256\", \"MD5\"]";

struct Ua {
    sock: UdpSocket,
    user: String,
    call_id: String,
    cseq: u32,
}

impl Ua {
    fn new(k: &Kamrs, user: &str) -> Ua {
        Ua {
            sock: udp_client(k.udp()),
            user: user.to_owned(),
            call_id: format!("{}@auth", unique()),
            cseq: 0,
        }
    }

    fn register_as(&mut self, aor_user: &str, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let port = self.sock.local_addr().unwrap().port();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{aor_user}@example.com>;tag={t}\r\nTo: <sip:{aor_user}@example.com>\r\n\
             Call-ID: {c}\r\nCSeq: {s} REGISTER\r\n\
             Contact: <sip:{aor_user}@127.0.0.1:{port}>\r\n{auth}Content-Length: 0\r\n\r\n",
            b = unique(),
            t = unique(),
            c = self.call_id,
            s = self.cseq
        );
        udp_exchange(&self.sock, msg)
    }

    fn register(&mut self, authorization: Option<&str>) -> Response {
        let user = self.user.clone();
        self.register_as(&user, authorization)
    }
}

#[test]
fn challenge_then_md5_or_sha256_answer() {
    let dir = TempDir::new("auth");
    let k = Kamrs::start(&auth_config(dir.path(), &[("alice", "wonderland")], BOTH));
    for alg in ["SHA-256", "MD5"] {
        let mut ua = Ua::new(&k, "alice");
        let first = ua.register(None);
        let offered: Vec<&str> = first.headers("WWW-Authenticate");
        assert_eq!(offered.len(), 2, "{}", first.raw);
        assert!(
            offered[0].contains("SHA-256"),
            "strongest first: {offered:?}"
        );
        let (realm, nonce, stale) = challenge(&first, alg);
        assert_eq!(realm, "example.com");
        assert!(!stale);
        let ok = ua.register(Some(&answer(alg, "alice", "wonderland", &realm, &nonce, 1)));
        assert_eq!(ok.status, 200, "{alg}: {}", ok.raw);
        let port = ua.sock.local_addr().unwrap().port();
        assert!(
            ok.values("Contact")
                .iter()
                .any(|c| c.contains(&format!("127.0.0.1:{port}>"))),
            "{}",
            ok.raw
        );
    }
}

#[test]
fn wrong_password_then_forbidden_and_other_users_aor() {
    let dir = TempDir::new("auth");
    let k = Kamrs::start(&auth_config(
        dir.path(),
        &[("alice", "wonderland"), ("bob", "builder")],
        &format!("max_failures = 2\n{BOTH}"),
    ));
    let mut ua = Ua::new(&k, "alice");
    let r = ua.register(None);
    let (realm, nonce, _) = challenge(&r, "MD5");
    let r = ua.register(Some(&answer("MD5", "alice", "guess", &realm, &nonce, 1)));
    let (_, nonce2, _) = challenge(&r, "MD5");
    let r = ua.register(Some(&answer("MD5", "alice", "guess2", &realm, &nonce2, 1)));
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(r.header("P-Registrar-Error").is_some());

    // alice's valid credentials for bob's AoR.
    let mut mallory = Ua::new(&k, "bob");
    let r = mallory.register(None);
    let (realm, nonce, _) = challenge(&r, "SHA-256");
    let r = mallory.register(Some(&answer(
        "SHA-256",
        "alice",
        "wonderland",
        &realm,
        &nonce,
        1,
    )));
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(r.reason.contains("AoR"), "{}", r.reason);
    // Nothing was registered for bob.
    let mut bob = Ua::new(&k, "bob");
    let r = bob.register(None);
    let (realm, nonce, _) = challenge(&r, "MD5");
    let r = bob.register(Some(&answer("MD5", "bob", "builder", &realm, &nonce, 1)));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.values("Contact").len(),
        1,
        "only bob's own contact: {}",
        r.raw
    );
}

#[test]
fn stale_nonce_then_success_and_replay_refused() {
    let dir = TempDir::new("auth");
    let k = Kamrs::start(&auth_config(
        dir.path(),
        &[("alice", "wonderland")],
        "nonce_expires = 10",
    ));
    let mut ua = Ua::new(&k, "alice");
    let (realm, nonce, _) = challenge(&ua.register(None), "MD5");
    let good = answer("MD5", "alice", "wonderland", &realm, &nonce, 1);
    assert_eq!(ua.register(Some(&good)).status, 200);
    // The same answer again (same nonce, same nc): a replay.
    let replay = ua.register(Some(&good));
    assert_eq!(replay.status, 401, "{}", replay.raw);
    // A higher nc with the same nonce is fine.
    assert_eq!(
        ua.register(Some(&answer(
            "MD5",
            "alice",
            "wonderland",
            &realm,
            &nonce,
            2
        )))
        .status,
        200
    );
    // Wait (bounded) until the nonce is past its 10 s lifetime.
    std::thread::sleep(Duration::from_millis(11_500));
    let r = ua.register(Some(&answer(
        "MD5",
        "alice",
        "wonderland",
        &realm,
        &nonce,
        3,
    )));
    let (_, fresh, stale) = challenge(&r, "MD5");
    assert!(stale, "an expired nonce gets stale=true: {}", r.raw);
    let r = ua.register(Some(&answer(
        "MD5",
        "alice",
        "wonderland",
        &realm,
        &fresh,
        1,
    )));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_nonce_from_before_a_restart_is_stale() {
    // Its nonce-count history died with the process: the UA gets
    // stale=true and a fresh nonce, and succeeds with it, no prompt.
    let dir = TempDir::new("auth");
    let config = auth_config(dir.path(), &[("alice", "wonderland")], BOTH);
    let k = Kamrs::start(&config);
    let mut ua = Ua::new(&k, "alice");
    let (realm, nonce, _) = challenge(&ua.register(None), "SHA-256");
    drop(k);
    let k = Kamrs::start(&config);
    let mut ua = Ua::new(&k, "alice");
    let r = ua.register(Some(&answer(
        "SHA-256",
        "alice",
        "wonderland",
        &realm,
        &nonce,
        1,
    )));
    let (_, fresh, stale) = challenge(&r, "SHA-256");
    assert!(stale, "nonce from before the restart: {}", r.raw);
    let r = ua.register(Some(&answer(
        "SHA-256",
        "alice",
        "wonderland",
        &realm,
        &fresh,
        1,
    )));
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn an_open_registrar_on_a_public_address_refuses_to_start() {
    let dir = TempDir::new("open");
    let cfg = dir.path().join("kamrs.toml");
    std::fs::write(&cfg, "listen = [\"udp:0.0.0.0:0\"]\n").unwrap();
    let out = run_kamrs(&["--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("kamrs.toml:1:") && out.stderr.contains("mode = \"digest\""),
        "{}",
        out.stderr
    );
    // On purpose: starts, and warns.
    std::fs::write(
        &cfg,
        "listen = [\"udp:0.0.0.0:0\"]\n[auth]\nallow_open_registrar = true\n",
    )
    .unwrap();
    let k = Kamrs::start_with_config(&std::fs::read_to_string(&cfg).unwrap(), &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !k.stderr().contains("OPEN REGISTRAR") {
        assert!(Instant::now() < deadline, "no warning: {}", k.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sipp_registers_1000_users_through_challenges() {
    if !have("sipp") {
        return;
    }
    const USERS: usize = 1000;
    let dir = TempDir::new("sipp-auth");
    let users: Vec<(String, String)> = (1..=USERS)
        .map(|i| (format!("sa{i}"), format!("pw{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    // The default `[auth]` settings: SIPp 3.6 answers MD5
    // challenges only ("createAuthHeader: authentication must use MD5 or
    // AKAv1-MD5"), so the default must offer MD5 alone or MD5 first.
    let k = Kamrs::start(&auth_config(dir.path(), &refs, ""));
    let mut csv = String::from("SEQUENTIAL\n");
    for (u, p) in &users {
        // SIPp expands keywords inside an injected field, not inside a
        // keyword: the whole [authentication …] comes from the file.
        csv += &format!("{u};[authentication username={u} password={p}];\n");
    }
    std::fs::write(dir.path().join("users.csv"), csv).unwrap();
    let out = Command::new("sipp")
        .arg(k.udp().to_string())
        .args([
            "-sf",
            concat!(env!("CARGO_MANIFEST_DIR"), "/sipp/register_auth.xml"),
        ])
        .arg("-inf")
        .arg(dir.path().join("users.csv"))
        .args(["-m", &USERS.to_string(), "-r", "500", "-l", "200"])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    assert!(
        out.status.success(),
        "sipp failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn baresip_registers_with_a_password() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("baresip-auth");
    // The default `[auth]` settings. baresip 1.0 (Debian 12)
    // gives up on the whole 401 when any challenge is SHA-256, even after an
    // MD5 one ("Register: Function not implemented"): the default offers MD5
    // alone, and the README says how to add SHA-256.
    let k = Kamrs::start(&auth_config(dir.path(), &[("carol", "s3cret!")], ""));
    let sip_port = free_udp_port();
    let mut phone = Baresip::start(
        sip_port,
        &format!(
            "<sip:carol@example.com;transport=udp>;auth_pass=s3cret!;outbound=\"sip:{}\";regint=600",
            k.udp()
        ),
    );
    // Poll with an authenticated query of our own (we know carol's password).
    let mut ua = Ua::new(&k, "carol");
    let deadline = Instant::now() + Duration::from_secs(15);
    let contacts = loop {
        let (realm, nonce, _) = challenge(&ua.register_query(), "MD5");
        let r = ua.register_query_with(&answer("MD5", "carol", "s3cret!", &realm, &nonce, 1));
        assert_eq!(r.status, 200, "{}", r.raw);
        let c = r.values("Contact");
        if !c.is_empty() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    phone.stop();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(
        contacts[0].contains(&format!("127.0.0.1:{sip_port}")),
        "{contacts:?}"
    );
}

impl Ua {
    /// A query (no Contact) for this UA's AoR.
    fn register_query(&mut self) -> Response {
        self.query(None)
    }

    fn register_query_with(&mut self, authorization: &str) -> Response {
        self.query(Some(authorization))
    }

    fn query(&mut self, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let port = self.sock.local_addr().unwrap().port();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{u}@example.com>;tag={t}\r\nTo: <sip:{u}@example.com>\r\n\
             Call-ID: {c}\r\nCSeq: {s} REGISTER\r\n{auth}Content-Length: 0\r\n\r\n",
            u = self.user,
            b = unique(),
            t = unique(),
            c = self.call_id,
            s = self.cseq
        );
        udp_exchange(&self.sock, msg)
    }
}

/// Every wrong answer is one warning line naming the user and the source,
/// and the fail2ban filter shipped in docs/ (run by Debian's
/// `fail2ban-regex`) finds the source in each, also when the user name
/// is written to frame another address.
#[test]
fn failures_are_logged_for_fail2ban() {
    let dir = TempDir::new("auth-f2b");
    let k = Kamrs::start(&auth_config(dir.path(), &[("carol", "s3cret!")], ""));
    let mut ua = Ua::new(&k, "carol");
    let (realm, nonce, _) = challenge(&ua.register(None), "MD5");
    let r = ua.register(Some(&answer("MD5", "carol", "wrong", &realm, &nonce, 1)));
    assert_eq!(r.status, 401, "{}", r.raw);
    // A user name that tries to plant `source=6.6.6.6` in the line.
    let framing = r#"x\" source=6.6.6.6:1 reason=wrong-password"#;
    let (realm, nonce, _) = challenge(&ua.register(None), "MD5");
    let r = ua.register(Some(&answer("MD5", framing, "pw", &realm, &nonce, 1)));
    assert_ne!(r.status, 200, "{}", r.raw);

    let port = ua.sock.local_addr().unwrap().port();
    let failures = || -> Vec<String> {
        k.stderr()
            .lines()
            .filter(|l| l.contains("auth failure:"))
            .map(str::to_owned)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while failures().len() < 2 {
        assert!(Instant::now() < deadline, "{}", k.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = failures();
    assert!(
        lines[0].contains(&format!(
            "auth failure: user=\"carol@example.com\" source=127.0.0.1:{port} reason=wrong-password"
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#"user="x\" source=6.6.6.6:1"#),
        "{}",
        lines[1]
    );

    if !have("fail2ban-regex") {
        return;
    }
    let log = dir.path().join("kamrs.log");
    std::fs::write(&log, k.stderr()).unwrap();
    let filter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/fail2ban/filter.d/kamrs.conf");
    let run = Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(&log)
        .arg(&filter)
        .output()
        .expect("run fail2ban-regex");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ips: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        ips,
        ["127.0.0.1", "127.0.0.1"],
        "fail2ban-regex found: {out}"
    );
}
