//! Issue 14, "messages in the user's words": config errors say what a key
//! takes (not serde's `expected u32`) and suggest the key meant; a list key
//! may be one string; kamrsctl's value errors name its flags and never
//! suggest `-- -1`. Through the real binaries.

use kamrs_tests::ctl::CtlKamrs;
use kamrs_tests::*;

/// Runs `kamrs --config FILE` on `text`; returns (exit code, stderr).
fn kamrs_on(text: &str) -> (Option<i32>, String, String) {
    let dir = TempDir::new("msgcfg");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write config");
    let out = run_kamrs(&["--config", path.to_str().expect("utf-8 path")]);
    let shown = path.display().to_string();
    (out.status.code(), out.stderr, shown)
}

#[test]
fn bad_config_files_get_one_line_in_the_admins_words() {
    let cases: &[(&str, &str)] = &[
        (
            "max_expires = \"3600\"\n",
            ":1: key `max_expires`: expected a whole number of seconds, e.g. 3600, not the string \"3600\" (write it without quotes)",
        ),
        (
            "\n\nmin_expires = 1h\n",
            ":3: key `min_expires`: expected a whole number of seconds, e.g. 60, not `1h` (no units: write the number of seconds)",
        ),
        (
            "use_path = yes\n",
            ":1: key `use_path`: expected true or false, not `yes`",
        ),
        (
            "min_expire = 30\n",
            ":1: unknown key `min_expire`: did you mean `min_expires`?",
        ),
        (
            "[auth]\nmode = \"digest\"\nmax_expires = 600\n",
            ":3: unknown key `auth.max_expires`: `max_expires` is a top-level key; move it above the first `[table]` header (in TOML every key below `[auth]` belongs to it)",
        ),
    ];
    for (text, want) in cases {
        let (code, stderr, path) = kamrs_on(text);
        assert_eq!(code, Some(2), "exit code for {text:?}: {stderr}");
        assert_eq!(stderr, format!("kamrs: {path}{want}\n"), "for {text:?}");
    }
}

#[test]
fn listen_as_one_string_starts_and_serves() {
    let k = Kamrs::start_with_config("listen = \"udp:127.0.0.1:0\"\n", &[]);
    assert_eq!(k.listening.len(), 1, "{:?}", k.listening);
    assert!(
        k.listening[0].starts_with("udp:127.0.0.1:"),
        "{:?}",
        k.listening
    );
    assert_udp_alive(&k.udp_client());
}

/// A usage error of kamrsctl: exit 2 and exactly one line on stderr.
fn one_line_usage_error(run: &kamrs_tests::ctl::CtlRun) -> &str {
    assert_eq!(run.code(), Some(2), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {run:?}");
    lines[0]
}

#[test]
fn kamrsctl_value_errors_name_the_flag_in_plain_words() {
    let k = CtlKamrs::start("", "");
    let run = k.ctl(&["ul.add", "alice", "sip:alice@192.0.2.10", "--expires", "-1"]);
    assert_eq!(
        one_line_usage_error(&run),
        "kamrsctl: --expires \"-1\": expires must be 0 or more seconds (0: never expires)"
    );
    assert!(!run.stderr.contains("-- -1"), "{run:?}");

    for q in ["2", "abc", "-0.5"] {
        let run = k.ctl(&["ul.add", "alice", "sip:alice@192.0.2.10", "--q", q]);
        assert_eq!(
            one_line_usage_error(&run),
            format!("kamrsctl: --q \"{q}\": q must be a number from 0 to 1, e.g. 0.5 (or -1 to leave it unset)")
        );
    }
    let run = k.ctl(&[
        "ul.add",
        "alice",
        "sip:alice@192.0.2.10",
        "--expires",
        "soon",
    ]);
    let line = one_line_usage_error(&run);
    assert!(
        line.contains("--expires") && line.contains("whole number of seconds"),
        "{line}"
    );
    assert!(!line.contains("invalid digit"), "{line}");

    // What the daemon refuses is named as the command line names it.
    let run = k.ctl(&["ul.add", "alice", "not a uri"]);
    let line = one_line_usage_error(&run);
    assert!(line.starts_with("kamrsctl: ul.add: CONTACT: "), "{line}");
    assert!(
        line.contains("not a SIP URI") && !line.contains("argument 3"),
        "{line}"
    );

    // Nothing was added by any of these.
    let run = k.ctl(&["ul.lookup", "alice"]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    // And a good one still works.
    k.ctl_ok(&[
        "ul.add",
        "alice",
        "sip:alice@192.0.2.10",
        "--expires",
        "60",
        "--q",
        "0.5",
    ]);
}

#[test]
fn daemon_flag_values_are_described_in_words() {
    let out = run_kamrs(&["--max-expires", "-1", "--print-config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("'--max-expires <SECONDS>': expected a whole number of seconds, e.g. 3600; it cannot be negative"),
        "{}",
        out.stderr
    );
    let out = run_kamrs(&["--max-contacts", "ten", "--print-config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("expected a whole number, e.g. 10"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("invalid digit"), "{}", out.stderr);
}
