//! The control API of digest authentication and flood protection (issue
//! 6), end to end: `kamrsctl subscriber add|rm|list|reload` against the
//! real daemon, then REGISTERs answering its challenges with the password
//! kamrsctl was given; `pike.top` and the `pike:` statistics after a real
//! flood. The digest client below is independent of kamrs's code (copied
//! from auth.rs), so a hashing bug cannot hide by being on both sides.

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kamrs_tests::ctl::*;
use kamrs_tests::digest::{answer, challenge, h};
use kamrs_tests::*;
use serde_json::{json, Value};

/// `[auth]` with digest on, the subscriber file and secret in `dir`, and
/// both algorithms offered (the default is MD5 alone): the hashes kamrsctl
/// makes must both work.
fn auth_config(dir: &Path, extra: &str) -> String {
    format!(
        "[auth]\nmode = \"digest\"\nalgorithms = [\"SHA-256\", \"MD5\"]\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n{extra}\n",
        subscribers_file(dir).display(),
        dir.join("nonce.secret").display()
    )
}

fn subscribers_file(dir: &Path) -> PathBuf {
    dir.join("subscribers.toml")
}

/// A `[[subscriber]]` entry as an admin would write it by hand.
fn hand_written(user: &str, realm: &str, password: &str) -> String {
    format!(
        "[[subscriber]]\nusername = \"{user}\"\ndomain = \"example.com\"\nha1 = \"{}\"\nha1_sha256 = \"{}\"\n\n",
        h("MD5", &format!("{user}:{realm}:{password}")),
        h("SHA-256", &format!("{user}:{realm}:{password}"))
    )
}

struct Ua {
    sock: UdpSocket,
    user: String,
    call_id: String,
    cseq: u32,
}

impl Ua {
    fn new(udp: std::net::SocketAddr, user: &str) -> Ua {
        Ua {
            sock: udp_client(udp),
            user: user.to_owned(),
            call_id: format!("{}@ctl-auth", unique()),
            cseq: 0,
        }
    }

    fn register(&mut self, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let port = self.sock.local_addr().unwrap().port();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{u}@example.com>;tag={t}\r\nTo: <sip:{u}@example.com>\r\n\
             Call-ID: {c}\r\nCSeq: {s} REGISTER\r\n\
             Contact: <sip:{u}@127.0.0.1:{port}>\r\n{auth}Content-Length: 0\r\n\r\n",
            u = self.user,
            b = unique(),
            t = unique(),
            c = self.call_id,
            s = self.cseq
        );
        udp_exchange(&self.sock, msg)
    }

    /// REGISTER, then answer the `alg` challenge with `password`: the
    /// final response, and the realm challenged with.
    fn register_with(&mut self, alg: &str, password: &str) -> (Response, String) {
        let first = self.register(None);
        let (realm, nonce, _) = challenge(&first, alg);
        let user = self.user.clone();
        let r = self.register(Some(&answer(alg, &user, password, &realm, &nonce, 1)));
        (r, realm)
    }
}

/// `kamrsctl subscriber add USER@DOMAIN --password-stdin` with `password`
/// and a newline on stdin.
fn add_from_stdin(k: &CtlKamrs, who: &str, password: &str) -> CtlRun {
    k.ctl_stdin(
        &["subscriber", "add", who, "--password-stdin"],
        format!("{password}\n").as_bytes(),
    )
}

/// Whether `text` holds a run of 32 or more hex digits (an HA1, or any
/// hash) anywhere.
fn has_hash(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() >= 32)
}

/// The value of each `group:name = value` line.
fn stat(lines: &Value, name: &str) -> u64 {
    lines
        .as_array()
        .expect("stats lines")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("{name} not in {lines}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn subscriber_add_from_stdin_then_register_list_and_rm() {
    let dir = TempDir::new("ctl-auth");
    let k = CtlKamrs::start(&auth_config(dir.path(), ""), "");
    let password = "wonder land #1";

    let run = add_from_stdin(&k, "alice@example.com", password);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "subscriber alice@example.com saved (digest realm example.com)\n"
    );

    // The phone, with the same password, gets through the challenge with
    // either algorithm.
    for alg in ["SHA-256", "MD5"] {
        let mut ua = Ua::new(k.udp(), "alice");
        let (r, realm) = ua.register_with(alg, password);
        assert_eq!(realm, "example.com");
        assert_eq!(r.status, 200, "{alg}: {}", r.raw);
    }

    // The list shows who, never a hash.
    let table = k.ctl_ok(&["subscriber", "list"]);
    assert!(
        table.contains("alice") && table.contains("example.com"),
        "{table}"
    );
    assert!(table.ends_with("1 subscriber\n"), "{table}");
    assert!(!has_hash(&table), "{table}");
    assert_eq!(
        k.ctl_json(&["subscriber", "list"]),
        json!([{"username": "alice", "domain": "example.com"}])
    );
    let raw = k.rpc("subscriber.list", json!([]));
    assert_eq!(
        raw["result"],
        json!([{"username": "alice", "domain": "example.com"}])
    );
    assert!(!has_hash(&raw.to_string()), "{raw}");

    // On disk: the hashes, never the password, readable by kamrs's user only.
    let file = subscribers_file(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(password) && !text.contains("wonder"),
        "{text}"
    );
    for alg in ["MD5", "SHA-256"] {
        let ha1 = h(alg, &format!("alice:example.com:{password}"));
        assert!(text.contains(&ha1), "{alg} HA1 missing:\n{text}");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // ul.* show the binding, and nothing of the credentials.
    let ha1s = [
        h("MD5", &format!("alice:example.com:{password}")),
        h("SHA-256", &format!("alice:example.com:{password}")),
    ];
    for shown in [
        k.ctl_ok(&["--json", "ul.dump"]),
        k.ctl_ok(&["--json", "ul.lookup", "alice"]),
        k.ctl_ok(&["ul.dump"]),
        k.rpc("ul.dump", json!([])).to_string(),
        k.rpc("ul.lookup", json!(["location", "alice"])).to_string(),
    ] {
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("wonder"), "{shown}");
        assert!(!shown.to_ascii_lowercase().contains("ha1"), "{shown}");
        for ha1 in &ha1s {
            assert!(!shown.contains(ha1.as_str()), "{shown}");
        }
    }
    let stats = k.ctl_json(&["call", "stats.get_statistics", "auth:"]);
    assert!(stat(&stats, "auth:authorized") >= 2, "{stats}");
    assert!(stat(&stats, "auth:challenges") >= 2, "{stats}");

    // Removed: the same credentials no longer get in.
    let run = k.ctl(&["subscriber", "rm", "alice@example.com"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stdout, "removed subscriber alice@example.com\n");
    let mut ua = Ua::new(k.udp(), "alice");
    let (r, _) = ua.register_with("SHA-256", password);
    assert!(matches!(r.status, 401 | 403), "{}", r.raw);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("alice"));
    assert_eq!(k.ctl_json(&["subscriber", "list"]), json!([]));

    let run = k.ctl(&["subscriber", "rm", "alice@example.com"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "kamrsctl: Subscriber not found: alice@example.com (`kamrsctl subscriber list` lists the subscribers)"
    );
    let raw = k.rpc("subscriber.rm", json!(["alice", "example.com"]));
    assert_eq!(
        raw["error"],
        json!({"code": 404, "message": "Subscriber not found"})
    );
}

#[test]
fn kamrsctl_hashes_with_the_realm_kamrs_challenges_with() {
    let dir = TempDir::new("ctl-auth");
    let k = CtlKamrs::start(&auth_config(dir.path(), "realm = \"kamrs-test\""), "");
    let raw = k.rpc("auth.realm", json!(["Example.COM"]));
    assert_eq!(raw["result"], "kamrs-test", "{raw}");
    let run = add_from_stdin(&k, "carol@example.com", "c4rol");
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("digest realm kamrs-test"), "{run:?}");
    let mut ua = Ua::new(k.udp(), "carol");
    let (r, realm) = ua.register_with("MD5", "c4rol");
    assert_eq!(realm, "kamrs-test");
    assert_eq!(r.status, 200, "{}", r.raw);

    // A new password replaces the old one.
    let run = add_from_stdin(&k, "carol@example.com", "n3w");
    assert_eq!(run.code(), Some(0), "{run:?}");
    let mut ua = Ua::new(k.udp(), "carol");
    assert_eq!(ua.register_with("SHA-256", "n3w").0.status, 200);
    let mut ua = Ua::new(k.udp(), "carol");
    assert_ne!(ua.register_with("SHA-256", "c4rol").0.status, 200);
    assert_eq!(
        k.ctl_json(&["subscriber", "list"]).as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn subscriber_reload_reads_a_hand_edited_file() {
    let dir = TempDir::new("ctl-auth");
    let file = subscribers_file(dir.path());
    std::fs::write(&file, hand_written("alice", "example.com", "a")).unwrap();
    let k = CtlKamrs::start(&auth_config(dir.path(), ""), "");

    // bob is added by hand: not known until the reload.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&hand_written("bob", "example.com", "builder"));
    std::fs::write(&file, text).unwrap();
    let mut bob = Ua::new(k.udp(), "bob");
    assert_ne!(bob.register_with("MD5", "builder").0.status, 200);

    assert_eq!(
        k.ctl_ok(&["subscriber", "reload"]),
        "subscriber list reloaded: 2 subscribers\n"
    );
    assert_eq!(k.ctl_json(&["subscriber", "reload"]), json!(2));
    let mut bob = Ua::new(k.udp(), "bob");
    let (r, _) = bob.register_with("MD5", "builder");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        k.ctl_json(&["subscriber", "list"]),
        json!([
            {"username": "alice", "domain": "example.com"},
            {"username": "bob", "domain": "example.com"}
        ])
    );

    // A broken file is refused and the list in force stays.
    std::fs::write(&file, "[[subscriber]]\nusername = \"eve\"\n").unwrap();
    let run = k.ctl(&["subscriber", "reload"]);
    assert_eq!(run.code(), Some(4), "{run:?}");
    assert!(
        run.stderr
            .contains("old one (2 subscribers) stays in force")
            && run.stderr.contains("subscribers.toml")
            && run.stderr.lines().count() == 1,
        "{run:?}"
    );
    let mut bob = Ua::new(k.udp(), "bob");
    assert_eq!(bob.register_with("SHA-256", "builder").0.status, 200);
}

#[test]
fn passwords_never_come_from_the_command_line() {
    let dir = TempDir::new("ctl-auth");
    let k = CtlKamrs::start(&auth_config(dir.path(), ""), "");
    for args in [
        &[
            "subscriber",
            "add",
            "alice@example.com",
            "--password",
            "hunter2",
        ][..],
        &["subscriber", "add", "alice@example.com", "hunter2"],
    ] {
        let run = k.ctl(args);
        assert_eq!(run.code(), Some(2), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("hunter2"), "{run:?}");
        assert!(run.stderr.contains("--password-stdin"), "{run:?}");
    }
    // No terminal and no --password-stdin: nothing to ask on, say how.
    let run = k.ctl(&["subscriber", "add", "alice@example.com"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("kamrsctl: no terminal to ask the password on")
            && run.stderr.contains("--password-stdin"),
        "{run:?}"
    );
    // An empty line is no password.
    let run = add_from_stdin(&k, "alice@example.com", "");
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("empty"), "{run:?}");
    // A bad USER@DOMAIN is a usage error too.
    let run = add_from_stdin(&k, "alice", "x");
    assert_eq!(run.code(), Some(2), "{run:?}");
    // The daemon names a bad argument.
    let run = add_from_stdin(&k, "al ice@example.com", "x");
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("USER@DOMAIN: \"al ice\""), "{run:?}");
    let raw = k.rpc(
        "subscriber.add",
        json!(["alice", "example.com", "not a hash", ""]),
    );
    assert_eq!(raw["error"]["code"], -32602, "{raw}");
    assert!(
        raw["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("argument 3 `ha1`: expected 32 hex digits")),
        "{raw}"
    );
    // None of it added anyone.
    assert_eq!(k.ctl_json(&["subscriber", "list"]), json!([]));
    assert!(!subscribers_file(dir.path()).exists());
}

#[test]
fn disabled_features_say_how_to_turn_them_on() {
    // (Subscribers are managed while authentication is off: see
    // subscribers_added_while_auth_is_off_register_once_it_is_on.)
    let k = CtlKamrs::start("[pike]\nenabled = false", "");
    let run = k.ctl(&["pike.top"]);
    assert_eq!(run.code(), Some(4), "{run:?}");
    assert!(
        run.stderr.contains("flood protection is off") && run.stderr.contains("enabled = true"),
        "{run:?}"
    );
    // Every pike statistic reads 0 while pike is off.
    let stats = k.ctl_json(&["call", "stats.get_statistics", "pike:"]);
    let stats = stats.as_array().unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        stats[..2],
        [
            json!("pike:dropped_requests = 0"),
            json!("pike:blocked_sources = 0")
        ]
    );
    assert!(
        stats
            .iter()
            .all(|s| s.as_str().is_some_and(|s| s.ends_with(" = 0"))),
        "{stats:?}"
    );

    let methods = k.ctl_json(&["system.listMethods"]);
    for m in [
        "subscriber.add",
        "subscriber.rm",
        "subscriber.list",
        "subscriber.reload",
        "auth.realm",
        "pike.top",
    ] {
        assert!(
            methods.as_array().unwrap().contains(&json!(m)),
            "{m} not in {methods}"
        );
    }
}

#[test]
fn pike_top_shows_a_flooding_source_blocked() {
    // Long window and block: nothing expires while the test looks.
    let k = CtlKamrs::start(
        "[pike]\nwindow = 60\nmax_requests = 20\nblock_time = 120\ntrusted = []",
        "",
    );
    // A well-behaved source, answered (so counted) before the flood.
    let good = udp_client(k.udp());
    for _ in 0..3 {
        assert_udp_alive(&good);
    }
    // The whole 127/8 is loopback: the flood comes from another address.
    let bad = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    bad.connect(k.udp()).unwrap();
    let port = bad.local_addr().unwrap().port();
    let msg = sip_request("OPTIONS", "flood@ctl-auth", 1, port, &[]);
    // Batches of 10 until pike.top shows the source blocked with drops:
    // 22 processed requests suffice; 100 batches bound the loop.
    let mut blocked = None;
    for _ in 0..100 {
        for _ in 0..10 {
            let _ = bad.send(msg.as_bytes());
        }
        let raw = k.rpc("pike.top", json!([]));
        let top = raw["result"].as_array().cloned().unwrap_or_default();
        if top.first().is_some_and(|s| {
            s["ip"] == "127.0.0.2" && s["blocked"] == true && s["dropped"].as_u64() > Some(0)
        }) {
            blocked = Some(top);
            break;
        }
    }
    let top = blocked.expect("127.0.0.2 never shown blocked by pike.top");
    assert_eq!(top[0]["requests_in_window"], 21, "{top:?}");

    // kamrsctl: blocked first, then the good source.
    let json_top = k.ctl_json(&["pike.top"]);
    let list = json_top.as_array().unwrap();
    assert_eq!(list.len(), 2, "{json_top}");
    assert_eq!(list[0]["ip"], "127.0.0.2");
    assert_eq!(list[0]["blocked"], true);
    assert_eq!(
        list[1],
        json!({"ip": "127.0.0.1", "requests_in_window": 3, "blocked": false, "dropped": 0})
    );
    let table = k.ctl_ok(&["pike.top"]);
    let first_row = table
        .lines()
        .find(|l| l.contains("127.0.0."))
        .unwrap_or_default();
    assert!(
        first_row.contains("127.0.0.2") && first_row.contains("yes"),
        "{table}"
    );
    assert!(table.ends_with("2 sources, 1 blocked\n"), "{table}");
    assert_eq!(
        k.ctl_json(&["pike.top", "1"]).as_array().map(Vec::len),
        Some(1)
    );

    let stats = k.ctl_json(&["call", "stats.get_statistics", "pike:"]);
    assert!(stat(&stats, "pike:dropped_requests") > 0, "{stats}");
    assert_eq!(stat(&stats, "pike:blocked_sources"), 1, "{stats}");
    // The other source is still served.
    assert_udp_alive(&good);
}

/// Issue 14: an admin prepares the subscribers while `[auth] mode =
/// "none"`, then switches digest on: the phones register at once, with the
/// hashes kamrsctl made against the realm that will be used.
#[test]
fn subscribers_added_while_auth_is_off_register_once_it_is_on() {
    let dir = TempDir::new("ctl-auth-off");
    let file = subscribers_file(dir.path());
    let secret = dir.path().join("nonce.secret");
    let auth_keys = |mode: &str| {
        format!(
            "[auth]\nmode = \"{mode}\"\nrealm = \"pbx.example\"\nsubscribers = \"{}\"\nsecret_file = \"{}\"\n",
            file.display(),
            secret.display()
        )
    };
    let password = "first hour";
    let k = CtlKamrs::start(&auth_keys("none"), "");
    let raw = k.rpc("auth.realm", json!(["example.com"]));
    assert_eq!(raw["result"], "pbx.example", "{raw}");
    let run = add_from_stdin(&k, "alice@example.com", password);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(
        run.stdout
            .starts_with("subscriber alice@example.com saved (digest realm pbx.example)")
            && run.stdout.contains("authentication is off")
            && run.stdout.contains("mode = \"digest\""),
        "{run:?}"
    );
    assert_eq!(
        k.ctl_json(&["subscriber", "list"]),
        json!([{"username": "alice", "domain": "example.com"}])
    );
    // The one-domain rule of `use_domain = false` holds while auth is off.
    let run = add_from_stdin(&k, "alice@other.example", password);
    assert_ne!(run.code(), Some(0), "{run:?}");
    assert!(run.stderr.contains("use_domain = true"), "{run:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&h("MD5", &format!("alice:pbx.example:{password}"))),
        "{text}"
    );
    assert!(!text.contains("other.example"), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(!secret.exists(), "no nonce secret while auth is off");
    drop(k);

    // Digest on, the same file, the default algorithms: alice gets in.
    let k = CtlKamrs::start(&auth_keys("digest"), "");
    let mut ua = Ua::new(k.udp(), "alice");
    let (r, realm) = ua.register_with("MD5", password);
    assert_eq!(realm, "pbx.example");
    assert_eq!(r.status, 200, "{}", r.raw);
    let mut ua = Ua::new(k.udp(), "alice");
    let (r, _) = ua.register_with("MD5", "wrong");
    assert_ne!(r.status, 200, "{}", r.raw);
}

/// Issue 14, offline: `kamrsctl subscriber add --file PATH --realm REALM`
/// writes the subscriber file with no daemon running; kamrs started on it
/// with digest on (default algorithms) lets the phone in.
#[test]
fn subscribers_added_offline_with_file_register() {
    let dir = TempDir::new("ctl-auth-file");
    let file = subscribers_file(dir.path());
    let path = file.to_str().unwrap();
    let password = "offline pw";
    let add = |who: &str, extra: &[&str]| {
        let mut args = vec!["subscriber", "add", who, "--password-stdin", "--file", path];
        args.extend_from_slice(extra);
        kamrsctl_with(
            &args,
            NO_DAEMON,
            None,
            Some(format!("{password}\n").as_bytes()),
        )
    };
    // No daemon: the control endpoint points at nothing, and is not needed.
    const NO_DAEMON: &[(&str, &str)] = &[("KAMRSCTL_CTL", "unix:/nonexistent/kamrs.sock")];
    let run = add("alice@Example.com", &[]);
    assert_eq!(run.code(), Some(2), "--realm is required: {run:?}");
    assert!(
        run.stderr.contains("--realm") && run.stderr.contains("[auth] realm"),
        "{run:?}"
    );
    assert!(!file.exists());
    let run = add("alice@Example.com", &["--realm", "example.com"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!(
            "subscriber alice@example.com saved in {path} (digest realm example.com)"
        )),
        "{run:?}"
    );
    let run = add("bob@other.example", &["--realm", "other.example"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(
        run.stderr.contains("use_domain = true") && run.stderr.contains("--use-domain"),
        "{run:?}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let run = kamrsctl_with(
        &["--json", "subscriber", "list", "--file", path],
        NO_DAEMON,
        None,
        None,
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        listed,
        json!([{"username": "alice", "domain": "example.com"}])
    );

    let k = CtlKamrs::start(
        &format!(
            "[auth]\nmode = \"digest\"\nsubscribers = \"{path}\"\nsecret_file = \"{}\"\n",
            dir.path().join("nonce.secret").display()
        ),
        "",
    );
    let mut ua = Ua::new(k.udp(), "alice");
    let (r, realm) = ua.register_with("MD5", password);
    assert_eq!(realm, "example.com");
    assert_eq!(r.status, 200, "{}", r.raw);

    // Removed offline, reloaded: alice is out.
    let run = kamrsctl_with(
        &["subscriber", "rm", "alice@example.com", "--file", path],
        &[],
        None,
        None,
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(
        k.ctl_ok(&["subscriber", "reload"]).trim(),
        "subscriber list reloaded: 0 subscribers"
    );
    let mut ua = Ua::new(k.udp(), "alice");
    let (r, _) = ua.register_with("MD5", password);
    assert_ne!(r.status, 200, "{}", r.raw);
}
