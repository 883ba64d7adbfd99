//! The daemon's configuration: a TOML file (docs/design.md §5), every key optional.
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

use crate::peer::{ListenAddr, Proto};
use crate::registrar::settings::UDP_REPLY_MAX;
use crate::registrar::{MaxContactsPolicy, MinExpiresMode};
use crate::sip::Limits;
use crate::store::StoreMode;

mod words;
pub use words::{flag_count, flag_seconds};

/// Upper bound of `udp_workers`.
const MAX_UDP_WORKERS: usize = 256;

/// The whole configuration. `Default` is the embedded configuration used
/// when no file is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Sockets to listen on, `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 in brackets).
    /// One address may be written without the list brackets.
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<ListenAddr>,

    /// Expiry (seconds) for a binding whose REGISTER states none.
    pub default_expires: u32,
    /// Shortest expiry accepted; see `min_expires_mode`.
    pub min_expires: u32,
    /// What to do with an expiry below `min_expires`.
    pub min_expires_mode: MinExpiresMode,
    /// Longer expiries are clamped to this.
    pub max_expires: u32,
    /// Most bindings per AoR; 0 means unlimited. Defaults to 10, not
    /// Kamailio's 0: one AoR with 20,000 contacts made each of its
    /// REGISTERs take 0.39 s and answer 1 MB.
    pub max_contacts: u32,
    /// What to do when a REGISTER would exceed `max_contacts`.
    pub max_contacts_policy: MaxContactsPolicy,
    /// Keep the domain part of the AoR (Kamailio's `use_domain`).
    pub use_domain: bool,
    /// Store and echo Path headers (RFC 3327).
    pub use_path: bool,
    /// Longest Contact URI accepted, in bytes.
    pub contact_max_size: usize,
    /// Longest Call-ID accepted in a REGISTER, in bytes (the width of
    /// Kamailio's `location.callid` column); longer ones get 400.
    pub callid_max_size: usize,
    /// Longest User-Agent stored, in bytes (Kamailio's
    /// `location.user_agent` width); longer ones are cut, not refused.
    pub user_agent_max_size: usize,
    /// Most bindings in the whole location table; past it REGISTERs and
    /// `ul.add` that would add one get 503 + Retry-After.
    pub max_bindings: u64,
    /// Most bytes the location table may hold by its estimate (each
    /// binding's strings and fixed size, each AoR's key and record).
    pub max_table_bytes: u64,

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
    /// Most TCP connections open at once from one source address (IPv6:
    /// one /64); more are accepted and closed. `[pike] trusted` networks
    /// are exempt. Kamailio's name.
    pub tcp_accept_iplimit: usize,
    /// Seconds a TCP message may take from its first byte to its last;
    /// a connection whose message is late is closed (Kamailio's name).
    pub tcp_msg_read_timeout: u64,
    /// Seconds a new TCP connection may take to deliver its first whole
    /// message; keep-alive CRLFs do not count (Kamailio's name).
    pub tcp_msg_data_timeout: u64,
    /// Bytes of replies queued on one TCP connection before kamrs stops
    /// reading its requests until the peer takes them (Kamailio's name).
    pub tcp_conn_wq_max: usize,
    /// Seconds the peer has to take the queued replies; a peer that does
    /// not read is disconnected (Kamailio's name and default).
    pub tcp_send_timeout: u64,
    /// Bytes of replies queued on all TCP connections together; over it a
    /// connection with a reply queued reads no further until it is
    /// written (Kamailio's name).
    pub tcp_wq_max: usize,
    /// Send UDP replies to the packet's source port even when the top Via
    /// has no `rport` (Kamailio's `force_rport()`, for NATed phones that do
    /// not ask for symmetric routing). Off: RFC 3261 §18.2.2 (source IP,
    /// Via sent-by port).
    pub force_rport: bool,
    /// Threads serving each UDP `listen` socket (all reading the same
    /// socket, like Kamailio's UDP `children`); 0: one per CPU.
    pub udp_workers: usize,
    /// Largest reply sent over UDP, bytes. A 200 that would be larger (an
    /// AoR with very many bindings) is refused with a short 500 telling
    /// the UA to use TCP, before anything changes (`registrar::budget`).
    pub udp_reply_max_size: usize,

    /// The control API endpoint (`[ctl]`).
    pub ctl: CtlConfig,
    /// Where the location table is persisted (`[store]`, docs/store.md).
    pub store: StoreConfig,
    /// Digest authentication of REGISTER (`[auth]`).
    pub auth: AuthConfig,
    /// Flood protection per source IP (`[pike]`).
    pub pike: PikeConfig,
    /// Logging (`[log]`).
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        let reg = crate::registrar::Settings::default();
        Config {
            listen: vec![
                ListenAddr::new(Proto::Udp, SocketAddr::from(([127, 0, 0, 1], 5060))),
                ListenAddr::new(Proto::Tcp, SocketAddr::from(([127, 0, 0, 1], 5060))),
            ],
            // The registrar owns these defaults; the file's shape only
            // repeats their names.
            default_expires: reg.default_expires,
            min_expires: reg.min_expires,
            min_expires_mode: reg.min_expires_mode,
            max_expires: reg.max_expires,
            max_contacts: reg.max_contacts,
            max_contacts_policy: reg.max_contacts_policy,
            use_domain: reg.use_domain,
            use_path: reg.use_path,
            contact_max_size: reg.contact_max_size,
            callid_max_size: reg.callid_max_size,
            user_agent_max_size: reg.user_agent_max_size,
            max_bindings: 1_000_000,
            max_table_bytes: 1 << 30,
            max_message_size: 65536,
            max_headers: 64,
            max_line_length: 8192,
            tcp_connection_lifetime: 120,
            tcp_max_connections: 2048,
            tcp_accept_iplimit: 256,
            tcp_msg_read_timeout: 20,
            tcp_msg_data_timeout: 20,
            tcp_conn_wq_max: 256 * 1024,
            tcp_send_timeout: 10,
            tcp_wq_max: 10 * 1024 * 1024,
            force_rport: false,
            udp_workers: 0,
            udp_reply_max_size: reg.udp_reply_max_size,
            ctl: CtlConfig::default(),
            store: StoreConfig::default(),
            auth: AuthConfig::default(),
            pike: PikeConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// `[ctl]`: the JSON-RPC control API (docs/design.md §6, `docs/ctl.md`).
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
    /// Largest response, in bytes. `ul.dump` is about 520 bytes per
    /// binding, so the default (1 GiB) covers about two million.
    pub max_response_size: u32,
    /// Most calls in one JSON-RPC batch.
    pub max_batch: u32,
    /// Most control connections open at once; more are closed on accept.
    pub max_connections: u32,
    /// Web origins (`https://admin.example.com`) whose pages may call the
    /// HTTP API, with the bearer token. Every other `Origin` is refused
    /// (403) so that a page the admin happens to visit cannot drive the
    /// API from the browser; the listener's own origin is always allowed
    /// (with the token). Default empty.
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
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
            allowed_origins: Vec::new(),
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
            bad.push((
                "ctl.max_request_size",
                "must be at least 1024 (bytes)".to_owned(),
            ));
        }
        if self.max_response_size < 64 * 1024 {
            bad.push((
                "ctl.max_response_size",
                "must be at least 65536 (bytes)".to_owned(),
            ));
        }
        if self.max_batch == 0 {
            bad.push(("ctl.max_batch", "must be at least 1".to_owned()));
        }
        if self.max_connections == 0 {
            bad.push(("ctl.max_connections", "must be at least 1".to_owned()));
        }
        for origin in &self.allowed_origins {
            if let Err(why) = crate::rpc::check_origin(origin) {
                bad.push(("ctl.allowed_origins", why));
            }
        }
        if self.allowed_origins.len() > 64 {
            bad.push(("ctl.allowed_origins", "at most 64 origins".to_owned()));
        }
    }
}

/// `[store]`: what keeps a copy of the location table besides memory
/// (docs/design.md §7, `docs/store.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `none` (memory only), `sqlite` (one local file) or `redis` (shared).
    pub backend: StoreBackend,
    /// The SQLite database file (`backend = "sqlite"`); created if missing.
    pub path: PathBuf,
    /// The Redis server or cluster (`backend = "redis"`), e.g.
    /// `redis://127.0.0.1:6379`.
    pub url: String,
    /// `write-through`: a REGISTER is answered once its change is
    /// committed; `write-back`: answered at once, committed within
    /// `write_back_interval`.
    pub mode: StoreMode,
    /// Longest time (milliseconds) a change waits before it is committed
    /// in write-back mode.
    pub write_back_interval: u64,
    /// Most changes queued for the store; beyond it REGISTERs get 500
    /// until the store catches up.
    pub queue_size: usize,
}

/// Default `[store] path`.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/kamrs/location.db";
/// Default `[store] url`.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::None,
            path: PathBuf::from(DEFAULT_SQLITE_PATH),
            url: DEFAULT_REDIS_URL.to_owned(),
            mode: StoreMode::WriteThrough,
            write_back_interval: 1000,
            queue_size: 100_000,
        }
    }
}

impl StoreConfig {
    /// The write-back interval as a duration.
    pub fn write_back_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.write_back_interval)
    }

    /// Range rules for `[store]`, as (key, problem) pairs.
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        if self.backend == StoreBackend::Sqlite && self.path.as_os_str().is_empty() {
            bad.push((
                "store.path",
                "must name the SQLite database file, e.g. \"/var/lib/kamrs/location.db\""
                    .to_owned(),
            ));
        }
        if self.backend == StoreBackend::Redis
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|p| self.url.starts_with(p))
        {
            bad.push((
                "store.url",
                format!(
                    "`{}` is not a Redis URL: expected redis://HOST:PORT (or rediss://, redis+unix://)",
                    self.url
                ),
            ));
        }
        // A day is far beyond any sensible write-back delay; the bound
        // catches a value meant as seconds written in the wrong unit's scale.
        if !(1..=86_400_000).contains(&self.write_back_interval) {
            bad.push((
                "store.write_back_interval",
                format!(
                    "{} is out of range 1..=86400000 (milliseconds)",
                    self.write_back_interval
                ),
            ));
        }
        if self.queue_size == 0 {
            bad.push(("store.queue_size", "must be at least 1".to_owned()));
        }
    }
}

/// Which store keeps the location table besides memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Memory only (Kamailio db_mode 0).
    #[default]
    None,
    /// One local SQLite file with Kamailio's `location` schema.
    Sqlite,
    /// A Redis server or cluster shared by several kamrs nodes.
    Redis,
}

impl StoreConfig {
    /// The store `[store]` names, with its settings.
    pub fn backend(&self) -> crate::store::Backend {
        use crate::store::{redis, sqlite, Backend};
        match self.backend {
            StoreBackend::None => Backend::None,
            StoreBackend::Sqlite => Backend::Sqlite(sqlite::Settings {
                path: self.path.clone(),
                mode: self.mode,
                write_back_interval: self.write_back_interval(),
                queue_size: self.queue_size,
            }),
            StoreBackend::Redis => Backend::Redis(redis::Settings {
                url: self.url.clone(),
                mode: self.mode,
                write_back_interval: self.write_back_interval(),
                queue_size: self.queue_size,
            }),
        }
    }
}

impl StoreBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreBackend::None => "none",
            StoreBackend::Sqlite => "sqlite",
            StoreBackend::Redis => "redis",
        }
    }
}

/// `[auth]`: digest authentication (docs/design.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `none` (an open registrar: loopback only unless
    /// `allow_open_registrar`) or `digest`.
    pub mode: AuthMode,
    /// A fixed realm; unset, the realm is the AoR's domain (Kamailio's
    /// default).
    pub realm: Option<String>,
    /// Algorithms offered, in this order (RFC 8760: preferred first):
    /// `SHA-256`, `MD5`. Default `["MD5"]` alone, as Kamailio, Asterisk and
    /// FreeSWITCH: SIPp 3.6 and baresip 1.0 give up on a 401 holding any
    /// SHA-256 challenge, even one followed by MD5 (README, Authentication).
    #[serde(deserialize_with = "one_or_many")]
    pub algorithms: Vec<crate::auth::Algorithm>,
    /// Seconds a nonce stays valid; older ones get `stale=true`.
    pub nonce_expires: u64,
    /// Wrong answers met with a new 401 before the REGISTER gets 403.
    pub max_failures: u8,
    /// File holding the nonce secret; created (mode 0600) if missing. A
    /// nonce is accepted only by the process that issued it; nodes sharing
    /// the file answer each other's nonces `stale=true` (one extra 401).
    pub secret_file: PathBuf,
    /// The subscriber list (TOML, HA1 hashes only); reloaded on SIGHUP.
    pub subscribers: PathBuf,
    /// Run without authentication on non-loopback addresses anyway.
    pub allow_open_registrar: bool,
    /// Wrong answers for one subscriber from one source address within
    /// `lockout_window` before that pair is locked out (0: off).
    pub lockout_failures: u32,
    /// Wrong answers from one source address (an IPv6 /64), any
    /// subscriber, before the source is locked out (0: off).
    pub lockout_source_failures: u32,
    /// Wrong answers for one subscriber from any source before the
    /// subscriber is locked out (0: off), except from addresses that
    /// answered right within a day (auth/lockout.rs).
    pub lockout_user_failures: u32,
    /// Seconds over which wrong answers are counted.
    pub lockout_window: u64,
    /// Seconds a lock-out lasts; meanwhile REGISTERs get 403 without their
    /// answer being checked.
    pub lockout_time: u64,
}

impl AuthConfig {
    /// The authenticator's settings; `trusted_networks` is `[pike] trusted`
    /// ([`PikeConfig::networks`]).
    pub fn settings(
        &self,
        trusted_networks: Vec<(std::net::IpAddr, u8)>,
    ) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            realm: self.realm.clone(),
            algorithms: self.algorithms.clone(),
            max_failures: self.max_failures,
            lockout: self.lockout(),
            trusted_networks,
        }
    }

    /// Builds the authenticator of `[auth]`, or `None` for `mode = "none"`
    /// ([`crate::auth::open`]).
    pub fn authenticator(
        &self,
        use_domain: bool,
        trusted_networks: Vec<(std::net::IpAddr, u8)>,
    ) -> Result<Option<std::sync::Arc<crate::auth::Authenticator>>, String> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        crate::auth::open(
            self.settings(trusted_networks),
            self.nonce_expires,
            &self.secret_file,
            &self.subscribers,
            use_domain,
        )
        .map(Some)
    }

    /// The lock-out settings of the authenticator.
    pub fn lockout(&self) -> crate::auth::lockout::LockoutSettings {
        crate::auth::lockout::LockoutSettings {
            failures: self.lockout_failures,
            source_failures: self.lockout_source_failures,
            user_failures: self.lockout_user_failures,
            window: self.lockout_window,
            time: self.lockout_time,
        }
    }
}

/// Default `[auth] secret_file`.
pub const DEFAULT_SECRET_FILE: &str = "/var/lib/kamrs/nonce.secret";
/// Default `[auth] subscribers`.
pub const DEFAULT_SUBSCRIBERS: &str = "/etc/kamrs/subscribers.toml";

impl Default for AuthConfig {
    fn default() -> Self {
        let lockout = crate::auth::lockout::LockoutSettings::default();
        AuthConfig {
            mode: AuthMode::None,
            realm: None,
            algorithms: crate::auth::DEFAULT_ALGORITHMS.to_vec(),
            nonce_expires: 300,
            max_failures: 3,
            secret_file: PathBuf::from(DEFAULT_SECRET_FILE),
            subscribers: PathBuf::from(DEFAULT_SUBSCRIBERS),
            allow_open_registrar: false,
            lockout_failures: lockout.failures,
            lockout_source_failures: lockout.source_failures,
            lockout_user_failures: lockout.user_failures,
            lockout_window: lockout.window,
            lockout_time: lockout.time,
        }
    }
}

impl AuthConfig {
    /// The secure-default rule and ranges, as (key, problem) pairs.
    fn check(&self, listen: &[ListenAddr], bad: &mut Vec<(&'static str, String)>) {
        if self.mode == AuthMode::None && !self.allow_open_registrar {
            if let Some(open) = listen.iter().find(|l| !l.addr.ip().is_loopback()) {
                // Reported at `listen`: that is the line that made it unsafe,
                // and `[auth]` may not be in the file at all.
                bad.push((
                    "listen",
                    format!(
                        "listening on {open} without authentication lets anyone register anyone's AoR and take their calls: set `[auth] mode = \"digest\"` (see README), or `[auth] allow_open_registrar = true` if that is really what you want"
                    ),
                ));
            }
        }
        if self.algorithms.is_empty() {
            bad.push((
                "auth.algorithms",
                "must name at least one of \"SHA-256\", \"MD5\"".to_owned(),
            ));
        }
        if !(10..=86_400).contains(&self.nonce_expires) {
            bad.push((
                "auth.nonce_expires",
                format!(
                    "{} is out of range 10..=86400 (seconds)",
                    self.nonce_expires
                ),
            ));
        }
        if self.max_failures == 0 {
            bad.push(("auth.max_failures", "must be at least 1".to_owned()));
        }
        const FAILURES_MAX: u32 = 1_000_000;
        for (key, n) in [
            ("auth.lockout_failures", self.lockout_failures),
            ("auth.lockout_source_failures", self.lockout_source_failures),
            ("auth.lockout_user_failures", self.lockout_user_failures),
        ] {
            if n > FAILURES_MAX {
                bad.push((
                    key,
                    format!("{n} is out of range 0..={FAILURES_MAX} (wrong answers; 0 turns this lock-out off)"),
                ));
            }
        }
        for (key, secs) in [
            ("auth.lockout_window", self.lockout_window),
            ("auth.lockout_time", self.lockout_time),
        ] {
            if !(1..=86_400).contains(&secs) {
                bad.push((key, format!("{secs} is out of range 1..=86400 (seconds)")));
            }
        }
        if self
            .realm
            .as_deref()
            .is_some_and(|r| r.is_empty() || r.contains('"'))
        {
            bad.push((
                "auth.realm",
                "must be non-empty and contain no `\"`".to_owned(),
            ));
        }
    }
}

/// `[auth] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Digest,
}

/// `[pike]`: per-source flood protection, Kamailio's pike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PikeConfig {
    pub enabled: bool,
    /// Length of a counting window, seconds (Kamailio's sampling_time_unit).
    pub window: u64,
    /// Requests one source may send per window (reqs_density_per_unit).
    pub max_requests: u32,
    /// A blocked source is let through again after this many quiet seconds.
    pub block_time: u64,
    /// Networks never limited, e.g. `"10.0.0.0/8"`, your own proxies.
    #[serde(deserialize_with = "one_or_many")]
    pub trusted: Vec<String>,
    /// Most sources tracked at once; past it the least recently seen
    /// source that is not blocked is forgotten to make room.
    pub max_tracked: usize,
}

impl Default for PikeConfig {
    fn default() -> Self {
        PikeConfig {
            enabled: true,
            window: 2,
            max_requests: 200,
            block_time: 30,
            trusted: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            max_tracked: crate::pike::MAX_TRACKED,
        }
    }
}

impl PikeConfig {
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        if self.window == 0 || self.window > 3600 {
            bad.push((
                "pike.window",
                format!("{} is out of range 1..=3600 (seconds)", self.window),
            ));
        }
        if self.max_requests == 0 {
            bad.push(("pike.max_requests", "must be at least 1".to_owned()));
        }
        if self.block_time == 0 || self.block_time > 86_400 {
            bad.push((
                "pike.block_time",
                format!("{} is out of range 1..=86400 (seconds)", self.block_time),
            ));
        }
        if !(crate::pike::MIN_TRACKED..=crate::pike::MAX_MAX_TRACKED).contains(&self.max_tracked) {
            bad.push((
                "pike.max_tracked",
                format!(
                    "{} is out of range {}..={} (sources; each costs about 64 bytes)",
                    self.max_tracked,
                    crate::pike::MIN_TRACKED,
                    crate::pike::MAX_MAX_TRACKED
                ),
            ));
        }
        if let Some(t) = self
            .trusted
            .iter()
            .find(|t| crate::pike::parse_net(t).is_none())
        {
            bad.push((
                "pike.trusted",
                format!("`{t}` is not an address or network like \"10.0.0.0/8\""),
            ));
        }
    }

    /// `trusted` parsed (checked valid by `check`): also used, enabled or
    /// not, by the TCP per-IP cap and the auth lock-out.
    pub fn networks(&self) -> Vec<(std::net::IpAddr, u8)> {
        self.trusted
            .iter()
            .filter_map(|t| crate::pike::parse_net(t))
            .collect()
    }

    /// The settings the flood filter runs with, if enabled.
    pub fn settings(&self) -> Option<crate::pike::PikeSettings> {
        self.enabled.then(|| crate::pike::PikeSettings {
            window: std::time::Duration::from_secs(self.window),
            max_requests: self.max_requests,
            block_time: std::time::Duration::from_secs(self.block_time),
            trusted: self.networks(),
            max_tracked: self.max_tracked,
        })
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

/// A list key written as one string (`listen = "udp:0.0.0.0:5060"`) is
/// read as a list of that one value: the intent is plain, and refusing it
/// would only send the admin back to add brackets.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            T::deserialize(serde::de::value::StrDeserializer::<E>::new(s)).map(|one| vec![one])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut all = Vec::new();
            while let Some(one) = seq.next_element()? {
                all.push(one);
            }
            Ok(all)
        }
    }

    d.deserialize_any(OneOrMany(std::marker::PhantomData))
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
    if c.max_expires > 0 && c.min_expires > c.max_expires {
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
        // Kamailio reads 0 as "no bound"; here it is refused, since a
        // phone could then ask for a binding that outlives it by decades
        // and hold its table slot that long.
        bad.push((
            "max_expires",
            "must be at least 1: 0 (Kamailio's \"no bound\") is not accepted; set the longest expiry you allow, e.g. 86400".to_owned(),
        ));
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
    // The parser keeps header positions in 16 bits; no real message comes
    // near this.
    const HEADERS_MAX: usize = 10_000;
    if !(1..=HEADERS_MAX).contains(&c.max_headers) {
        bad.push((
            "max_headers",
            format!("{} is out of range 1..={HEADERS_MAX}", c.max_headers),
        ));
    }
    if c.max_line_length < 64 {
        bad.push(("max_line_length", "must be at least 64".to_owned()));
    }
    if c.contact_max_size == 0 {
        bad.push(("contact_max_size", "must be at least 1".to_owned()));
    }
    for (key, value) in [
        ("callid_max_size", c.callid_max_size),
        ("user_agent_max_size", c.user_agent_max_size),
    ] {
        if !(16..=8192).contains(&value) {
            bad.push((key, format!("{value} is out of range 16..=8192 (bytes)")));
        }
    }
    const BINDINGS_MAX: u64 = 100_000_000;
    if !(1..=BINDINGS_MAX).contains(&c.max_bindings) {
        bad.push((
            "max_bindings",
            format!(
                "{} is out of range 1..={BINDINGS_MAX} (a binding costs 350 bytes to 2 KB; size `max_table_bytes` with it)",
                c.max_bindings
            ),
        ));
    }
    const TABLE_BYTES_MIN: u64 = 64 * 1024;
    const TABLE_BYTES_MAX: u64 = 1 << 40;
    if !(TABLE_BYTES_MIN..=TABLE_BYTES_MAX).contains(&c.max_table_bytes) {
        bad.push((
            "max_table_bytes",
            format!(
                "{} is out of range {TABLE_BYTES_MIN}..={TABLE_BYTES_MAX} (bytes; 1073741824 is 1 GiB)",
                c.max_table_bytes
            ),
        ));
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
    // Each is a thread per UDP socket: a typo must not start thousands.
    if c.udp_workers > MAX_UDP_WORKERS {
        bad.push((
            "udp_workers",
            format!("must be at most {MAX_UDP_WORKERS} (0: one per CPU)"),
        ));
    }
    check_tcp(c, &mut bad);
    if !(crate::registrar::budget::FLOOR..=UDP_REPLY_MAX).contains(&c.udp_reply_max_size) {
        bad.push((
            "udp_reply_max_size",
            format!(
                "{} is out of range {}..={UDP_REPLY_MAX} (bytes; a UDP datagram carries at most {UDP_REPLY_MAX})",
                c.udp_reply_max_size,
                crate::registrar::budget::FLOOR
            ),
        ));
    }
    c.ctl.check(&mut bad);
    c.store.check(&mut bad);
    c.auth.check(&c.listen, &mut bad);
    c.pike.check(&mut bad);
    bad
}

/// Ranges of the TCP limits (issue 13): each must be on, and not so large
/// that it stops protecting anything.
fn check_tcp(c: &Config, bad: &mut Vec<(&'static str, String)>) {
    if c.tcp_accept_iplimit == 0 {
        bad.push((
            "tcp_accept_iplimit",
            "must be at least 1; to exempt your own proxies list them in `[pike] trusted`"
                .to_owned(),
        ));
    }
    for (key, secs) in [
        ("tcp_msg_read_timeout", c.tcp_msg_read_timeout),
        ("tcp_msg_data_timeout", c.tcp_msg_data_timeout),
        ("tcp_send_timeout", c.tcp_send_timeout),
    ] {
        if !(1..=3600).contains(&secs) {
            bad.push((key, format!("{secs} is out of range 1..=3600 (seconds)")));
        }
    }
    const WQ_MIN: usize = 4096;
    const WQ_MAX: usize = 64 * 1024 * 1024;
    if !(WQ_MIN..=WQ_MAX).contains(&c.tcp_conn_wq_max) {
        bad.push((
            "tcp_conn_wq_max",
            format!(
                "{} is out of range {WQ_MIN}..={WQ_MAX} (bytes)",
                c.tcp_conn_wq_max
            ),
        ));
    }
    const TOTAL_MAX: usize = 16 * 1024 * 1024 * 1024;
    if !(WQ_MIN..=TOTAL_MAX).contains(&c.tcp_wq_max) {
        bad.push((
            "tcp_wq_max",
            format!(
                "{} is out of range {WQ_MIN}..={TOTAL_MAX} (bytes)",
                c.tcp_wq_max
            ),
        ));
    }
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

    /// The location table's global bounds.
    pub fn table_limits(&self) -> crate::usrloc::TableLimits {
        crate::usrloc::TableLimits {
            max_bindings: self.max_bindings,
            max_bytes: self.max_table_bytes,
        }
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
    // with its table (`ctl.foo`) so the admin knows which one, and the key
    // they probably meant.
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let named = rest.strip_prefix('`').and_then(|r| r.split_once('`'));
        return match (&key, named) {
            (Some(k), Some(_)) => format!("{origin}:{line}: {}", words::unknown_key_message(k)),
            _ => format!("{origin}:{line}: unknown key {rest}"),
        };
    }
    // serde's and toml's words for a bad value ("expected u32") become the
    // admin's ("expected a whole number of seconds, e.g. 3600").
    let message = key
        .as_deref()
        .and_then(|k| words::value_message(k, &message, raw_value(text, span.start).as_deref()))
        .unwrap_or(message);
    match key {
        Some(k) => format!("{origin}:{line}: key `{k}`: {message}"),
        None => format!("{origin}:{line}: {message}"),
    }
}

/// The unquoted word at byte `pos` as written (`1h` in `max_expires =
/// 1h`), for messages that quote it; cut at 40 characters.
fn raw_value(text: &str, pos: usize) -> Option<String> {
    let rest = text.get(pos..)?;
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '#' | ',' | ']' | '}'))
        .take(40)
        .collect();
    (!word.is_empty()).then_some(word)
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
    // A dotted path (`ctl.max_batch`) walks into tables.
    let mut table = doc.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (k, v) = table.get_key_value(part)?;
        if parts.peek().is_none() {
            return Some(line_of(text, k.span().start));
        }
        table = v.get_ref().as_table()?;
    }
    None
}

impl Config {
    /// The TCP transport's knobs (top-level `tcp_*` keys; the per-address
    /// limit spares `[pike] trusted`).
    pub fn tcp_settings(&self) -> crate::transport::TcpSettings {
        let trusted = self.pike.networks();
        crate::transport::TcpSettings {
            idle_timeout: std::time::Duration::from_secs(self.tcp_connection_lifetime),
            max_connections: self.tcp_max_connections,
            per_ip: crate::transport::ip_limit::IpLimit::new(self.tcp_accept_iplimit, trusted),
            msg_data_timeout: std::time::Duration::from_secs(self.tcp_msg_data_timeout),
            msg_read_timeout: std::time::Duration::from_secs(self.tcp_msg_read_timeout),
            write_queue_max: self.tcp_conn_wq_max,
            write_queue_total_max: self.tcp_wq_max,
            send_timeout: std::time::Duration::from_secs(self.tcp_send_timeout),
        }
    }
}

/// The control API's view of the file.
impl From<&Config> for crate::rpc::Settings {
    fn from(c: &Config) -> Self {
        crate::rpc::Settings {
            use_domain: c.use_domain,
            contact_max_size: c.contact_max_size,
            default_expires: c.default_expires,
            max_expires: c.max_expires,
            max_contacts: c.max_contacts,
            auth: crate::rpc::SubscriberFile {
                settings: c.auth.settings(Vec::new()),
                nonce_expires: c.auth.nonce_expires,
                path: c.auth.subscribers.clone(),
            },
        }
    }
}

/// The registrar's knobs are top-level keys of the file; the registrar keeps
/// its own copy and never sees the file's shape.
impl From<&Config> for crate::registrar::Settings {
    fn from(c: &Config) -> Self {
        crate::registrar::Settings {
            default_expires: c.default_expires,
            min_expires: c.min_expires,
            min_expires_mode: c.min_expires_mode,
            max_expires: c.max_expires,
            max_contacts: c.max_contacts,
            max_contacts_policy: c.max_contacts_policy,
            use_domain: c.use_domain,
            use_path: c.use_path,
            contact_max_size: c.contact_max_size,
            callid_max_size: c.callid_max_size,
            user_agent_max_size: c.user_agent_max_size,
            udp_reply_max_size: c.udp_reply_max_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // challenge (issue 14).
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
            parse("listen = [\"udp:192.0.2.1:5060\"]\n[auth]\nallow_open_registrar = true\n")
                .is_ok()
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
    fn issue13_limits_are_range_checked_with_the_key_and_line() {
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
            parse("max_bindings = 50\nmax_table_bytes = 65536\n[pike]\nmax_tracked = 1000\n")
                .is_ok()
        );
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

    /// Issue 14: serde's words (`expected u32`, `invalid type: string`)
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

    /// Issue 14: an unknown key suggests the one meant (edit distance over
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
            "kamrs.toml:2: unknown key `log.frobnicate`; the keys in `[log]` are `level`"
        );
    }

    /// Issue 14: `listen = "udp:…"` (one address, no brackets) is read as a
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
}

/// `[ctl]` as the control API's own settings: the file's shape stays here.
impl From<&CtlConfig> for crate::rpc::CtlSettings {
    fn from(c: &CtlConfig) -> Self {
        crate::rpc::CtlSettings {
            listen: c.listen.clone(),
            token_file: c.token_file.clone(),
            max_request_size: c.max_request_size,
            max_response_size: c.max_response_size,
            max_batch: c.max_batch,
            max_connections: c.max_connections,
            allowed_origins: c.allowed_origins.clone(),
        }
    }
}

impl Config {
    /// The control endpoint and its limits (`[ctl]`).
    pub fn ctl_settings(&self) -> crate::rpc::CtlSettings {
        crate::rpc::CtlSettings::from(&self.ctl)
    }
}

/// The control API's own defaults are the embedded configuration's.
#[cfg(test)]
mod rpc_defaults {
    use super::Config;

    #[test]
    fn rpc_defaults_match_the_embedded_config() {
        let config = Config::default();
        assert_eq!(config.ctl_settings(), crate::rpc::CtlSettings::default());
        assert_eq!(
            format!("{:?}", crate::rpc::Settings::from(&config)),
            format!("{:?}", crate::rpc::Settings::default())
        );
    }
}
