//! kamcmd habits: Kamailio's argument forms, `kamrsctl call`,
//! tables that fit the width (the vertical layout, plain columns when not
//! a terminal), `--json stats` as an object, positional help, expiry shown
//! one way, `ul.flush` without a store, and the start-up log in English.
//! The real daemon, registered over real SIP, read with the real kamrsctl.

use std::net::UdpSocket;

use kamrs_tests::ctl::*;
use kamrs_tests::*;
use serde_json::{json, Value};

/// A long User-Agent, as a Polycom sends.
const UA_POLYCOM: &str = "Polycom/6.4.3.4533 PolycomVVX-VVX_450-UA/6.4.3.4533";

fn port(sock: &UdpSocket) -> u16 {
    sock.local_addr().expect("local addr").port()
}

fn sip_register(sock: &UdpSocket, aor: &str, contact: &str, call_id: &str, ua: &str) {
    let r = udp_exchange(
        sock,
        register(aor, Some(contact), Some(3600), call_id, 1, port(sock), ua),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// kamrsctl against `k` with extra environment.
fn ctl_env(k: &CtlKamrs, args: &[&str], env: &[(&str, &str)]) -> CtlRun {
    let mut all = vec!["--ctl", k.ctl.as_str()];
    all.extend_from_slice(args);
    kamrsctl(&all, env)
}

fn ok(run: CtlRun) -> String {
    assert_eq!(run.code(), Some(0), "{run:?}");
    run.stdout
}

/// alice with two contacts (one long Polycom User-Agent), bob with one.
fn registered() -> (CtlKamrs, Vec<String>) {
    let k = CtlKamrs::start("", "");
    let sock = k.kamrs.udp_client();
    let p = port(&sock);
    let contacts = vec![
        format!("sip:alice@127.0.0.1:{p};transport=udp"),
        format!("sip:alice@127.0.0.1:{};ob", p + 1),
        format!("sip:bob@127.0.0.1:{p}"),
    ];
    sip_register(&sock, "alice", &contacts[0], "cid-a1", UA_POLYCOM);
    sip_register(&sock, "alice", &contacts[1], "cid-a2", "Yealink SIP-T46S");
    sip_register(&sock, "bob", &contacts[2], "cid-b1", UA_POLYCOM);
    (k, contacts)
}

#[test]
fn kamailios_argument_forms_work() {
    let (k, c) = registered();
    // ul.lookup location AOR is ul.lookup AOR.
    let json_lookup = |args: &[&str]| {
        let mut v = k.ctl_json(args);
        // The seconds left may tick between two runs.
        for c in v["Contacts"].as_array_mut().expect("contacts") {
            c["Contact"]["Expires"] = Value::Null;
        }
        v
    };
    assert_eq!(
        json_lookup(&["ul.lookup", "location", "alice"]),
        json_lookup(&["ul.lookup", "alice"])
    );
    let table = k.ctl_ok(&["ul.lookup", "location", "alice"]);
    assert!(table.starts_with("AoR alice\n"), "{table}");
    // ul.dump brief is ul.dump --brief.
    assert_eq!(k.ctl_ok(&["ul.dump", "brief"]), "alice\nbob\n");
    assert_eq!(
        k.ctl_json(&["ul.dump", "brief"]),
        k.ctl_json(&["ul.dump", "--brief"])
    );
    // stats.get_statistics is stats.
    let stats = k.ctl_ok(&["stats.get_statistics", "usrloc:registered_users"]);
    assert!(stats.contains("usrloc:registered_users"), "{stats}");
    assert_eq!(
        k.ctl_json(&["stats.get_statistics", "all"]),
        k.ctl_json(&["stats", "all"])
    );
    // ul.rm_contact location AOR CONTACT, ul.rm location AOR.
    let out = k.ctl_ok(&["ul.rm_contact", "location", "alice", &c[1]]);
    assert_eq!(out.trim(), format!("removed {} from alice", c[1]));
    let l = k.ctl_json(&["ul.lookup", "alice"]);
    assert_eq!(l["Contacts"].as_array().map(Vec::len), Some(1), "{l}");
    assert_eq!(
        k.ctl_ok(&["ul.rm", "location", "bob"]).trim(),
        "removed AoR bob"
    );
    assert_eq!(k.ctl(&["ul.lookup", "bob"]).code(), Some(1));
    // Another table: a usage error that says which tables there are.
    let run = k.ctl(&["ul.lookup", "locations", "alice"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("`locations` is not a table") && run.stderr.contains("`location`"),
        "{run:?}"
    );
    // ul.add location AOR CONTACT, then the options.
    let out = k.ctl_ok(&[
        "ul.add",
        "location",
        "dave",
        "sip:dave@192.0.2.4",
        "--expires",
        "600",
    ]);
    assert_eq!(
        out.trim(),
        "added sip:dave@192.0.2.4 to dave (expires in 10m 0s)"
    );
    // An AoR called `location` is still an AoR.
    assert_eq!(k.ctl(&["ul.lookup", "location"]).code(), Some(1));
}

#[test]
fn call_reaches_every_listed_method_and_prints_its_json() {
    let (k, _) = registered();
    // The result as the daemon sent it.
    let call = |args: &[&str]| {
        let mut all = vec!["call"];
        all.extend_from_slice(args);
        let out = k.ctl_ok(&all);
        serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
    };
    assert_eq!(
        call(&["core.version"]),
        k.rpc("core.version", json!([]))["result"]
    );
    let l = call(&["ul.lookup", "location", "alice"]);
    assert_eq!(l["AoR"], "alice", "{l}");
    assert_eq!(l["Contacts"].as_array().map(Vec::len), Some(2), "{l}");
    // The Kamailio strings, through `rpc` (the alias).
    let out = k.ctl_ok(&["rpc", "stats.get_statistics", "usrloc:registered_users"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!(["usrloc:registered_users = 2"])
    );
    // Numbers and -1 go as JSON, the rest as strings: ul.add's nine.
    let added = call(&[
        "ul.add",
        "location",
        "carol",
        "sip:carol@192.0.2.50:5060",
        "0",
        "-1",
        "0",
        "0",
        "0",
        "4294967295",
    ]);
    assert_eq!(added, Value::Null);
    let carol = k.rpc("ul.lookup", json!(["location", "carol"]));
    assert_eq!(
        carol["result"]["Contacts"][0]["Contact"]["Expires"], "permanent",
        "{carol}"
    );
    // Every method system.listMethods names is reachable (without its
    // arguments some answer a usage error, none "no such method").
    let methods = call(&["system.listMethods"]);
    let methods = methods.as_array().expect("a list");
    assert!(methods.len() > 10, "{methods:?}");
    for m in methods {
        let m = m.as_str().expect("a name");
        let run = k.ctl(&["call", m]);
        assert!(!run.stderr.contains("has no method"), "{m}: {run:?}");
        assert!(
            run.code() == Some(0) || run.stderr.starts_with("kamrsctl: "),
            "{m}: {run:?}"
        );
    }
    // One that is not there.
    let run = k.ctl(&["call", "ul.frob", "location"]);
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(
        run.stderr.contains("has no method `ul.frob`") && run.stderr.contains("system.listMethods"),
        "{run:?}"
    );
}

/// Every contact URI of `contacts` on one line of `text`, whole.
fn uris_whole(text: &str, contacts: &[String]) {
    for c in contacts {
        assert!(
            text.lines().any(|l| l.split_whitespace().any(|w| w == c)),
            "{c} not whole on one line of\n{text}"
        );
    }
}

#[test]
fn tables_that_do_not_fit_become_records() {
    let (k, c) = registered();
    for (columns, width) in [("60", 60), ("80", 80)] {
        for args in [&["ul.dump"][..], &["ul.lookup", "alice"]] {
            let out = ok(ctl_env(&k, args, &[("COLUMNS", columns)]));
            assert!(out.contains("-[ RECORD 1 ]-"), "{args:?}:\n{out}");
            assert!(out.contains("\nContact:       sip:alice@"), "{out}");
            for line in out.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{args:?} at {columns}: {line:?} is longer\n{out}"
                );
            }
            let want = if args[0] == "ul.dump" {
                &c[..]
            } else {
                &c[..2]
            };
            uris_whole(&out, want);
            // Each User-Agent, folded or not, all there.
            assert!(out.contains("Polycom/6.4.3.4533"), "{out}");
            assert!(out.contains("PolycomVVX-VVX_450-UA/6.4.3.4533"), "{out}");
        }
    }
    let out = ok(ctl_env(&k, &["ul.dump"], &[("COLUMNS", "60")]));
    assert!(
        out.contains("-[ RECORD 3 ]-\nAoR:           bob\n"),
        "{out}"
    );
    assert!(out.ends_with("2 AoRs, 3 contacts\n"), "{out}");
    // Wide enough: the table.
    let out = ok(ctl_env(&k, &["ul.dump"], &[("COLUMNS", "400")]));
    assert!(!out.contains("RECORD"), "{out}");
    // Forced either way.
    let out = ok(ctl_env(
        &k,
        &["--layout", "table", "ul.dump"],
        &[("COLUMNS", "60")],
    ));
    assert!(!out.contains("RECORD") && out.starts_with("AoR "), "{out}");
    let out = ok(ctl_env(
        &k,
        &["--layout", "vertical", "ul.dump"],
        &[("COLUMNS", "")],
    ));
    assert!(out.starts_with("-[ RECORD 1 ]-\nAoR:"), "{out}");
}

#[test]
fn output_that_is_not_a_terminal_is_plain_columns() {
    let (k, c) = registered();
    // A pipe, whatever the locale, no COLUMNS: plain columns, whole lines.
    for lang in ["en_US.UTF-8", "C"] {
        let env = [("COLUMNS", ""), ("LC_ALL", lang)];
        let out = ok(ctl_env(&k, &["ul.dump"], &env));
        assert!(out.is_ascii(), "box drawing in a pipe:\n{out}");
        assert!(!out.contains('|') && !out.contains("+-"), "{out}");
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
        assert_eq!(
            header,
            [
                "AoR",
                "Contact",
                "Expires",
                "Q",
                "Received",
                "User-Agent",
                "Last-Modified"
            ]
        );
        // One line per contact, each with its URI whole.
        let rows: Vec<&str> = lines.take(3).collect();
        for (row, uri) in rows.iter().zip([&c[0], &c[1], &c[2]]) {
            assert!(row.split_whitespace().any(|w| w == uri), "{row:?}\n{out}");
        }
        assert!(out.ends_with("2 AoRs, 3 contacts\n"), "{out}");
        let stats = ok(ctl_env(&k, &["stats", "usrloc:"], &env));
        assert!(stats.starts_with("Statistic "), "{stats}");
        assert!(
            stats
                .lines()
                .any(|l| l.split_whitespace().eq(["usrloc:registered_users", "2"])),
            "{stats}"
        );
    }
}

#[test]
fn json_stats_is_an_object_of_numbers() {
    let (k, _) = registered();
    let all = k.ctl_json(&["stats"]);
    let object = all
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {all}"));
    assert!(object.len() > 20, "{all}");
    for (name, value) in object {
        assert!(name.contains(':'), "{name}");
        assert!(value.is_u64(), "{name}: {value}");
    }
    assert_eq!(all["usrloc:registered_users"], 2, "{all}");
    assert_eq!(all["registrar:accepted_regs"], 3, "{all}");
    assert_eq!(
        k.ctl_json(&[
            "stats",
            "registrar:accepted_regs",
            "usrloc:registered_users"
        ]),
        json!({"registrar:accepted_regs": 3, "usrloc:registered_users": 2})
    );
    // The same statistics as Kamailio's strings, which `call` still gives.
    let out = k.ctl_ok(&["call", "stats.get_statistics", "all"]);
    let lines: Vec<String> = serde_json::from_str(&out).expect("a list of strings");
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once(" = ").map(|(n, _)| n))
        .collect();
    assert_eq!(names.len(), lines.len(), "{lines:?}");
    for name in &names {
        assert!(object.contains_key(*name), "{name} missing from {all}");
    }
    assert_eq!(names.len(), object.len());
}

#[test]
fn positional_arguments_have_help() {
    let help = |args: &[&str]| ok(kamrsctl(args, &[]));
    let rm_contact = help(&["ul.rm_contact", "--help"]);
    for want in [
        "[location] <AOR> <CONTACT>",
        "<CONTACT>",
        "byte for byte",
        "RFC 3261",
        "ul.lookup AOR",
    ] {
        assert!(rm_contact.contains(want), "{want:?} in\n{rm_contact}");
    }
    let lookup = help(&["ul.lookup", "--help"]);
    assert!(
        lookup.contains("[location] <AOR>") && lookup.contains("use_domain"),
        "{lookup}"
    );
    let call = help(&["call", "--help"]);
    assert!(
        call.contains("<METHOD>") && call.contains("as JSON"),
        "{call}"
    );
    let stats = help(&["stats", "--help"]);
    assert!(stats.contains("usrloc:registered_users"), "{stats}");
}

#[test]
fn expiry_reads_the_same_in_every_output() {
    let k = CtlKamrs::start("", "");
    let out = k.ctl_ok(&[
        "ul.add",
        "alice",
        "sip:alice@192.0.2.1",
        "--expires",
        "3600",
    ]);
    assert_eq!(
        out.trim(),
        "added sip:alice@192.0.2.1 to alice (expires in 1h 0m 0s)"
    );
    let out = ok(ctl_env(
        &k,
        &["--layout", "vertical", "ul.lookup", "alice"],
        &[],
    ));
    let expires = out
        .lines()
        .find_map(|l| l.strip_prefix("Expires:"))
        .unwrap_or_else(|| panic!("{out}"))
        .trim();
    // Hours, minutes and seconds, or minutes and seconds: never a
    // rounded `1h 0m`.
    assert!(
        expires == "1h 0m 0s"
            || expires
                .strip_prefix("59m ")
                .and_then(|s| s.strip_suffix('s'))
                .is_some_and(|s| s.parse::<u32>().is_ok()),
        "{expires:?}"
    );
}

#[test]
fn ul_flush_says_whether_there_was_anything_to_flush() {
    let k = CtlKamrs::start("", "");
    let out = k.ctl_ok(&["ul.flush"]);
    assert!(out.starts_with("nothing to flush: "), "{out}");
    assert!(out.contains("[store] backend"), "{out}");
    assert_eq!(k.ctl_json(&["ul.flush"]), Value::Null);

    let dir = TempDir::new("ctl-flush");
    let db = dir.path().join("location.db");
    let k = CtlKamrs::start(
        &format!(
            "[store]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            db.display()
        ),
        "",
    );
    let out = k.ctl_ok(&["ul.flush"]);
    assert_eq!(
        out.trim(),
        "flushed: every change is written to the sqlite store"
    );
    // The start-up log names the mode as the config does.
    let log = k
        .kamrs
        .log_when(|l| l.contains("sqlite location store open"));
    assert!(log.contains("sqlite location store open"), "{log}");
    assert!(log.contains("mode=write-through"), "{log}");
    assert!(!log.contains("WriteThrough"), "{log}");
    assert!(
        log.contains("preloaded 0 bindings of 0 AoRs from the sqlite store in "),
        "{log}"
    );
    assert!(!log.contains("the others expired"), "{log}");
}

/// On a real terminal (a pty from util-linux `script`): box drawing with
/// a UTF-8 locale, ASCII borders with another one, records when the table
/// is wider than the terminal.
#[test]
fn a_terminal_gets_borders_that_its_locale_can_show() {
    // Fails under CI=true rather than skipping (util-linux is on every
    // Debian machine).
    if !kamrs_tests::have("script") {
        return;
    }
    let (k, c) = registered();
    let on_tty = |env: &[(&str, &str)]| {
        // script runs the command on a pty and copies what it printed.
        let command = format!(
            "{} --ctl {} ul.lookup alice",
            kamrsctl_bin().display(),
            k.ctl
        );
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &command, "/dev/null"])
            .env_remove("LC_ALL")
            .env_remove("LC_CTYPE")
            .env_remove("LANG")
            .stdin(std::process::Stdio::null());
        for (name, value) in env {
            cmd.env(name, value);
        }
        let out = run_bounded(cmd, CTL_TIMEOUT);
        out.replace("\r\n", "\n")
    };
    let utf8 = on_tty(&[("COLUMNS", "300"), ("LANG", "C.UTF-8")]);
    assert!(utf8.contains('┆') && utf8.contains('┌'), "{utf8}");
    uris_whole(&utf8, &c[..2]);
    let ascii = on_tty(&[("COLUMNS", "300"), ("LC_ALL", "C"), ("LANG", "en_US.UTF-8")]);
    assert!(ascii.is_ascii(), "{ascii}");
    assert!(
        ascii.contains("+----") && ascii.contains("| Contact"),
        "{ascii}"
    );
    uris_whole(&ascii, &c[..2]);
    let narrow = on_tty(&[("COLUMNS", "60"), ("LANG", "C.UTF-8")]);
    assert!(narrow.contains("-[ RECORD 2 ]-"), "{narrow}");
    for line in narrow.lines() {
        assert!(line.chars().count() <= 60, "{line:?}\n{narrow}");
    }
}

/// Runs `cmd`, killed (and the test failed) past `limit`; its stdout.
fn run_bounded(mut cmd: std::process::Command, limit: std::time::Duration) -> String {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{cmd:?}: {status:?}");
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reader.join().unwrap_or_default()
}
