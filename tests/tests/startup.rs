//! The daemon's start-up and stop contract: `--print-config`, config and
//! bind errors with their exit codes, and clean stops on SIGTERM/SIGINT.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use kamrs_tests::*;

#[test]
fn print_config_shows_the_effective_config() {
    let dir = TempDir::new("printcfg");
    let path = dir.path().join("kamrs.toml");
    std::fs::write(&path, "max_expires = 7200\n[log]\nlevel = \"warn\"\n").unwrap();
    let out = run_kamrs(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "udp:[::1]:5070",
        "--max-contacts",
        "3",
        "--print-config",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("listen = [\"udp:[::1]:5070\"]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("max_expires = 7200"), "{}", out.stdout);
    assert!(out.stdout.contains("max_contacts = 3"), "{}", out.stdout);
    assert!(out.stdout.contains("level = \"warn\""), "{}", out.stdout);
    assert!(
        out.stdout.contains("default_expires = 3600"),
        "{}",
        out.stdout
    );
    // What it prints loads back.
    std::fs::write(&path, &out.stdout).unwrap();
    let again = run_kamrs(&["--config", path.to_str().unwrap(), "--print-config"]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn bad_config_stops_startup_naming_file_line_and_key() {
    let dir = TempDir::new("badcfg");
    let path = dir.path().join("kamrs.toml");
    std::fs::write(&path, "min_expires = 30\nmax_contacs = 4\n").unwrap();
    let out = run_kamrs(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let expected = format!("kamrs: {}:2: unknown key `max_contacs`", path.display());
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    std::fs::write(&path, "listen = [\"udp:127.0.0.1\"]\n").unwrap();
    let out = run_kamrs(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains(":1: key `listen`"), "{}", out.stderr);

    let out = run_kamrs(&["--config", dir.path().join("nope.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
}

#[test]
fn bad_flag_values_stop_startup() {
    let out = run_kamrs(&["--listen", "udp:localhost:5060", "--print-config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("IP address"), "{}", out.stderr);
    let out = run_kamrs(&["--min-expires", "9000", "--print-config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("min_expires"), "{}", out.stderr);
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp:{}", taken.local_addr().unwrap());
    let out = run_kamrs(&["--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
    assert!(out.stderr.contains("port in use"), "{}", out.stderr);
    assert!(!out.stdout.contains("ready"), "{}", out.stdout);
}

#[test]
fn announces_every_socket_then_ready() {
    let k = Kamrs::start_with_config(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"udp:127.0.0.1:0\"]\n",
        &[],
    );
    assert_eq!(k.listening.len(), 3, "{:?}", k.listening);
    for l in &k.listening {
        assert!(!l.ends_with(":0"), "real port announced: {l}");
    }
    // Both UDP sockets serve.
    for l in k.listening.iter().filter(|l| l.starts_with("udp:")) {
        let sock = udp_client(l[4..].parse().unwrap());
        assert_udp_alive(&sock);
    }
}

fn stops_cleanly_on(sig: i32) {
    let mut k = Kamrs::start("");
    assert_udp_alive(&k.udp_client());
    let t0 = Instant::now();
    k.signal(sig);
    let status = k
        .wait_exit(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("still running 3 s after signal {sig}\n{}", k.stderr()));
    assert!(status.success(), "exit status {status:?}\n{}", k.stderr());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn sigterm_stops_cleanly() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_cleanly() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn sigterm_with_open_tcp_connections_still_stops() {
    let mut k = Kamrs::start("");
    let mut c = k.tcp_connect();
    assert_tcp_alive(&mut c);
    let t0 = Instant::now();
    k.signal(libc::SIGTERM);
    let status = k.wait_exit(Duration::from_secs(3)).expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    assert!(matches!(
        wait_closed(&mut c, REPLY_TIMEOUT),
        Closed::Yes { .. }
    ));
}
