use super::*;

use std::path::{Path, PathBuf};

use crate::peer::{ListenAddr, Proto};
use crate::registrar::{MaxContactsPolicy, MinExpiresMode};
use crate::store::StoreMode;

fn parse(text: &str) -> Result<Config, String> {
    Config::from_toml_str(text, "kamrs.toml").map_err(|e| e.to_string())
}

/// The registrar's own defaults are the embedded configuration's.
#[test]
fn registrar_defaults_match_the_embedded_config() {
    assert_eq!(
        format!("{:?}", crate::registrar::Settings::from(&Config::default())),
        format!("{:?}", crate::registrar::Settings::default())
    );
}

#[test]
fn empty_file_is_the_default() {
    let c = parse("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(
        c.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
    );
    assert_eq!(c.default_expires, 3600);
    assert_eq!(c.min_expires, 60);
    assert_eq!(c.min_expires_mode, MinExpiresMode::Reject);
    // MD5 alone: SIPp and baresip 1.0 refuse a 401 with any SHA-256
    // challenge (README, Authentication).
    assert_eq!(c.auth.algorithms, [crate::auth::Algorithm::Md5]);
    assert_eq!(c.max_expires, 3600);
    assert_eq!(c.max_contacts, 10);
    assert_eq!(c.max_contacts_policy, MaxContactsPolicy::Reject);
    assert!(!c.use_domain);
    assert!(!c.use_path);
    assert_eq!(c.contact_max_size, 512);
    assert_eq!((c.callid_max_size, c.user_agent_max_size), (255, 255));
    assert_eq!((c.max_bindings, c.max_table_bytes), (1_000_000, 1 << 30));
    assert_eq!(c.udp_reply_max_size, 65_507);
    assert_eq!(c.pike.max_tracked, 200_000);
    assert_eq!(c.max_message_size, 65536);
    assert_eq!(c.max_headers, 64);
    assert_eq!(c.max_line_length, 8192);
    assert_eq!(c.tcp_connection_lifetime, 120);
    assert_eq!(c.tcp_max_connections, 2048);
    assert_eq!(c.tcp_accept_iplimit, 256);
    assert_eq!((c.tcp_msg_read_timeout, c.tcp_msg_data_timeout), (20, 20));
    assert_eq!((c.tcp_conn_wq_max, c.tcp_send_timeout), (262_144, 10));
    assert_eq!(c.tcp_wq_max, 10_485_760);
    assert!(!c.force_rport);
    assert_eq!(c.udp_workers, 0);
    assert_eq!(c.ctl.listen, "unix:/run/kamrs/kamrs.sock");
    assert_eq!(c.log.level, LogLevel::Info);
}

#[test]
fn every_key_parses() {
    let c = parse(
        r#"
listen = ["udp:0.0.0.0:5070", "tcp:[::1]:5071", "UDP:[2001:db8::1]:0"]
default_expires = 1800
min_expires = 30
min_expires_mode = "raise"
max_expires = 7200
max_contacts = 5
max_contacts_policy = "evict-oldest"
use_domain = true
use_path = true
contact_max_size = 1024
max_message_size = 32768
max_headers = 100
max_line_length = 4096
tcp_connection_lifetime = 30
tcp_max_connections = 10
tcp_accept_iplimit = 3
tcp_msg_read_timeout = 4
tcp_msg_data_timeout = 5
tcp_conn_wq_max = 65536
tcp_send_timeout = 6
tcp_wq_max = 1048576
force_rport = true
udp_workers = 3

[ctl]
listen = "http://127.0.0.1:5065"

[auth]
mode = "digest"
realm = "example.com"
algorithms = ["MD5"]
nonce_expires = 60
max_failures = 5
lockout_failures = 4
lockout_source_failures = 0
lockout_user_failures = 40
lockout_window = 30
lockout_time = 20
secret_file = "/tmp/secret"
subscribers = "/tmp/subs.toml"

[pike]
enabled = false
window = 5
max_requests = 10
block_time = 60
trusted = ["10.0.0.0/8"]

[log]
level = "debug"
"#,
    )
    .unwrap();
    assert_eq!(c.auth.mode, AuthMode::Digest);
    assert_eq!(c.auth.realm.as_deref(), Some("example.com"));
    assert_eq!(c.auth.algorithms, [crate::auth::Algorithm::Md5]);
    assert_eq!((c.auth.nonce_expires, c.auth.max_failures), (60, 5));
    assert_eq!(
        c.auth.lockout(),
        crate::auth::lockout::LockoutSettings {
            failures: 4,
            source_failures: 0,
            user_failures: 40,
            window: 30,
            time: 20,
        }
    );
    assert_eq!(c.auth.subscribers, PathBuf::from("/tmp/subs.toml"));
    assert!(!c.pike.enabled && c.pike.settings().is_none());
    assert_eq!(
        (c.pike.window, c.pike.max_requests, c.pike.block_time),
        (5, 10, 60)
    );
    assert_eq!(c.pike.trusted, ["10.0.0.0/8"]);
    assert_eq!(
        c.listen,
        [
            ListenAddr::new(Proto::Udp, "0.0.0.0:5070".parse().unwrap()),
            ListenAddr::new(Proto::Tcp, "[::1]:5071".parse().unwrap()),
            ListenAddr::new(Proto::Udp, "[2001:db8::1]:0".parse().unwrap()),
        ]
    );
    assert_eq!(c.default_expires, 1800);
    assert_eq!(c.min_expires, 30);
    assert_eq!(c.min_expires_mode, MinExpiresMode::Raise);
    assert_eq!(c.max_expires, 7200);
    assert_eq!(c.max_contacts, 5);
    assert_eq!(c.max_contacts_policy, MaxContactsPolicy::EvictOldest);
    assert!(c.use_domain);
    assert!(c.use_path);
    assert_eq!(c.contact_max_size, 1024);
    assert_eq!(c.max_message_size, 32768);
    assert_eq!(c.max_headers, 100);
    assert_eq!(c.max_line_length, 4096);
    assert_eq!(c.tcp_connection_lifetime, 30);
    assert_eq!(c.tcp_max_connections, 10);
    assert_eq!(c.tcp_accept_iplimit, 3);
    assert_eq!((c.tcp_msg_read_timeout, c.tcp_msg_data_timeout), (4, 5));
    assert_eq!((c.tcp_conn_wq_max, c.tcp_send_timeout), (65536, 6));
    assert_eq!(c.tcp_wq_max, 1_048_576);
    assert!(c.force_rport);
    assert_eq!(c.udp_workers, 3);
    assert_eq!(c.ctl.listen, "http://127.0.0.1:5065");
    assert_eq!(c.log.level, LogLevel::Debug);
    let limits = c.limits();
    assert_eq!(limits.max_message_size, 32768);
    assert_eq!(limits.max_headers, 100);
    assert_eq!(limits.max_line_length, 4096);
}

#[test]
fn an_open_registrar_needs_to_be_asked_for() {
    let err = parse("listen = [\"udp:192.0.2.1:5060\"]\n").unwrap_err();
    assert!(
        err.contains("listen") && err.contains(":1:") && err.contains("digest"),
        "{err}"
    );
    assert!(
        parse("listen = [\"udp:192.0.2.1:5060\"]\n[auth]\nallow_open_registrar = true\n").is_ok()
    );
    assert!(parse("listen = [\"udp:192.0.2.1:5060\"]\n[auth]\nmode = \"digest\"\n").is_ok());
    assert!(parse("listen = [\"udp:127.0.0.1:5060\", \"udp:[::1]:5060\"]\n").is_ok());
    let err = parse("[auth]\nlockout_time = 0\n").unwrap_err();
    assert!(
        err.contains("auth.lockout_time") && err.contains("1..=86400"),
        "{err}"
    );
    let err = parse("[auth]\nlockout_failures = 2000000\n").unwrap_err();
    assert!(
        err.contains("auth.lockout_failures") && err.contains("0 turns"),
        "{err}"
    );
    let err = parse("[pike]\ntrusted = [\"10.0.0.0/99\"]\n").unwrap_err();
    assert!(err.contains("pike.trusted"), "{err}");
}

#[test]
fn printed_config_loads_back_identical() {
    let mut c = Config::default();
    c.listen.push("tcp:[::1]:0".parse().unwrap());
    c.max_contacts_policy = MaxContactsPolicy::EvictOldest;
    c.log.level = LogLevel::Trace;
    let text = c.to_toml_string();
    assert!(text.contains("listen = ["), "{text}");
    assert!(text.contains("[ctl]"), "{text}");
    assert_eq!(parse(&text).unwrap(), c);
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = parse("default_expires = 10\n\nfoo = 1\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: unknown key `foo`"), "{e}");
}

#[test]
fn unknown_key_in_a_table_names_the_table() {
    let e = parse("min_expires = 5\n[log]\nlevel = \"info\"\nfile = \"x\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:4: unknown key `log.file`"), "{e}");
    let e = parse("[nope]\nx = 1\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: unknown key `nope`"), "{e}");
}

#[test]
fn max_headers_out_of_range_names_the_key() {
    for v in [0, 10_001] {
        let e = parse(&format!("max_headers = {v}\n")).unwrap_err();
        assert!(e.contains("max_headers"), "{e}");
        assert!(e.contains("out of range 1..=10000"), "{e}");
    }
    assert!(parse("max_headers = 10000\n").is_ok());
}

#[test]
fn max_expires_zero_is_refused_with_the_reason_and_only_that() {
    let e = parse("max_expires = 0\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `max_expires`"), "{e}");
    assert!(e.contains("no bound") && e.contains("86400"), "{e}");
    assert!(!e.contains("min_expires"), "not blamed on min_expires: {e}");
}

#[test]
fn tcp_limits_are_range_checked_with_the_key_and_line() {
    for (text, key) in [
        ("max_bindings = 0\n", "max_bindings"),
        ("max_table_bytes = 1000\n", "max_table_bytes"),
        ("callid_max_size = 8\n", "callid_max_size"),
        ("user_agent_max_size = 9000\n", "user_agent_max_size"),
        ("udp_reply_max_size = 70000\n", "udp_reply_max_size"),
        ("udp_reply_max_size = 512\n", "udp_reply_max_size"),
        ("[pike]\nmax_tracked = 3\n", "pike.max_tracked"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.contains(&format!("key `{key}`")), "{e}");
        assert!(e.contains("out of range"), "{e}");
    }
    assert!(
        parse("max_bindings = 50\nmax_table_bytes = 65536\n[pike]\nmax_tracked = 1000\n").is_ok()
    );
}

#[test]
fn bad_listen_entry_names_line_key_and_fix() {
    let e = parse("use_path = true\nlisten = [\"udp:127.0.0.1:5060\",\n  \"sctp:1.2.3.4:5\"]\n")
        .unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: key `listen`: "), "{e}");
    assert!(e.contains("sctp"), "{e}");
    for (entry, hint) in [
        ("udp:::1:5060", "brackets"),
        ("udp:127.0.0.1", "port is missing"),
        ("udp:localhost:5060", "IP address"),
        ("127.0.0.1:5060", "unknown transport"),
        ("udp:127.0.0.1:99999", "expected"),
    ] {
        let e = parse(&format!("listen = [\"{entry}\"]\n")).unwrap_err();
        assert!(e.starts_with("kamrs.toml:1: key `listen`: "), "{e}");
        assert!(e.contains(hint), "{entry}: {e}");
    }
    let e = parse("listen = []\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `listen`"), "{e}");
}

#[test]
fn wrong_type_names_line_and_key() {
    let e = parse("use_domain = false\nmax_expires = \"1h\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `max_expires`: "), "{e}");
    assert!(e.contains("expected a whole number of seconds"), "{e}");
    let e = parse("min_expires = -5\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `min_expires`: "), "{e}");
    let e = parse("\n[log]\nlevel = \"loud\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: key `log.level`: "), "{e}");
    assert!(e.contains("debug"), "lists the valid values: {e}");
    let e = parse("min_expires_mode = \"clamp\"\n").unwrap_err();
    assert!(
        e.starts_with("kamrs.toml:1: key `min_expires_mode`: "),
        "{e}"
    );
    let e = parse("ctl = 5\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `ctl`: "), "{e}");
}

/// serde's words (`expected u32`, `invalid type: string`)
/// never reach the admin; each kind of key says what it takes, with an
/// example, on the line at fault.
#[test]
fn bad_values_are_described_in_the_admins_words() {
    let cases: &[(&str, &str)] = &[
        (
            "max_expires = \"3600\"\n",
            "kamrs.toml:1: key `max_expires`: expected a whole number of seconds, e.g. 3600, not the string \"3600\" (write it without quotes)",
        ),
        (
            "\nmax_expires = 1h\n",
            "kamrs.toml:2: key `max_expires`: expected a whole number of seconds, e.g. 3600, not `1h` (no units: write the number of seconds)",
        ),
        (
            "min_expires = \"30s\"\n",
            "kamrs.toml:1: key `min_expires`: expected a whole number of seconds, e.g. 60, not the string \"30s\" (no units: write the number of seconds)",
        ),
        (
            "default_expires = -1\n",
            "kamrs.toml:1: key `default_expires`: expected a whole number of seconds, e.g. 3600, not -1 (it cannot be negative)",
        ),
        (
            "max_expires = 3600.5\n",
            "kamrs.toml:1: key `max_expires`: expected a whole number of seconds, e.g. 3600, not 3600.5 (no fractions)",
        ),
        (
            "max_expires = 99999999999\n",
            "kamrs.toml:1: key `max_expires`: expected a whole number of seconds, e.g. 3600, not 99999999999: that is too large (at most 4294967295)",
        ),
        (
            "max_message_size = \"64k\"\n",
            "kamrs.toml:1: key `max_message_size`: expected a whole number of bytes, e.g. 65536, not the string \"64k\" (no units: write the number of bytes)",
        ),
        (
            "max_contacts = \"ten\"\n",
            "kamrs.toml:1: key `max_contacts`: expected a whole number, e.g. 10, not the string \"ten\"",
        ),
        (
            "[store]\nwrite_back_interval = 1.5\n",
            "kamrs.toml:2: key `store.write_back_interval`: expected a whole number of milliseconds, e.g. 1000, not 1.5 (no fractions)",
        ),
        (
            "[auth]\nmax_failures = 300\n",
            "kamrs.toml:2: key `auth.max_failures`: expected a whole number, e.g. 3, not 300: that is too large (at most 255)",
        ),
        (
            "use_path = yes\n",
            "kamrs.toml:1: key `use_path`: expected true or false, not `yes`",
        ),
        (
            "use_path = \"true\"\n",
            "kamrs.toml:1: key `use_path`: expected true or false, not the string \"true\" (write it without quotes)",
        ),
        (
            "force_rport = 1\n",
            "kamrs.toml:1: key `force_rport`: expected true or false, not 1",
        ),
        (
            "listen = 5060\n",
            "kamrs.toml:1: key `listen`: expected a list of addresses, e.g. [\"udp:0.0.0.0:5060\", \"tcp:0.0.0.0:5060\"], not 5060",
        ),
        (
            "[pike]\ntrusted = 10\n",
            "kamrs.toml:2: key `pike.trusted`: expected a list of quoted strings, e.g. [\"10.0.0.0/8\", \"192.0.2.7\"], not 10",
        ),
        (
            "min_expires_mode = \"clamp\"\n",
            "kamrs.toml:1: key `min_expires_mode`: expected \"reject\" or \"raise\", not \"clamp\"",
        ),
        (
            "[log]\nlevel = 3\n",
            "kamrs.toml:2: key `log.level`: expected one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\", not 3",
        ),
        (
            "[store]\npath = /var/lib/x.db\n",
            "kamrs.toml:2: key `store.path`: expected a quoted string, e.g. \"/var/lib/kamrs/location.db\", not `/var/lib/x.db` (put it in double quotes)",
        ),
        (
            "max_expires = [3600]\n",
            "kamrs.toml:1: key `max_expires`: expected a whole number of seconds, e.g. 3600, not a list",
        ),
        (
            "ctl = 5\n",
            "kamrs.toml:1: key `ctl`: expected a table: write `[ctl]` on a line of its own, with its keys on the lines below, not 5",
        ),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(&e, want, "for {text:?}");
        for rust in [
            "u32",
            "u64",
            "usize",
            "u8",
            "invalid type",
            "sequence",
            "wanted",
        ] {
            assert!(!e.contains(rust), "Rust's words in {e}");
        }
    }
}

/// An unknown key suggests the one meant (edit distance over
/// the keys of its table), or the table it belongs in.
#[test]
fn unknown_keys_suggest_the_nearest_one() {
    let cases: &[(&str, &str)] = &[
        (
            "min_expire = 60\n",
            "kamrs.toml:1: unknown key `min_expire`: did you mean `min_expires`?",
        ),
        (
            "\nmax_contact = 3\n",
            "kamrs.toml:2: unknown key `max_contact`: did you mean `max_contacts`?",
        ),
        (
            "[log]\nlevle = \"info\"\n",
            "kamrs.toml:2: unknown key `log.levle`: did you mean `log.level`?",
        ),
        (
            "[auth]\nalgorithm = [\"MD5\"]\n",
            "kamrs.toml:2: unknown key `auth.algorithm`: did you mean `auth.algorithms`?",
        ),
        (
            "[stor]\nbackend = \"none\"\n",
            "kamrs.toml:1: unknown key `stor`: did you mean `store`?",
        ),
        (
            "[auth]\nmode = \"digest\"\nmax_expires = 600\n",
            "kamrs.toml:3: unknown key `auth.max_expires`: `max_expires` is a top-level key; move it above the first `[table]` header (in TOML every key below `[auth]` belongs to it)",
        ),
        (
            "realm = \"example.com\"\n",
            "kamrs.toml:1: unknown key `realm`: did you mean `realm` in the `[auth]` table?",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&parse(text).unwrap_err(), want, "for {text:?}");
    }
    // Nothing near: the keys of that table are listed.
    let e = parse("[log]\nfrobnicate = 1\n").unwrap_err();
    assert_eq!(
        e,
        "kamrs.toml:2: unknown key `log.frobnicate`; the keys in `[log]` are `level`, `format`, `refreshes`"
    );
}

/// `listen = "udp:…"` (one address, no brackets) is read as a
/// one-element list; so are the other list keys.
#[test]
fn a_list_key_may_be_one_string() {
    let c = parse("listen = \"udp:127.0.0.1:5070\"\n").unwrap();
    assert_eq!(
        c.listen,
        parse("listen = [\"udp:127.0.0.1:5070\"]\n").unwrap().listen
    );
    assert_eq!(c.listen.len(), 1);
    let c = parse("[auth]\nalgorithms = \"MD5\"\n[pike]\ntrusted = \"10.0.0.0/8\"\n[ctl]\nallowed_origins = \"https://a.example\"\n").unwrap();
    assert_eq!(c.auth.algorithms, [crate::auth::Algorithm::Md5]);
    assert_eq!(c.pike.trusted, ["10.0.0.0/8"]);
    assert_eq!(c.ctl.allowed_origins, ["https://a.example"]);
    // A bad single address still says what is wrong with it.
    let e = parse("\nlisten = \"udp:127.0.0.1\"\n").unwrap_err();
    assert_eq!(
        e,
        "kamrs.toml:2: key `listen`: bad listen address `udp:127.0.0.1`: the port is missing"
    );
    // Printed back as a list.
    let c = parse("listen = \"udp:127.0.0.1:5070\"\n").unwrap();
    assert!(c
        .to_toml_string()
        .contains("listen = [\"udp:127.0.0.1:5070\"]"));
}

#[test]
fn syntax_error_names_line() {
    let e = parse("min_expires = 5\nmax_expires = \n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: "), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn out_of_range_value_names_line_and_key() {
    let e = parse("\nmin_expires = 7200\nmax_expires = 3600\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `min_expires`: "), "{e}");
    let e = parse("tcp_max_connections = 0\n").unwrap_err();
    assert!(
        e.starts_with("kamrs.toml:1: key `tcp_max_connections`"),
        "{e}"
    );
    let e = parse("udp_workers = 5000\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `udp_workers`"), "{e}");
    let e = parse("[ctl]\n\nmax_batch = 0\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: key `ctl.max_batch`"), "{e}");
    let e = parse("max_message_size = 10\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:1: key `max_message_size`"), "{e}");
    for bad in [
        "tcp_accept_iplimit = 0",
        "tcp_msg_read_timeout = 0",
        "tcp_msg_data_timeout = 3601",
        "tcp_send_timeout = 0",
        "tcp_conn_wq_max = 100",
        "tcp_wq_max = 0",
    ] {
        let key = bad.split(' ').next().unwrap();
        let e = parse(&format!("{bad}\n")).unwrap_err();
        assert!(e.starts_with(&format!("kamrs.toml:1: key `{key}`")), "{e}");
    }
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("kamrs-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kamrs.toml");
    std::fs::write(&path, "max_contacts = 3\nbogus = true\n").unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:2: unknown key `bogus`", path.display())),
        "{e}"
    );
    std::fs::write(&path, "max_contacts = 3\n").unwrap();
    assert_eq!(Config::load(&path).unwrap().max_contacts, 3);
    let missing = dir.join("missing.toml");
    let e = Config::load(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_catches_bad_overrides() {
    let c = Config {
        min_expires: 10_000,
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("min_expires"), "{e}");
}

#[test]
fn ctl_keys_parse_and_default() {
    let c = Config::default();
    assert_eq!(c.ctl.listen, common::Endpoint::default_unix());
    assert_eq!(c.ctl.token_file, None);
    assert_eq!(c.ctl.max_request_size, 256 * 1024);
    assert_eq!(c.ctl.max_response_size, 1 << 30);
    assert_eq!(c.ctl.max_batch, 100);
    assert_eq!(c.ctl.max_connections, 32);
    let c = parse(
        "[ctl]\nlisten = \"http://0.0.0.0:5065\"\ntoken_file = \"/etc/kamrs/token\"\nmax_request_size = 4096\nmax_response_size = 1048576\nmax_batch = 5\nmax_connections = 2\n",
    )
    .unwrap();
    assert_eq!(c.ctl.listen, "http://0.0.0.0:5065");
    assert_eq!(
        c.ctl.token_file.as_deref(),
        Some(Path::new("/etc/kamrs/token"))
    );
    assert_eq!(
        (
            c.ctl.max_request_size,
            c.ctl.max_response_size,
            c.ctl.max_batch,
            c.ctl.max_connections
        ),
        (4096, 1_048_576, 5, 2)
    );
    // The printed config loads back, token_file included.
    assert_eq!(parse(&c.to_toml_string()).unwrap(), c);
    assert_eq!(
        parse(&Config::default().to_toml_string()).unwrap(),
        Config::default()
    );
}

#[test]
fn ctl_listen_errors_name_line_and_key() {
    let e = parse("use_path = true\n[ctl]\nlisten = \"/run/kamrs.sock\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: key `ctl.listen`: "), "{e}");
    assert!(e.contains("unix:/run/kamrs.sock"), "{e}");
    let e = parse("[ctl]\nlisten = \"http://localhost:5065\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `ctl.listen`: "), "{e}");
    assert!(e.contains("IP address"), "{e}");
    let e = parse("[ctl]\nsocket = \"x\"\n").unwrap_err();
    assert!(
        e.starts_with("kamrs.toml:2: unknown key `ctl.socket`"),
        "{e}"
    );
}

#[test]
fn http_beyond_loopback_needs_a_token() {
    for addr in ["0.0.0.0:5065", "[::]:5065", "192.0.2.1:5065"] {
        let e = parse(&format!("[ctl]\nlisten = \"http://{addr}\"\n")).unwrap_err();
        assert!(e.contains("key `ctl.listen`"), "{e}");
        assert!(e.contains("token_file"), "{e}");
    }
    for ok in [
        "http://127.0.0.1:5065",
        "http://[::1]:5065",
        "http://127.0.0.2:1",
    ] {
        parse(&format!("[ctl]\nlisten = \"{ok}\"\n")).unwrap();
    }
    parse("[ctl]\nlisten = \"http://0.0.0.0:5065\"\ntoken_file = \"/t\"\n").unwrap();
}

#[test]
fn store_keys_parse_and_default() {
    let c = Config::default();
    assert_eq!(c.store.backend, StoreBackend::None);
    assert_eq!(c.store.path, Path::new("/var/lib/kamrs/location.db"));
    assert_eq!(c.store.url, "redis://127.0.0.1:6379");
    assert_eq!(c.store.mode, StoreMode::WriteThrough);
    assert_eq!(c.store.write_back_interval, 1000);
    assert_eq!(
        c.store.write_back_interval(),
        std::time::Duration::from_secs(1)
    );
    assert_eq!(c.store.queue_size, 100_000);
    let c = parse(
        "[store]\nbackend = \"sqlite\"\npath = \"/tmp/l.db\"\nmode = \"write-back\"\nwrite_back_interval = 250\nqueue_size = 10\n",
    )
    .unwrap();
    assert_eq!(c.store.backend, StoreBackend::Sqlite);
    assert_eq!(c.store.path, Path::new("/tmp/l.db"));
    assert_eq!(c.store.mode, StoreMode::WriteBack);
    assert_eq!(c.store.write_back_interval, 250);
    assert_eq!(c.store.queue_size, 10);
    assert_eq!(parse(&c.to_toml_string()).unwrap(), c);
    let c = parse("[store]\nbackend = \"redis\"\nurl = \"redis://10.0.0.5:7000\"\n").unwrap();
    assert_eq!(c.store.backend, StoreBackend::Redis);
    assert_eq!(c.store.url, "redis://10.0.0.5:7000");
    assert_eq!(c.store.mode, StoreMode::WriteThrough);
    assert_eq!(parse(&c.to_toml_string()).unwrap(), c);
}

#[test]
fn store_errors_name_line_and_key() {
    let e = parse("[store]\nbackend = \"mysql\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `store.backend`: "), "{e}");
    assert!(e.contains("sqlite"), "lists the valid values: {e}");
    let e = parse("[store]\nmode = \"write-around\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `store.mode`: "), "{e}");
    assert!(e.contains("write-back"), "{e}");
    let e = parse("[store]\nbackend = \"sqlite\"\n\npath = \"\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:4: key `store.path`"), "{e}");
    let e = parse("[store]\nbackend = \"redis\"\nurl = \"127.0.0.1:6379\"\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:3: key `store.url`"), "{e}");
    assert!(e.contains("redis://"), "{e}");
    let e = parse("[store]\nwrite_back_interval = 0\n").unwrap_err();
    assert!(
        e.starts_with("kamrs.toml:2: key `store.write_back_interval`"),
        "{e}"
    );
    let e = parse("[store]\nqueue_size = 0\n").unwrap_err();
    assert!(e.starts_with("kamrs.toml:2: key `store.queue_size`"), "{e}");
    let e = parse("[store]\nfile = \"x\"\n").unwrap_err();
    assert!(
        e.starts_with("kamrs.toml:2: unknown key `store.file`"),
        "{e}"
    );
    // An unused key of another backend is not an error: switching
    // backends is one line.
    parse("[store]\nbackend = \"none\"\npath = \"\"\nurl = \"x\"\n").unwrap();
}

#[test]
fn ctl_limits_must_be_usable() {
    for (key, value) in [
        ("max_request_size", "10"),
        ("max_response_size", "100"),
        ("max_batch", "0"),
        ("max_connections", "0"),
    ] {
        let e = parse(&format!("[ctl]\n{key} = {value}\n")).unwrap_err();
        assert!(e.contains(&format!("key `ctl.{key}`")), "{e}");
    }
}

#[test]
fn ctl_allowed_origins() {
    assert!(Config::default().ctl.allowed_origins.is_empty());
    let c = parse(
        "[ctl]\nlisten = \"http://127.0.0.1:5065\"\nallowed_origins = [\"https://admin.example.com\", \"http://[::1]:8080\"]\n",
    )
    .unwrap();
    assert_eq!(c.ctl.allowed_origins.len(), 2);
    let e = parse("[ctl]\nallowed_origins = [\"*\"]\n").unwrap_err();
    assert!(
        e.contains("key `ctl.allowed_origins`") && e.contains("scheme://host"),
        "{e}"
    );
    let e = parse("[ctl]\nallowed_origins = [\"https://a.example/ui\"]\n").unwrap_err();
    assert!(e.contains("no path"), "{e}");
}

/// The control API's own defaults are the embedded configuration's.
#[test]
fn rpc_defaults_match_the_embedded_config() {
    let config = Config::default();
    assert_eq!(config.ctl_settings(), crate::rpc::CtlSettings::default());
    assert_eq!(
        format!("{:?}", crate::rpc::Settings::from(&config)),
        format!("{:?}", crate::rpc::Settings::default())
    );
}

#[test]
fn the_webhook_must_be_an_http_url_and_its_limits_in_range() {
    let c = parse("[events]\nwebhook = \"http://127.0.0.1:8080/e\"\nwebhook_batch = 10\n").unwrap();
    assert_eq!(c.events.webhook_batch, 10);
    let w = c.webhook_settings().unwrap().unwrap();
    assert_eq!(w.target.to_string(), "http://127.0.0.1:8080/e");
    assert!(Config::default().webhook_settings().unwrap().is_none());
    let e = parse("[events]\nwebhook = \"https://hooks.example.com/\"\n").unwrap_err();
    assert!(e.contains("events.webhook") && e.contains("https"), "{e}");
    let e = parse("[events]\nwebhook = \"http://127.0.0.1/\"\nwebhook_queue = 0\n").unwrap_err();
    assert!(e.contains("events.webhook_queue"), "{e}");
    let e = parse("[events]\nwebhook_timeout = 0\n").unwrap_err();
    assert!(e.contains("events.webhook_timeout"), "{e}");
    // A token file that cannot be read stops start-up, naming the key.
    let c = parse("[events]\nwebhook = \"http://127.0.0.1/\"\nwebhook_token_file = \"/nonexistent/kamrs-token\"\n").unwrap();
    let e = c.webhook_settings().unwrap_err();
    assert!(e.contains("events.webhook_token_file"), "{e}");
}
