//! The `kamrsctl` binary runs and knows its version. Being an integration
//! test of the kamrsctl package, this also makes `cargo test --workspace`
//! build the binary before the end-to-end tests in `tests/` look for it.

use std::process::Command;

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_kamrsctl"))
        .arg("--version")
        .output()
        .expect("run kamrsctl");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("kamrsctl {}", env!("CARGO_PKG_VERSION")),
        "{out:?}"
    );
}

fn kamrsctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kamrsctl"))
        .args(args)
        .env_remove("KAMRSCTL_CTL")
        .env_remove("KAMRSCTL_TOKEN")
        .output()
        .expect("run kamrsctl")
}

#[test]
fn help_lists_kamailios_command_names_and_exit_codes() {
    let out = kamrsctl(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "ul.dump",
        "ul.lookup",
        "ul.rm",
        "ul.rm_contact",
        "ul.add",
        "ul.flush",
        "stats",
        "core.uptime",
        "core.version",
        "completions",
        "subscriber",
        "pike.top",
        "Exit codes: 0 ok, 1 not found, 2 usage, 3 kamrs unreachable",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from\n{help}");
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = kamrsctl(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("ul.lookup"), "{shell}:\n{script}");
    }
}

#[test]
fn usage_errors_exit_2_without_contacting_the_daemon() {
    for args in [
        &["ul.lookup"][..],
        &["ul.add", "alice"],
        &["ul.add", "alice", "sip:a@h", "--expires", "-1"],
        &["--ctl", "tcp:1.2.3.4:5", "ul.dump"],
        &["completions", "powershell"],
        &["stats.reset"],
        &["subscriber"],
        &["subscriber", "add"],
        &["subscriber", "rm"],
        &["subscriber", "list", "extra"],
        &["pike.top", "0"],
        &["pike.top", "many"],
    ] {
        let out = kamrsctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn a_password_on_the_command_line_is_refused_and_never_echoed() {
    for args in [
        &[
            "subscriber",
            "add",
            "alice@example.com",
            "--password",
            "hunter2",
        ][..],
        &[
            "subscriber",
            "add",
            "alice@example.com",
            "--password=hunter2",
        ],
        &["subscriber", "add", "alice@example.com", "hunter2"],
        &["subscriber", "add", "alice@example.com", "-p", "hunter2"],
        &[
            "--ctl",
            "unix:/nonexistent/kamrs.sock",
            "subscriber",
            "add",
            "--password-stdin",
            "alice@example.com",
            "hunter2",
        ],
    ] {
        let out = kamrsctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("hunter2"), "{args:?} echoed it: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(
            stderr.contains("--password-stdin") && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
    // The subcommand's help offers no way to pass one.
    let out = kamrsctl(&["subscriber", "add", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--password-stdin"), "{help}");
    assert!(!help.contains("--password "), "{help}");
}
