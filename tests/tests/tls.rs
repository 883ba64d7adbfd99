//! SIP over TLS end to end, the paths phones take: a CA made at test time,
//! real TLS clients (rustls here, baresip), the certificate reload.
//!
//! What is covered: registration life on one connection; baresip; start-up
//! refusals; min_version; keepalives over TLS; handle_lost_tcp and
//! close_expired_tcp on TLS; certificate reload by SIGHUP and tls.reload;
//! verify_client; the sips rules; tls.list and tls.info.
//!
//! Hostile clients (stalled and clear-text handshakes, the TCP limits,
//! over-size messages, peers that never read) are in tls_hostile.rs; the
//! helpers both use are in the harness (`kamrs_tests::tls_client`).

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{kamrsctl, CtlRun};
use kamrs_tests::pki::{local_port, peer_fingerprint, tls_connect, tls_exchange, Ca, TlsStream};
use kamrs_tests::tls_client::{
    assert_registers, cert_paths, exchange, good_client, lookup, refusal, register, start_tls,
    tls_register, wait_stat,
};
use kamrs_tests::{
    free_udp_port, have, read_response, run_kamrs, sip_request, tcp_connect, udp_client,
    udp_exchange, unique, via_transport, wait_hangup, Baresip, Kamrs, TempDir, REPLY_TIMEOUT,
};
use serde_json::Value;

/// kamrsctl ARGS against this daemon's control socket.
fn ctl_run(k: &Kamrs, args: &[&str]) -> CtlRun {
    let socket = format!("unix:{}", k.ctl.as_ref().expect("control socket").display());
    let mut all = vec!["--ctl", socket.as_str()];
    all.extend_from_slice(args);
    kamrsctl(&all, &[])
}

/// kamrsctl ARGS, which must succeed; its stdout.
fn ctl(k: &Kamrs, args: &[&str]) -> String {
    let run = ctl_run(k, args);
    assert_eq!(run.code(), Some(0), "kamrsctl {args:?}: {run:?}");
    run.stdout
}

/// `kamrsctl --json ARGS`, parsed.
fn ctl_json(k: &Kamrs, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ctl(k, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

// ------------------------------------------------------------ 1: a phone

#[test]
fn a_phone_registers_over_tls_and_its_binding_names_the_transport() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (kamrs, _) = start_tls(&ca, &dir, "", "");
    let mut stream = tls_connect(kamrs.tls(), ca.client_config(None)).expect("handshake");
    let register = via_transport(
        &sip_request(
            "REGISTER",
            "tls-1",
            1,
            5061,
            &[
                "Contact: <sip:bob@127.0.0.1:5061;transport=tls>",
                "Expires: 60",
            ],
        ),
        "TLS",
    );
    let r = tls_exchange(&mut stream, &register, REPLY_TIMEOUT).expect("a reply over TLS");
    assert_eq!(r.status, 200, "{}", r.raw);
    let text = ctl(&kamrs, &["--json", "ul.lookup", "bob"]);
    assert!(text.contains(";transport=tls"), "{text}");
    assert!(text.contains("tls:127.0.0.1:"), "{text}");
    drop(stream);
}

#[test]
fn register_refresh_and_unregister_over_one_tls_connection() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "");
    let mut s = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let port = local_port(&s);
    let call_id = unique();

    let req = tls_register(&s, "erin", &call_id, 1, 60);
    let r = exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    let contact = format!("sip:erin@127.0.0.1:{port};transport=tls");
    assert_eq!(r.values("Contact").len(), 1, "{}", r.raw);
    assert!(r.raw.contains(&contact), "{}", r.raw);
    let c = lookup(&k, "erin");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["Address"], contact.as_str(), "{c:?}");
    assert_eq!(
        c[0]["Received"],
        format!("sip:127.0.0.1:{port};transport=tls").as_str(),
        "{c:?}"
    );
    assert_eq!(c[0]["Socket"], format!("tls:{}", k.tls()).as_str(), "{c:?}");
    assert_eq!(c[0]["Call-ID"], call_id.as_str());
    assert_eq!(c[0]["CSeq"], 1);

    // The refresh: same Call-ID, CSeq + 1, a longer Expires; still the
    // one binding, updated.
    let req = tls_register(&s, "erin", &call_id, 2, 300);
    let r = exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    let c = lookup(&k, "erin");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["CSeq"], 2, "{c:?}");
    let expires = c[0]["Expires"].as_u64().expect("Expires");
    assert!((240..=300).contains(&expires), "{c:?}");
    assert_eq!(c[0]["Socket"], format!("tls:{}", k.tls()).as_str(), "{c:?}");

    // The unregister: Expires 0; the 200 lists nothing and the AoR is gone.
    let req = tls_register(&s, "erin", &call_id, 3, 0);
    let r = exchange(&mut s, &req);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.values("Contact").is_empty(), "{}", r.raw);
    assert!(lookup(&k, "erin").is_empty());
    let run = ctl_run(&k, &["ul.lookup", "erin"]);
    assert_eq!(run.code(), Some(1), "{run:?}");

    // All of it over the one connection: one handshake.
    assert_eq!(k.stat("tls:handshakes"), 1);
    assert_eq!(k.stat("tls:current_opened_connections"), 1);
}

#[test]
fn start_up_refuses_a_tls_config_it_cannot_serve_and_says_why() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (cert, key) = ca.server("server").write(dir.path(), "server");
    let (_, other_key) = ca.server("other").write(dir.path(), "other");
    let missing = dir.path().join("missing.crt");
    let listen = "listen = [\"tls:127.0.0.1:0\"]\n";
    let with = |cert: &Path, key: &Path, more: &str| {
        format!(
            "{listen}[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{more}",
            cert.display(),
            key.display()
        )
    };
    let cases = [
        (listen.to_owned(), vec!["[tls]"]),
        (
            with(&missing, &key, ""),
            vec!["certificate", "missing.crt", "no such file"],
        ),
        (
            with(&cert, &other_key, ""),
            vec!["private_key", "other.key", "does not belong"],
        ),
        (
            with(&key, &key, ""),
            vec!["certificate", "server.key", "no certificate"],
        ),
        (
            with(&cert, &cert, ""),
            vec!["private_key", "server.crt", "no usable private key"],
        ),
        (
            with(&cert, &key, "verify_client = true"),
            vec!["verify_client", "ca_list"],
        ),
        (
            with(&cert, &key, "min_version = \"1.1\""),
            vec!["min_version"],
        ),
    ];
    for (i, (config, words)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("kamrs{i}.toml"));
        std::fs::write(&path, config).expect("write config");
        let ctl = format!("unix:{}", dir.path().join(format!("ctl{i}.sock")).display());
        let run = run_kamrs(&[
            "--config",
            path.to_str().expect("utf-8 path"),
            "--ctl",
            &ctl,
        ]);
        assert!(!run.status.success(), "started with\n{config}\n{run:?}");
        for w in words {
            assert!(
                run.stderr.contains(w),
                "{w:?} missing from the error for\n{config}\n{}",
                run.stderr
            );
        }
    }
}

// ------------------------------------------------------------ 2: baresip

#[test]
fn baresip_registers_over_tls() {
    if !have("baresip") {
        return;
    }
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "");
    let cafile = dir.path().join("ca.crt");
    std::fs::write(&cafile, &ca.cert_pem).expect("write the CA file");
    let user = format!("bs{}", unique());
    let sip_port = free_udp_port();
    let mut phone = Baresip::start_tls(
        sip_port,
        &format!(
            "<sip:{user}@localhost;transport=tls>;outbound=\"sip:127.0.0.1:{};transport=tls\";regint=600",
            k.tls().port()
        ),
        &cafile,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let contacts = loop {
        let c = lookup(&k, &user);
        if !c.is_empty() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(contacts.len(), 1, "baresip's binding: {contacts:?}");
    let c = &contacts[0];
    // baresip's TLS Contact: its TLS port (sip_listen + 1), transport=tls.
    let address = c["Address"].as_str().expect("Address");
    assert!(
        address.ends_with(&format!("@127.0.0.1:{};transport=tls", sip_port + 1)),
        "{c}"
    );
    assert!(
        c["User-Agent"]
            .as_str()
            .is_some_and(|u| u.contains("baresip")),
        "{c}"
    );
    assert_eq!(c["Socket"], format!("tls:{}", k.tls()).as_str(), "{c}");
    let received = c["Received"].as_str().expect("Received");
    let src_port: u16 = received
        .strip_prefix("sip:127.0.0.1:")
        .and_then(|r| r.strip_suffix(";transport=tls"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("Received {received}"));
    // The connection it came on is a TLS one the daemon lists.
    let list = ctl_json(&k, &["tls.list"]);
    let conn = list
        .as_array()
        .expect("tls.list is an array")
        .iter()
        .find(|c| c["src_port"] == src_port)
        .unwrap_or_else(|| panic!("no connection from port {src_port} in {list}"));
    assert_eq!(conn["transport"], "tls", "{conn}");
    assert_eq!(conn["state"], "established", "{conn}");
    assert!(k.stat("tls:handshakes") >= 1);
    phone.stop();
    wait_stat(&k, "tls:current_opened_connections", 0);
}

// ------------------------------ 3: versions, keepalives, connection life

#[test]
fn min_version_1_3_refuses_tls_1_2_clients_and_1_2_is_served_by_default() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "");
    let mut s = tls_connect(k.tls(), ca.client_config_tls12()).expect("a TLS 1.2 handshake");
    assert_registers(&mut s, "old");
    let list = ctl_json(&k, &["tls.list"]);
    assert_eq!(list[0]["version"], "TLSv1_2", "{list}");
    drop((s, k));

    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "min_version = \"1.3\"");
    let Err(why) = tls_connect(k.tls(), ca.client_config_tls12()) else {
        panic!("a TLS 1.2 client must be refused");
    };
    assert!(why.contains("alert"), "{why}");
    wait_stat(&k, "tls:handshake_failures", 1);
    good_client(&k, &ca, "new");
    assert_eq!(ctl_json(&k, &["tls.info"])["min_version"], "1.3");
}

#[test]
fn with_handle_lost_tcp_a_closed_tls_connection_takes_its_bindings() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "handle_lost_tcp = true", "");
    let keep = good_client(&k, &ca, "stays");
    let gone = good_client(&k, &ca, "goes");
    assert_eq!(lookup(&k, "goes").len(), 1);
    drop(gone);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while !lookup(&k, "goes").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the lost connection's binding stays"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lookup(&k, "stays").len(), 1);
    drop(keep);
}

/// Reads from `stream` until `done` holds for what came, within
/// `timeout`; what came.
fn read_until(stream: &mut TlsStream, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {:?} within {timeout:?}",
            String::from_utf8_lossy(&got)
        );
        stream
            .sock
            .set_read_timeout(Some(left))
            .expect("read timeout");
        let n = stream.read(&mut buf).expect("read over TLS");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn a_tls_binding_is_pinged_over_its_connection_and_crlf_pings_are_answered() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "ka_mode = 1\nka_interval = 1", "");
    let mut s = good_client(&k, &ca, "kaphone");
    let port = local_port(&s);
    // The keepalive OPTIONS comes down the TLS connection, for TLS.
    let got = read_until(&mut s, Duration::from_secs(10), |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    });
    let options = String::from_utf8_lossy(&got).into_owned();
    assert!(
        options.starts_with(&format!(
            "OPTIONS sip:kaphone@127.0.0.1:{port};transport=tls SIP/2.0\r\n"
        )),
        "{options}"
    );
    assert!(options.contains("Via: SIP/2.0/TLS "), "{options}");
    s.write_all(kamrs_tests::answer_options(&options).as_bytes())
        .and_then(|()| s.flush())
        .expect("answer the ping");
    let deadline = Instant::now() + REPLY_TIMEOUT;
    while lookup(&k, "kaphone")[0]["KA-Roundtrip"]
        .as_u64()
        .unwrap_or(0)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the answer over TLS was not recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A phone's own double-CRLF ping gets its single CRLF pong (RFC 5626
    // §3.5.1), over TLS as over TCP: on a connection of its own, which
    // holds no binding and so gets no OPTIONS.
    let mut pinger = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    pinger
        .write_all(b"\r\n\r\n")
        .and_then(|()| pinger.flush())
        .expect("ping");
    let got = read_until(&mut pinger, REPLY_TIMEOUT, |b| {
        !b.is_empty() && b.len() >= 2
    });
    assert_eq!(got, b"\r\n");
    drop(s);
}

#[test]
fn a_tls_connection_whose_last_binding_expired_is_closed() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "min_expires = 1\nclose_expired_tcp = true", "");
    let mut short = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let req = tls_register(&short, "short", &unique(), 1, 1);
    assert_eq!(exchange(&mut short, &req).status, 200);
    let long = good_client(&k, &ca, "long");
    assert!(
        wait_hangup(&short.sock, Duration::from_secs(15)).is_some(),
        "the connection of an expired binding is still open 15 s on"
    );
    assert!(lookup(&k, "short").is_empty());
    let why = format!(
        "remote=127.0.0.1:{} proto=tls reason=its last binding expired (close_expired_tcp)",
        local_port(&short)
    );
    let log = k.log_when(|l| l.contains(&why));
    assert!(log.contains(&why), "{log}");
    // The other connection, whose binding lives, stays.
    let mut long = long;
    assert_registers(&mut long, "long");
    wait_stat(&k, "tls:current_opened_connections", 1);
}

// --------------------------------------------------- 4: certificate reload

#[test]
fn sighup_and_tls_reload_swap_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, a) = start_tls(&ca, &dir, "", "");
    let (cert_path, key_path) = cert_paths(&dir);
    let mut one = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    assert_eq!(peer_fingerprint(&one), a.fingerprint());
    assert_registers(&mut one, "one");

    // Certificate B over the files, then SIGHUP.
    let b = ca.server("kamrs test server B");
    assert_ne!(a.fingerprint(), b.fingerprint());
    b.write(dir.path(), "server");
    k.signal(libc::SIGHUP);
    let log = k.log_when(|l| l.contains("SIGHUP: tls certificate reloaded"));
    assert!(log.contains("SIGHUP: tls certificate reloaded"), "{log}");
    assert!(log.contains(&b.fingerprint()), "{log}");
    let two = tls_connect(k.tls(), ca.client_config(None)).expect("handshake after reload");
    assert_eq!(peer_fingerprint(&two), b.fingerprint());
    // The connection from before keeps working.
    assert_registers(&mut one, "one");
    assert_eq!(k.stat("tls:reloads"), 1);
    assert_eq!(
        ctl_json(&k, &["tls.info"])["sha256_fingerprint"],
        b.fingerprint().as_str()
    );

    // B's certificate with A's key: refused, with the reason; B stays.
    std::fs::write(&key_path, &a.key_pem).expect("write A's key");
    let run = ctl_run(&k, &["tls.reload"]);
    assert_ne!(run.code(), Some(0), "{run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("private_key"), "{said}");
    assert!(said.contains(&key_path.display().to_string()), "{said}");
    assert!(said.contains("does not belong"), "{said}");
    assert_eq!(k.stat("tls:reload_failures"), 1);
    assert_eq!(
        ctl_json(&k, &["tls.info"])["sha256_fingerprint"],
        b.fingerprint().as_str()
    );
    let three = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    assert_eq!(peer_fingerprint(&three), b.fingerprint());

    // A certificate file that is not one: refused too, naming the file.
    std::fs::write(&key_path, &b.key_pem).expect("write B's key");
    std::fs::write(&cert_path, "this is not a certificate\n").expect("write junk");
    let run = ctl_run(&k, &["tls.reload"]);
    assert_ne!(run.code(), Some(0), "{run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("certificate"), "{said}");
    assert!(said.contains(&cert_path.display().to_string()), "{said}");
    // …and by SIGHUP, which logs why.
    k.signal(libc::SIGHUP);
    let log = k.log_when(|l| l.contains("SIGHUP: tls certificate not reloaded"));
    assert!(
        log.contains("SIGHUP: tls certificate not reloaded"),
        "{log}"
    );
    assert_eq!(k.stat("tls:reload_failures"), 3);
    assert_eq!(k.stat("tls:reloads"), 1);
    let mut four = good_client(&k, &ca, "four");
    assert_eq!(peer_fingerprint(&four), b.fingerprint());
    assert_registers(&mut four, "four");
    assert_registers(&mut one, "one");

    // Good files again, certificate C, through kamrsctl this time.
    let c = ca.server("kamrs test server C");
    c.write(dir.path(), "server");
    let said = ctl(&k, &["tls.reload"]);
    // Kamailio's exact words; the certificate now in force is in tls.info.
    assert_eq!(said.trim(), "Ok. TLS configuration reloaded.", "{said}");
    let info = ctl(&k, &["tls.info"]);
    assert!(info.contains(&c.fingerprint()), "{info}");
    assert!(info.contains(&cert_path.display().to_string()), "{info}");
    assert_eq!(k.stat("tls:reloads"), 2);
    let five = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    assert_eq!(peer_fingerprint(&five), c.fingerprint());
    assert_eq!(
        ctl_json(&k, &["tls.info"])["sha256_fingerprint"],
        c.fingerprint().as_str()
    );
    assert_registers(&mut four, "four");
    drop((two, three, five));
}

// ------------------------------------------------ 5: client certificates

#[test]
fn verify_client_requires_a_certificate_signed_by_ca_list() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let ca_list = dir.path().join("clients-ca.crt");
    std::fs::write(&ca_list, &ca.cert_pem).expect("write ca_list");
    let (k, _) = start_tls(
        &ca,
        &dir,
        "",
        &format!("verify_client = true\nca_list = \"{}\"", ca_list.display()),
    );

    // No certificate: the handshake fails (TLS 1.3 clients learn it at
    // their first read, from the server's alert).
    let failed = |config| -> String {
        match tls_connect(k.tls(), config) {
            Err(e) => e,
            Ok(mut s) => {
                let req = tls_register(&s, "nocert", &unique(), 1, 60);
                // The write may already fail; the read must.
                let _ = s.write_all(req.as_bytes()).and_then(|()| s.flush());
                refusal(&mut s)
            }
        }
    };
    let why = failed(ca.client_config(None));
    assert!(why.contains("alert: CertificateRequired"), "{why}");
    wait_stat(&k, "tls:handshake_failures", 1);
    // A certificate from another CA (the client trusting the server's):
    // refused by the server as well.
    let other = Ca::new("another CA");
    let why = failed(ca.client_config(Some(&other.client("stranger"))));
    assert!(why.contains("received fatal alert"), "{why}");
    wait_stat(&k, "tls:handshake_failures", 2);
    assert!(lookup(&k, "nocert").is_empty());

    // One signed by the CA: registers, and tls.list says it showed one.
    let leaf = ca.client("phone-1");
    let mut s = tls_connect(k.tls(), ca.client_config(Some(&leaf))).expect("handshake");
    assert_registers(&mut s, "withcert");
    let list = ctl_json(&k, &["tls.list"]);
    let conns = list.as_array().expect("tls.list is an array");
    assert_eq!(conns.len(), 1, "{list}");
    assert_eq!(conns[0]["src_port"], local_port(&s), "{list}");
    assert_eq!(conns[0]["client_certificate"], true, "{list}");
    assert_eq!(ctl_json(&k, &["tls.info"])["verify_client"], true);
    assert_eq!(k.stat("tls:handshakes"), 1);

    // ca_list is read again on reload: the other CA's clients are let in
    // once it is in the file, and a broken file is refused by name.
    let both = format!("{}{}", ca.cert_pem, other.cert_pem);
    std::fs::write(&ca_list, both).expect("write ca_list");
    ctl(&k, &["tls.reload"]);
    let stranger = other.client("stranger");
    let mut s2 = tls_connect(k.tls(), ca.client_config(Some(&stranger))).expect("handshake");
    assert_registers(&mut s2, "stranger");
    std::fs::write(
        &ca_list,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .expect("write ca_list");
    let run = ctl_run(&k, &["tls.reload"]);
    assert_ne!(run.code(), Some(0), "{run:?}");
    assert!(run.stderr.contains("ca_list"), "{run:?}");
    assert!(
        run.stderr.contains(&ca_list.display().to_string()),
        "{run:?}"
    );
    let mut s3 = tls_connect(k.tls(), ca.client_config(Some(&stranger))).expect("handshake");
    assert_registers(&mut s3, "stranger");
    assert_registers(&mut s, "withcert");
}

// ----------------------------------------------------------- 6: sips rules

#[test]
fn sips_registrations_need_tls_end_to_end() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, _) = start_tls(&ca, &dir, "", "");

    // Over UDP and TCP: refused whichever of the three is sips.
    let udp = udp_client(k.udp());
    let uport = udp.local_addr().expect("local addr").port();
    let cases = [
        (
            "sips:example.com",
            "sips:sam@example.com",
            "sips:sam@127.0.0.1:5061",
        ),
        (
            "sips:example.com",
            "sip:sam@example.com",
            "sip:sam@127.0.0.1:5060",
        ),
        ("sip:example.com", "sips:sam@example.com", ""),
        (
            "sip:example.com",
            "sip:sam@example.com",
            "sips:sam@127.0.0.1:5061",
        ),
        // Schemes are case-insensitive (RFC 3261 §19.1.4).
        (
            "sip:example.com",
            "sip:sam@example.com",
            "SIPS:sam@127.0.0.1:5061",
        ),
        ("SIPS:example.com", "sip:sam@example.com", ""),
        ("sip:example.com", "Sips:sam@example.com", ""),
    ];
    for (ruri, aor, contact) in cases {
        let r = udp_exchange(
            &udp,
            register(ruri, aor, contact, "UDP", uport, &unique(), 1, 60),
        );
        assert_eq!(
            (r.status, r.reason.as_str()),
            (400, "SIPS Requires TLS"),
            "{}",
            r.raw
        );
        let mut tcp = tcp_connect(k.tcp());
        let tport = tcp.local_addr().expect("local addr").port();
        tcp.write_all(register(ruri, aor, contact, "TCP", tport, &unique(), 1, 60).as_bytes())
            .expect("tcp write");
        let r = read_response(&mut tcp, REPLY_TIMEOUT).expect("a TCP reply");
        assert_eq!(
            (r.status, r.reason.as_str()),
            (400, "SIPS Requires TLS"),
            "{}",
            r.raw
        );
    }
    assert!(lookup(&k, "sam").is_empty());

    // The same over TLS: 200, and the binding keeps its sips Contact.
    let mut s = tls_connect(k.tls(), ca.client_config(None)).expect("handshake");
    let port = local_port(&s);
    let contact = format!("sips:sam@127.0.0.1:{port}");
    let r = exchange(
        &mut s,
        &register(
            "sips:example.com",
            "sips:sam@example.com",
            &contact,
            "TLS",
            port,
            &unique(),
            1,
            60,
        ),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let c = lookup(&k, "sam");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["Address"], contact.as_str(), "{c:?}");

    // Mixing sip and sips is refused even over TLS (RFC 5630).
    let r = exchange(
        &mut s,
        &register(
            "sip:example.com",
            "sips:mix@example.com",
            &format!("sips:mix@127.0.0.1:{port}"),
            "TLS",
            port,
            &unique(),
            1,
            60,
        ),
    );
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "SIPS Contact Requires SIPS Request-URI And Path"),
        "{}",
        r.raw
    );
    let r = exchange(
        &mut s,
        &register(
            "sips:example.com",
            "sips:mix@example.com",
            &format!("sip:mix@127.0.0.1:{port};transport=tls"),
            "TLS",
            port,
            &unique(),
            1,
            60,
        ),
    );
    assert_eq!(
        (r.status, r.reason.as_str()),
        (400, "SIPS AoR Requires SIPS Contacts"),
        "{}",
        r.raw
    );
    // A sips Contact needs sips Path URIs too.
    for (path, want) in [
        ("<sip:edge.example.com;lr>", 400),
        ("<sips:edge.example.com;lr>, <sip:core.example.com;lr>", 400),
        ("<sips:edge.example.com;lr>", 200),
    ] {
        let req = register(
            "sips:example.com",
            "sips:pat@example.com",
            &format!("sips:pat@127.0.0.1:{port}"),
            "TLS",
            port,
            &unique(),
            1,
            60,
        )
        .replace(
            "Content-Length: 0\r\n",
            &format!("Supported: path\r\nPath: {path}\r\nContent-Length: 0\r\n"),
        );
        let r = exchange(&mut s, &req);
        assert_eq!(r.status, want, "Path {path}: {}", r.raw);
        if want == 400 {
            assert_eq!(r.reason, "SIPS Contact Requires SIPS Request-URI And Path");
        }
    }
    assert!(lookup(&k, "mix").is_empty());
    assert_eq!(lookup(&k, "pat").len(), 1);
}

// --------------------------------------------- 7: tls.list and tls.info

#[test]
fn kamrsctl_lists_tls_connections_and_shows_the_certificate() {
    let ca = Ca::new("kamrs test CA");
    let dir = TempDir::new("tls");
    let (k, leaf) = start_tls(&ca, &dir, "", "");
    let mut a = good_client(&k, &ca, "a");
    let b = good_client(&k, &ca, "b");

    let list = ctl_json(&k, &["tls.list"]);
    let conns = list.as_array().expect("tls.list is an array");
    assert_eq!(conns.len(), 2, "{list}");
    for (s, c) in [(&a, &conns[0]), (&b, &conns[1])] {
        assert_eq!(c["src_port"], local_port(s), "{list}");
        assert_eq!(c["src_ip"], "127.0.0.1", "{list}");
        assert_eq!(c["dst_ip"], "127.0.0.1", "{list}");
        assert_eq!(c["dst_port"], k.tls().port(), "{list}");
        assert_eq!(c["transport"], "tls", "{list}");
        assert_eq!(c["state"], "established", "{list}");
        assert_eq!(c["sni"], "localhost", "{list}");
        assert_eq!(c["client_certificate"], false, "{list}");
        let version = format!("{:?}", s.conn.protocol_version().expect("version"));
        assert_eq!(c["version"], version.as_str(), "{list}");
        let cipher = format!(
            "{:?}",
            s.conn.negotiated_cipher_suite().expect("cipher").suite()
        );
        assert_eq!(c["cipher"], cipher.as_str(), "{list}");
    }
    // The human table names the connection too.
    let table = ctl(&k, &["tls.list"]);
    assert!(table.contains(&local_port(&a).to_string()), "{table}");

    let info = ctl(&k, &["tls.info"]);
    assert!(
        info.contains(&format!("sha256 fingerprint: {}", leaf.fingerprint())),
        "{info}"
    );
    assert!(info.contains("connections: 2 open"), "{info}");
    let json = ctl_json(&k, &["tls.info"]);
    assert_eq!(json["opened_connections"], 2, "{json}");
    assert_eq!(json["chain_length"], 1, "{json}");
    assert_eq!(json["handshakes"], 2, "{json}");
    assert_eq!(json["handshake_failures"], 0, "{json}");
    assert_eq!(
        json["certificate"],
        cert_paths(&dir).0.display().to_string().as_str(),
        "{json}"
    );

    // A closed connection leaves the list.
    drop(b);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let list = loop {
        let list = ctl_json(&k, &["tls.list"]);
        if list.as_array().is_some_and(|l| l.len() == 1) || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let conns = list.as_array().expect("tls.list is an array");
    assert_eq!(conns.len(), 1, "{list}");
    assert_eq!(conns[0]["src_port"], local_port(&a), "{list}");
    assert_registers(&mut a, "a");
}
