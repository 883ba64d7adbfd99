//! The daemon's configuration: a TOML file (DESIGN §5), every key optional.
//!
//! Key names follow Kamailio's module parameters where one exists, so an
//! admin moving from Kamailio recognises them. A bad file must stop start-up
//! with the file, line and key at fault: a registrar silently running with a
//! default the admin thought they had changed is worse than one that refuses
//! to start. That is why every struct denies unknown fields, and why
//! [`Config::load`] turns the `toml` crate's byte spans into
//! `kamrs.toml:12: …` messages.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::route::Proto;
use crate::sip::Limits;

/// The whole configuration. `Default` is the embedded configuration used
/// when no file is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Sockets to listen on, `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 in brackets).
    pub listen: Vec<ListenAddr>,

    /// Expiry (seconds) for a binding whose REGISTER states none.
    pub default_expires: u32,
    /// Shortest expiry accepted; see `min_expires_mode`.
    pub min_expires: u32,
    /// What to do with an expiry below `min_expires`.
    pub min_expires_mode: MinExpiresMode,
    /// Longer expiries are clamped to this.
    pub max_expires: u32,
    /// Most bindings per AoR; 0 means unlimited.
    pub max_contacts: u32,
    /// What to do when a REGISTER would exceed `max_contacts`.
    pub max_contacts_policy: MaxContactsPolicy,
    /// Keep the domain part of the AoR (Kamailio's `use_domain`).
    pub use_domain: bool,
    /// Store and echo Path headers (RFC 3327).
    pub use_path: bool,
    /// Longest Contact URI accepted, in bytes.
    pub contact_max_size: usize,

    /// Largest SIP message accepted, in bytes (datagram or stream frame).
    pub max_message_size: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest single header line, in bytes.
    pub max_line_length: usize,

    /// Seconds a TCP connection may stay idle (nothing received) before we
    /// close it. Kamailio's name for the same knob.
    pub tcp_connection_lifetime: u64,
    /// Most TCP connections open at once; more are accepted and closed.
    pub tcp_max_connections: usize,
    /// Send UDP replies to the packet's source port even when the top Via
    /// has no `rport` (Kamailio's `force_rport()`, for NATed phones that do
    /// not ask for symmetric routing). Off: RFC 3261 §18.2.2 (source IP,
    /// Via sent-by port).
    pub force_rport: bool,

    /// The control API endpoint (`[ctl]`).
    pub ctl: CtlConfig,
    /// Logging (`[log]`).
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![
                ListenAddr::new(Proto::Udp, SocketAddr::from(([127, 0, 0, 1], 5060))),
                ListenAddr::new(Proto::Tcp, SocketAddr::from(([127, 0, 0, 1], 5060))),
            ],
            default_expires: 3600,
            min_expires: 60,
            min_expires_mode: MinExpiresMode::Reject,
            max_expires: 3600,
            max_contacts: 0,
            max_contacts_policy: MaxContactsPolicy::Reject,
            use_domain: false,
            use_path: false,
            contact_max_size: 512,
            max_message_size: 65536,
            max_headers: 64,
            max_line_length: 8192,
            tcp_connection_lifetime: 120,
            tcp_max_connections: 2048,
            force_rport: false,
            ctl: CtlConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// `[ctl]`: the JSON-RPC control API (DESIGN §6, `docs/ctl.md`).
///
/// The limits exist because the control socket is a way into the daemon:
/// a local process with the right uid, or anyone holding the HTTP token,
/// must still not be able to make kamrs buffer unbounded requests or keep
/// unbounded connections open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtlConfig {
    /// `unix:/path` (mode 0600, root or kamrs's own uid only) or
    /// `http://IP:PORT` (loopback unless `token_file` is set).
    pub listen: common::Endpoint,
    /// A file holding the bearer token HTTP clients must send
    /// (`Authorization: Bearer …`). Required to listen on a non-loopback
    /// address; when set, required on loopback too.
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes (HTTP body or WebSocket
    /// message); bigger ones get HTTP 413 / a JSON-RPC error.
    pub max_request_size: u32,
    /// Largest response, in bytes. `ul.dump` is about 800 bytes per
    /// binding, so the default (1 GiB) covers about a million bindings.
    pub max_response_size: u32,
    /// Most calls in one JSON-RPC batch.
    pub max_batch: u32,
    /// Most control connections open at once; more are closed on accept.
    pub max_connections: u32,
}

impl Default for CtlConfig {
    fn default() -> Self {
        CtlConfig {
            listen: common::Endpoint::default_unix(),
            token_file: None,
            max_request_size: 256 * 1024,
            max_response_size: 1 << 30,
            max_batch: 100,
            max_connections: 32,
        }
    }
}

impl CtlConfig {
    /// Range and security rules for `[ctl]`, as (key, problem) pairs.
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        if let common::Endpoint::Http(addr) = self.listen {
            if !addr.ip().is_loopback() && self.token_file.is_none() {
                bad.push((
                    "ctl.listen",
                    format!(
                        "HTTP on {addr} is reachable from other machines: set `ctl.token_file` to a file holding a bearer token, or listen on 127.0.0.1"
                    ),
                ));
            }
        }
        if self.max_request_size < 1024 {
            bad.push(("ctl.max_request_size", "must be at least 1024 (bytes)".to_owned()));
        }
        if self.max_response_size < 64 * 1024 {
            bad.push(("ctl.max_response_size", "must be at least 65536 (bytes)".to_owned()));
        }
        if self.max_batch == 0 {
            bad.push(("ctl.max_batch", "must be at least 1".to_owned()));
        }
        if self.max_connections == 0 {
            bad.push(("ctl.max_connections", "must be at least 1".to_owned()));
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Lowest level logged when neither `RUST_LOG` nor `-v` says otherwise.
    pub level: LogLevel,
}

/// A log level name as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name `tracing_subscriber::EnvFilter` understands.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// What to do with a REGISTER whose expiry is below `min_expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MinExpiresMode {
    /// 423 Interval Too Brief with `Min-Expires` (RFC 3261 §10.3 step 7).
    #[default]
    Reject,
    /// Silently raise it to `min_expires` (what Kamailio does).
    Raise,
}

/// What to do when a REGISTER would exceed `max_contacts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxContactsPolicy {
    /// 503 with Retry-After, nothing changed.
    #[default]
    Reject,
    /// Drop the oldest bindings to make room.
    EvictOldest,
}

/// One `listen` entry: a protocol and a socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr {
    pub proto: Proto,
    pub addr: SocketAddr,
}

impl ListenAddr {
    pub fn new(proto: Proto, addr: SocketAddr) -> Self {
        ListenAddr { proto, addr }
    }
}

impl fmt::Display for ListenAddr {
    /// `udp:127.0.0.1:5060`, `tcp:[::1]:5060`: the same syntax as the
    /// config, so what kamrs prints can be pasted back into it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto.as_str(), self.addr)
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "expected `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 as `udp:[::1]:5060`)";
        let Some((proto, rest)) = s.split_once(':') else {
            return Err(format!("bad listen address `{s}`: {usage}"));
        };
        let proto = match proto.to_ascii_lowercase().as_str() {
            "udp" => Proto::Udp,
            "tcp" => Proto::Tcp,
            "tls" | "ws" | "wss" | "sctp" => {
                return Err(format!(
                    "bad listen address `{s}`: transport `{proto}` is not supported yet (udp and tcp are)"
                ))
            }
            _ => {
                return Err(format!(
                    "bad listen address `{s}`: unknown transport `{proto}`; {usage}"
                ))
            }
        };
        match rest.parse::<SocketAddr>() {
            Ok(addr) => Ok(ListenAddr { proto, addr }),
            Err(_) => {
                let hint = if rest.matches(':').count() > 1 && !rest.starts_with('[') {
                    "an IPv6 address must be in brackets, e.g. `udp:[::1]:5060`"
                } else if !rest.contains(':') {
                    "the port is missing"
                } else if rest.starts_with(|c: char| c.is_ascii_alphabetic())
                    && !rest.starts_with('[')
                {
                    "the host must be an IP address, not a name"
                } else {
                    usage
                };
                Err(format!("bad listen address `{s}`: {hint}"))
            }
        }
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ListenAddr> for String {
    fn from(l: ListenAddr) -> String {
        l.to_string()
    }
}

/// Why the configuration could not be loaded. The `Display` text is what
/// the daemon prints, so it names the file, and the line and key when known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, type, unknown-key and range errors, already formatted as
    /// `file:line: key `k`: what is wrong`.
    #[error("{0}")]
    Invalid(String),
}

/// Bounds that the types alone cannot express. Each entry: the key, and
/// the problem when its value is out of range.
fn check_ranges(c: &Config) -> Vec<(&'static str, String)> {
    let mut bad = Vec::new();
    if c.listen.is_empty() {
        bad.push(("listen", "must name at least one address".to_owned()));
    }
    if c.min_expires > c.max_expires {
        bad.push((
            "min_expires",
            format!(
                "{} is above max_expires ({}); no expiry could be accepted",
                c.min_expires, c.max_expires
            ),
        ));
    }
    if c.default_expires == 0 {
        bad.push(("default_expires", "must be at least 1".to_owned()));
    }
    if c.max_expires == 0 {
        bad.push(("max_expires", "must be at least 1".to_owned()));
    }
    // A REGISTER with a few headers needs a few hundred bytes; the upper
    // bound keeps per-connection buffers (one per TCP peer) reasonable.
    const MSG_MIN: usize = 512;
    const MSG_MAX: usize = 16 * 1024 * 1024;
    if !(MSG_MIN..=MSG_MAX).contains(&c.max_message_size) {
        bad.push((
            "max_message_size",
            format!(
                "{} is out of range {MSG_MIN}..={MSG_MAX}",
                c.max_message_size
            ),
        ));
    }
    if c.max_headers == 0 {
        bad.push(("max_headers", "must be at least 1".to_owned()));
    }
    if c.max_line_length < 64 {
        bad.push(("max_line_length", "must be at least 64".to_owned()));
    }
    if c.contact_max_size == 0 {
        bad.push(("contact_max_size", "must be at least 1".to_owned()));
    }
    if c.tcp_connection_lifetime == 0 {
        bad.push((
            "tcp_connection_lifetime",
            "must be at least 1 (seconds)".to_owned(),
        ));
    }
    if c.tcp_max_connections == 0 {
        bad.push(("tcp_max_connections", "must be at least 1".to_owned()));
    }
    c.ctl.check(&mut bad);
    bad
}

impl Config {
    /// Reads and validates a config file. Errors name the file, the line and
    /// the key at fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in error messages (the file
    /// path, or anything else for tests).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(describe(origin, text, &e)))?;
        config.validate_in(text, origin)?;
        Ok(config)
    }

    /// Checks value ranges, e.g. after command-line overrides. The error
    /// names the key (no line: the value may not come from a file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match check_ranges(self).into_iter().next() {
            None => Ok(()),
            Some((key, problem)) => Err(ConfigError::Invalid(format!("`{key}`: {problem}"))),
        }
    }

    fn validate_in(&self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let Some((key, problem)) = check_ranges(self).into_iter().next() else {
            return Ok(());
        };
        let line = key_line(text, key);
        Err(ConfigError::Invalid(match line {
            Some(line) => format!("{origin}:{line}: key `{key}`: {problem}"),
            None => format!("{origin}: key `{key}`: {problem}"),
        }))
    }

    /// The effective configuration as TOML, for `--print-config`. It loads
    /// back to the same configuration.
    pub fn to_toml_string(&self) -> String {
        // Serialising plain structs of strings, integers and enums cannot
        // fail; fall back to the Debug form rather than panic if it ever did.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The SIP-layer limits, for [`crate::route::Router::new`].
    // `..Limits::default()` keeps this compiling, with sane values, when the
    // SIP layer grows a limit that has no config key yet.
    #[allow(clippy::needless_update)]
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_size: self.max_message_size,
            max_headers: self.max_headers,
            max_line_length: self.max_line_length,
            ..Limits::default()
        }
    }
}

/// Turns a `toml` error into `origin:line: key `k`: message`, on one line.
fn describe(origin: &str, text: &str, err: &toml::de::Error) -> String {
    // toml's messages may span lines ("…\nexpected …"); keep ours on one.
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = err.span() else {
        return format!("{origin}: {message}");
    };
    let key = key_at(text, span.start);
    let line = line_of(
        text,
        item_named_in(text, span.start, &message).unwrap_or(span.start),
    );
    // serde says "unknown field `foo`, expected one of …": name it as a key,
    // with its table (`ctl.foo`) so the admin knows which one.
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let rest = match (&key, rest.strip_prefix('`').and_then(|r| r.split_once('`'))) {
            (Some(k), Some((_, after))) => format!("`{k}`{after}"),
            _ => rest.to_owned(),
        };
        return format!("{origin}:{line}: unknown key {rest}");
    }
    match key {
        Some(k) => format!("{origin}:{line}: key `{k}`: {message}"),
        None => format!("{origin}:{line}: {message}"),
    }
}

/// 1-based line number of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the innermost key whose key or value covers byte
/// `pos`, found by re-parsing the document with spans.
fn key_at(text: &str, pos: usize) -> Option<String> {
    // The recovering parser still yields the keys around a syntax error.
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    find_key(doc.get_ref(), pos, &mut path);
    (!path.is_empty()).then(|| path.join("."))
}

fn find_key(table: &toml::de::DeTable<'_>, pos: usize, path: &mut Vec<String>) {
    for (k, v) in table.iter() {
        if k.span().contains(&pos) || v.span().contains(&pos) {
            path.push(k.get_ref().to_string());
            if let Some(inner) = v.get_ref().as_table() {
                find_key(inner, pos, path);
            }
            return;
        }
    }
    // A `[table]` header's value span may not cover its keys: look inside
    // every table for a key at `pos`.
    for (k, v) in table.iter() {
        if let Some(inner) = v.get_ref().as_table() {
            let before = path.len();
            path.push(k.get_ref().to_string());
            find_key(inner, pos, path);
            if path.len() > before + 1 {
                return;
            }
            path.truncate(before);
        }
    }
}

/// serde reports an error in one array element (a bad `listen` entry)
/// at the span of the whole array. When the message quotes one element's
/// string, return that element's offset so the line points at it.
fn item_named_in(text: &str, pos: usize, message: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let value = doc.get_ref().values().find(|v| v.span().contains(&pos))?;
    value.get_ref().as_array()?.iter().find_map(|item| {
        let s = item.get_ref().as_str()?;
        message
            .contains(&format!("`{s}`"))
            .then(|| item.span().start)
    })
}

/// 1-based line of the top-level `key` in the document, if present.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let (k, _) = doc.get_ref().get_key_value(key)?;
    Some(line_of(text, k.span().start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml_str(text, "kamrs.toml").map_err(|e| e.to_string())
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
        assert_eq!(c.max_expires, 3600);
        assert_eq!(c.max_contacts, 0);
        assert_eq!(c.max_contacts_policy, MaxContactsPolicy::Reject);
        assert!(!c.use_domain);
        assert!(!c.use_path);
        assert_eq!(c.contact_max_size, 512);
        assert_eq!(c.max_message_size, 65536);
        assert_eq!(c.max_headers, 64);
        assert_eq!(c.max_line_length, 8192);
        assert_eq!(c.tcp_connection_lifetime, 120);
        assert_eq!(c.tcp_max_connections, 2048);
        assert!(!c.force_rport);
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
force_rport = true

[ctl]
listen = "http://127.0.0.1:5065"

[log]
level = "debug"
"#,
        )
        .unwrap();
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
        assert!(c.force_rport);
        assert_eq!(c.ctl.listen, "http://127.0.0.1:5065");
        assert_eq!(c.log.level, LogLevel::Debug);
        let limits = c.limits();
        assert_eq!(limits.max_message_size, 32768);
        assert_eq!(limits.max_headers, 100);
        assert_eq!(limits.max_line_length, 4096);
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
    fn bad_listen_entry_names_line_key_and_fix() {
        let e =
            parse("use_path = true\nlisten = [\"udp:127.0.0.1:5060\",\n  \"sctp:1.2.3.4:5\"]\n")
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
        assert!(e.contains("invalid type"), "{e}");
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
        let e = parse("max_message_size = 10\n").unwrap_err();
        assert!(e.starts_with("kamrs.toml:1: key `max_message_size`"), "{e}");
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
}
