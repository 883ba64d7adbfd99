//! Data that hurts the operator (README, Security), end to end:
//! what a phone or an API caller sends must neither drive the admin's
//! terminal through `kamrsctl`, nor forge lines, nor reach the daemon's
//! log raw, nor make an AoR that `ul.lookup`/`ul.rm` cannot find.

use kamrs_tests::ctl::*;
use kamrs_tests::*;
use serde_json::json;

/// Clears the screen, retitles the window (OSC … BEL), a C1 CSI (U+009B),
/// backspace and DEL: each moves or rewrites what the terminal shows.
const EVIL_UA: &str = "Evil\x1b[2J\x1b]0;pwned\x07 \u{9b}31m red\x08\x08\x7f end";

/// Bytes a terminal acts on: C0 controls but LF (each output line ends
/// with one), DEL, and C1 controls as UTF-8 (C2 80..C2 9F).
fn terminal_controls(out: &[u8]) -> Vec<(usize, u8)> {
    let mut found = Vec::new();
    for (i, &b) in out.iter().enumerate() {
        let c1 = b == 0xc2 && out.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if (b < 0x20 && b != b'\n') || b == 0x7f || c1 {
            found.push((i, b));
        }
    }
    found
}

fn register_ok(k: &CtlKamrs, aor: &str, user_agent: &str) -> Response {
    let sock = udp_client(k.udp());
    let port = sock.local_addr().unwrap().port();
    let contact = format!("sip:phone@127.0.0.1:{port}");
    let msg = register(
        aor,
        Some(&contact),
        Some(600),
        &unique(),
        1,
        port,
        user_agent,
    );
    udp_exchange(&sock, msg)
}

#[test]
fn control_characters_in_a_user_agent_never_reach_the_terminal() {
    let k = CtlKamrs::start("", "");
    let r = register_ok(&k, "mallory", EVIL_UA);
    assert_eq!(r.status, 200, "{}", r.raw);

    // Stored exactly, and `--json` gives it exactly: the same JSON string,
    // with DEL and C1 written as \u escapes like the C0 ones.
    for args in [
        &["--json", "ul.lookup", "mallory"][..],
        &["--json", "ul.dump"],
    ] {
        let run = k.ctl(args);
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert!(
            terminal_controls(run.stdout.as_bytes()).is_empty(),
            "{args:?}: {:?}",
            run.stdout
        );
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let contact = if args[1] == "ul.dump" {
            &v["Domains"][0]["Domain"]["AoRs"][0]["Info"]["Contacts"][0]["Contact"]
        } else {
            &v["Contacts"][0]["Contact"]
        };
        assert_eq!(contact["User-Agent"], EVIL_UA, "{v}");
    }

    // ... and shown escaped in every human output.
    for args in [
        &["ul.dump"][..],
        &["ul.lookup", "mallory"],
        &["ul.dump", "--brief"],
    ] {
        let run = k.ctl(args);
        assert_eq!(run.code(), Some(0), "{args:?}: {run:?}");
        let raw = run.stdout.as_bytes();
        assert!(
            terminal_controls(raw).is_empty(),
            "{args:?} printed terminal controls {:?}:\n{:?}",
            terminal_controls(raw),
            run.stdout
        );
        if args[0] != "ul.dump" || args.len() == 1 {
            // Tables may wrap a long cell; the escapes themselves stay
            // whole at this width (no terminal: whole lines).
            assert!(
                run.stdout.contains("Evil\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"),
                "{args:?}:\n{}",
                run.stdout
            );
            assert!(run.stdout.contains("\\u{9b}31m"), "{}", run.stdout);
            assert!(run.stdout.contains("\\u{8}\\u{8}\\u{7f}"), "{}", run.stdout);
        }
    }
    // The daemon's log never carries them either.
    assert!(
        terminal_controls(k.kamrs.stderr().as_bytes()).is_empty(),
        "{:?}",
        k.kamrs.stderr()
    );
}

#[test]
fn escaped_cr_lf_and_nul_in_a_to_user_are_refused() {
    let k = CtlKamrs::start("", "");
    for (aor, why) in [
        ("t%0d%0aX-Inj", "Control Character"),
        ("t%0aforged", "Control Character"),
        ("a%00b", "Control Character"),
        ("%1b%5b2J", "Control Character"),
        ("x%c2%9b31m", "Control Character"),
    ] {
        let r = register_ok(&k, aor, "Yealink SIP-T46S 66.86.0.15");
        assert_eq!(r.status, 400, "{aor}: {}", r.raw);
        assert!(r.reason.contains(why), "{aor}: {}", r.raw);
        assert!(
            r.header("P-Registrar-Error")
                .is_some_and(|v| v.contains(why)),
            "{aor}: {}",
            r.raw
        );
    }
    let brief = k.ctl_ok(&["ul.dump", "--brief"]);
    assert_eq!(brief, "no registered AoRs\n", "{brief:?}");
    assert!(!brief.lines().any(|l| l.starts_with("X-Inj")), "{brief}");
}

#[test]
fn ul_add_refuses_control_characters_in_aor_contact_and_path() {
    let k = CtlKamrs::start("use_path = true", "");
    let add = |aor: &str, contact: &str, path: &str| {
        k.rpc(
            "ul.add",
            json!(["location", aor, contact, 0, -1, path, 0, 0, 0]),
        )
    };
    for (aor, contact, path, arg) in [
        ("t\r\nX-Inj", "sip:t@192.0.2.1", "0", "`aor`"),
        ("a\0b", "sip:a@192.0.2.1", "0", "`aor`"),
        ("\x1b[2Jx", "sip:a@192.0.2.1", "0", "`aor`"),
        (
            "alice",
            "sip:alice@192.0.2.1",
            "<sip:p.example.com;lr>\r\nX-Inj: 1",
            "`path`",
        ),
        ("alice", "sip:alice@192.0.2.1", "<sip:p\0>", "`path`"),
        ("alice", "sip:alice@192.0.2.1;x=\x1b[2J", "0", "`contact`"),
    ] {
        let v = add(aor, contact, path);
        assert_eq!(v["error"]["code"], -32602, "{aor:?} {path:?}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(arg) && msg.contains("control character"),
            "{msg}"
        );
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
    }
    // Through kamrsctl: usage error (2), one line, nothing raw on stderr.
    let run = k.ctl(&["ul.add", "t\r\nX-Inj", "sip:t@192.0.2.1"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        terminal_controls(run.stderr.as_bytes()).is_empty(),
        "{run:?}"
    );
    let run = k.ctl(&[
        "ul.add",
        "alice",
        "sip:alice@192.0.2.1",
        "--path",
        "<sip:p;lr>\r\nX: 1",
    ]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    // Named by the CLI's flag, not the JSON-RPC argument.
    assert!(run.stderr.contains("--path"), "{run:?}");

    assert_eq!(k.ctl_ok(&["ul.dump", "--brief"]), "no registered AoRs\n");
    // A clean ul.add still works.
    assert!(add("alice", "sip:alice@192.0.2.1", "<sip:p.example.com;lr>")["error"].is_null());
    assert_eq!(k.ctl_ok(&["ul.dump", "--brief"]), "alice\n");
}

#[test]
fn every_aor_a_register_stores_can_be_found_and_removed() {
    for use_domain in [false, true] {
        let k = CtlKamrs::start(&format!("use_domain = {use_domain}"), "");
        // An escaped @ would store `victim@other.org`, which the API reads
        // as user victim at other.org: refused instead.
        let r = register_ok(&k, "victim%40other.org", "ua");
        assert_eq!(r.status, 400, "{}", r.raw);
        assert!(r.reason.contains("Invalid AoR"), "{}", r.raw);
        let r = register_ok(&k, "a%00", "ua");
        assert_eq!(r.status, 400, "{}", r.raw);
        assert_eq!(k.ctl_ok(&["ul.dump", "--brief"]), "no registered AoRs\n");

        // A harmless escape is stored unescaped, and found by its name.
        let r = register_ok(&k, "%61lice", "ua");
        assert_eq!(r.status, 200, "{}", r.raw);
        let name = if use_domain {
            "alice@example.com"
        } else {
            "alice"
        };
        assert_eq!(k.ctl_ok(&["ul.dump", "--brief"]), format!("{name}\n"));
        let v = k.ctl_json(&["ul.lookup", name]);
        assert_eq!(v["AoR"], name, "{v}");
        // Every name `ul.dump` prints is one `ul.rm` removes.
        let run = k.ctl(&["ul.rm", name]);
        assert_eq!(run.code(), Some(0), "{run:?}");
        assert_eq!(k.ctl(&["ul.lookup", name]).code(), Some(1));

        // A tel: AoR has no domain, use_domain or not: found by its number.
        let sock = udp_client(k.udp());
        let port = sock.local_addr().unwrap().port();
        let contact = format!("sip:phone@127.0.0.1:{port}");
        let msg = register("x", Some(&contact), Some(600), &unique(), 1, port, "ua")
            .replace("To: <sip:x@example.com>", "To: <tel:+15551234567>");
        let r = udp_exchange(&sock, msg);
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(k.ctl_ok(&["ul.dump", "--brief"]), "+15551234567\n");
        let v = k.ctl_json(&["ul.lookup", "+15551234567"]);
        assert_eq!(v["AoR"], "+15551234567", "{v}");
        assert_eq!(k.ctl(&["ul.rm", "+15551234567"]).code(), Some(0));
    }
}

#[test]
fn a_hostile_origin_reaches_the_log_escaped() {
    let k = Kamrs::start("[ctl]\nlisten = \"http://127.0.0.1:0\"\n");
    let addr = http_ctl_addr(&k);
    let mut conn = HttpConn::tcp(addr);
    // Raw bytes of a C1 CSI (U+009B, UTF-8 C2 9B): obs-text, which HTTP
    // lets through in a header value.
    conn.headers = vec![("Origin".into(), "https://evil.example/\u{9b}2J".into())];
    let r = conn
        .try_post(
            br#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
            "application/json",
        )
        .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
    let log = loop {
        let log = k.stderr();
        if log.contains("control API request refused") {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(terminal_controls(log.as_bytes()).is_empty(), "{log:?}");
    assert!(log.contains("\\u{9b}2J"), "{log}");
}
