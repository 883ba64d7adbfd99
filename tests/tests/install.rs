//! Installing and running kamrs as a service: `kamrs --check`,
//! the example config, the manual pages, and the per-user control socket
//! of a kamrs that is not root.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use kamrs_tests::ctl::kamrsctl_as;
use kamrs_tests::*;

/// `nobody`: the unprivileged user the tests drop to.
const NOBODY: u32 = 65534;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() == 0 };
    // CI runs as root: there a skip would hide a test that never ran.
    assert!(
        root || std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but not root: the non-root tests need root to drop privileges"
    );
    root
}

/// A directory owned by `nobody`, mode 0700, like a real XDG_RUNTIME_DIR.
fn runtime_dir_for_nobody(parent: &Path) -> PathBuf {
    let dir = parent.join("xdg");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

// ---------------------------------------------------------------- --check

#[test]
fn check_accepts_a_good_config_and_binds_nothing() {
    let dir = TempDir::new("check-ok");
    // A port that is taken: --check must not try to bind it.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = dir.path().join("kamrs.toml");
    let secret = dir.path().join("state").join("nonce.secret");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"udp:{}\"]\n[auth]\nmode = \"digest\"\nsecret_file = \"{}\"\nsubscribers = \"{}\"\n[store]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            taken.local_addr().unwrap(),
            secret.display(),
            dir.path().join("subscribers.toml").display(),
            dir.path().join("location.db").display(),
        ),
    )
    .unwrap();
    let out = run_kamrs(&["--check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("config OK: {} (listen udp:", cfg.display())),
        "{out:?}"
    );
    assert!(out.stdout.contains("auth digest, 0 subscribers"), "{out:?}");
    assert!(out.stdout.contains("store sqlite"), "{out:?}");
    assert!(!out.stdout.contains("ready"), "{out:?}");
    // Nothing created: no secret, no database.
    assert!(!secret.exists() && !secret.parent().unwrap().exists());
    assert!(!dir.path().join("location.db").exists());
}

#[test]
fn check_refuses_bad_configs_with_the_reason() {
    let dir = TempDir::new("check-bad");
    let cfg = dir.path().join("kamrs.toml");
    let cfg_s = cfg.to_str().unwrap();

    // A bad key: exit 2, file, line and key, as at start.
    std::fs::write(&cfg, "min_expires = 30\nmax_contacs = 4\n").unwrap();
    let out = run_kamrs(&["--check", "--config", cfg_s]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("kamrs: {cfg_s}:2: unknown key `max_contacs`")),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");

    // A value out of range.
    std::fs::write(&cfg, "max_expires = 0\n").unwrap();
    let out = run_kamrs(&["--check", "--config", cfg_s]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("max_expires"), "{out:?}");

    // A subscriber list that does not parse: exit 1 naming the file.
    let subs = dir.path().join("subscribers.toml");
    std::fs::write(&subs, "[[subscriber]]\nusername = \n").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[auth]\nmode = \"digest\"\nsecret_file = \"{}\"\nsubscribers = \"{}\"\n",
            dir.path().join("nonce.secret").display(),
            subs.display()
        ),
    )
    .unwrap();
    let out = run_kamrs(&["--check", "--config", cfg_s]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.starts_with("kamrs: ") && out.stderr.contains(subs.to_str().unwrap()),
        "{out:?}"
    );

    // The SQLite store's directory is missing.
    let db = dir.path().join("missing").join("location.db");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = run_kamrs(&["--check", "--config", cfg_s]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

// ---------------------------------------------------------------- example config

#[test]
fn example_config_passes_check_and_is_the_default() {
    let example = repo_file("kamrs.example.toml");
    let out = run_kamrs(&["--check", "--config", example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.starts_with("config OK: "), "{out:?}");

    // With every `#key = default` line uncommented it prints the same
    // configuration as no file at all.
    let dir = TempDir::new("example");
    let active: String = std::fs::read_to_string(&example)
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let active_path = dir.path().join("active.toml");
    std::fs::write(&active_path, &active).unwrap();
    let printed = run_kamrs(&["--config", active_path.to_str().unwrap(), "--print-config"]);
    assert_eq!(printed.status.code(), Some(0), "{printed:?}");
    let defaults = run_kamrs(&["--print-config"]);
    assert_eq!(printed.stdout, defaults.stdout);
}

// ---------------------------------------------------------------- man pages

#[test]
fn man_pages_are_generated_from_the_current_command_line() {
    let regenerate = "regenerate them with `cargo build -p kamrs -p kamrsctl && rm docs/man/*.8 && target/debug/kamrs --man > docs/man/kamrs.8 && target/debug/kamrsctl man --dir docs/man`";
    let man_dir = repo_file("docs/man");
    let committed = |name: &str| std::fs::read_to_string(man_dir.join(name)).unwrap_or_default();
    let kamrs = run_kamrs(&["--man"]);
    assert!(
        kamrs.status.success() && kamrs.stdout.starts_with(".ie"),
        "{kamrs:?}"
    );
    assert!(
        committed("kamrs.8") == kamrs.stdout,
        "docs/man/kamrs.8 is stale: {regenerate}"
    );

    // kamrsctl: its page and one per command, exactly the committed set.
    let dir = TempDir::new("man");
    let run = kamrs_tests::ctl::kamrsctl(&["man", "--dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let names = |d: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("kamrsctl") && n.ends_with(".8"))
            .collect()
    };
    let generated = names(dir.path());
    assert!(generated.contains("kamrsctl.8") && generated.contains("kamrsctl-ul.dump.8"));
    assert_eq!(
        generated,
        names(&man_dir),
        "docs/man is stale: {regenerate}"
    );
    for name in &generated {
        let fresh = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(
            committed(name) == fresh,
            "docs/man/{name} is stale: {regenerate}"
        );
    }
    // Without --dir, the main page on stdout.
    let page = kamrs_tests::ctl::kamrsctl(&["man"], &[]);
    assert_eq!(page.stdout, committed("kamrsctl.8"));
}

// ---------------------------------------------------------------- non-root

/// A kamrs that is not root cannot create /run/kamrs: it serves its
/// control API on $XDG_RUNTIME_DIR/kamrs/kamrs.sock, says so on stdout, and
/// kamrsctl (same user, same XDG_RUNTIME_DIR, no --ctl) finds it there.
#[test]
fn non_root_kamrs_uses_the_per_user_socket_and_kamrsctl_finds_it() {
    if !is_root() {
        eprintln!("skipped: needs root to drop privileges to nobody");
        return;
    }
    let dir = TempDir::new("nonroot");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let xdg = runtime_dir_for_nobody(dir.path());
    let xdg_s = xdg.to_str().unwrap().to_owned();
    let env_xdg = xdg_s.clone();
    // No [ctl] and no --ctl: the built-in default endpoint.
    let k = Kamrs::start_custom("listen = [\"udp:127.0.0.1:0\"]\n", &[], false, move |cmd| {
        cmd.env("XDG_RUNTIME_DIR", &env_xdg).uid(NOBODY).gid(NOBODY);
    });
    let socket = xdg.join("kamrs").join("kamrs.sock");
    assert_eq!(
        k.control.as_deref(),
        Some(format!("unix:{}", socket.display()).as_str()),
        "{}",
        k.stderr()
    );
    assert!(
        k.log_when(|l| l.contains("per-user socket"))
            .contains("per-user socket"),
        "the log says why: {}",
        k.stderr()
    );
    let env = [("XDG_RUNTIME_DIR", xdg_s.as_str())];
    let run = kamrsctl_as(&["core.version"], &env, Some(NOBODY));
    assert_eq!(run.code(), Some(0), "{run:?}\n{}", k.stderr());
    assert!(run.stdout.starts_with("kamrs "), "{run:?}");
    // Root may use it too (the socket admits root and kamrs's own uid).
    let run = kamrsctl_as(
        &[
            "--ctl",
            &format!("unix:{}", socket.display()),
            "core.version",
        ],
        &[],
        None,
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
}

/// Without a socket to find, kamrsctl says where it looked, that kamrs may
/// be running without one, and how to point at one.
#[test]
fn kamrsctl_without_a_socket_says_what_to_do() {
    if !is_root() {
        eprintln!("skipped: needs root to drop privileges to nobody");
        return;
    }
    let dir = TempDir::new("nosock");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let xdg = runtime_dir_for_nobody(dir.path());
    // As nobody, so that a root kamrs on this machine using the default
    // socket cannot answer.
    let run = kamrsctl_as(
        &["core.version"],
        &[("XDG_RUNTIME_DIR", xdg.to_str().unwrap())],
        Some(NOBODY),
    );
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("kamrsctl: cannot reach kamrs control socket /run/kamrs/kamrs.sock: "),
        "{run:?}"
    );
    for part in [
        &format!(
            "also tried the per-user socket {}/kamrs/kamrs.sock: it does not exist",
            xdg.display()
        ) as &str,
        "without a control socket",
        "--ctl unix:PATH",
    ] {
        assert!(run.stderr.contains(part), "{part:?} missing: {run:?}");
    }
}

/// kamrs as nobody without a usable XDG_RUNTIME_DIR (unset, or another
/// user's directory): no control socket, and both its stdout (`control
/// none`) and its log say so; SIP is served all the same.
#[test]
fn non_root_kamrs_without_runtime_dir_says_it_has_no_control_socket() {
    if !is_root() {
        eprintln!("skipped: needs root to drop privileges to nobody");
        return;
    }
    let dir = TempDir::new("noxdg");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root's and writable by all: nobody could create its socket there,
    // and root (or anyone) could then replace it; not a runtime dir of
    // nobody's, so not used.
    let roots = dir.path().join("root-xdg");
    std::fs::create_dir(&roots).unwrap();
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o777)).unwrap();
    for xdg in [None, Some(roots.clone())] {
        let k = Kamrs::start_custom("listen = [\"udp:127.0.0.1:0\"]\n", &[], false, |cmd| {
            match &xdg {
                None => cmd.env_remove("XDG_RUNTIME_DIR"),
                Some(d) => cmd.env("XDG_RUNTIME_DIR", d),
            };
            cmd.uid(NOBODY).gid(NOBODY);
        });
        assert_eq!(
            k.control.as_deref(),
            Some("none"),
            "{xdg:?}: {}",
            k.stderr()
        );
        assert!(
            k.log_when(|l| l.contains("control API disabled, kamrsctl cannot reach this kamrs"))
                .contains("control API disabled, kamrsctl cannot reach this kamrs"),
            "{}",
            k.stderr()
        );
        assert_udp_alive(&k.udp_client());
    }
    assert!(!roots.join("kamrs").exists());
}

// ---------------------------------------------------------------- systemd unit

/// dist/kamrs.service has what the issue asks for, and `systemd-analyze
/// verify` (when installed) accepts it, with the binary paths pointed at
/// the binary under test (and the man pages, which need installing, left
/// out).
#[test]
fn systemd_unit_is_complete_and_verifies() {
    let unit = std::fs::read_to_string(repo_file("dist/kamrs.service")).unwrap();
    for line in [
        "User=kamrs",
        "RuntimeDirectory=kamrs",
        "StateDirectory=kamrs",
        "ConfigurationDirectory=kamrs",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStartPre=/usr/local/bin/kamrs --check --config /etc/kamrs/kamrs.toml",
        "ExecStart=/usr/local/bin/kamrs --config /etc/kamrs/kamrs.toml",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "dist/kamrs.service lacks {line}"
        );
    }
    // Not required (CI containers seldom have systemd): checked when there.
    let analyze = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !analyze {
        eprintln!("systemd-analyze not installed: only the directives were checked");
        return;
    }
    let dir = TempDir::new("unit");
    let local: String = unit
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| {
            format!(
                "{}\n",
                l.replace("/usr/local/bin/kamrs", kamrs_bin().to_str().unwrap())
            )
        })
        .collect();
    let path = dir.path().join("kamrs.service");
    std::fs::write(&path, local).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {out:?}"
    );
}
