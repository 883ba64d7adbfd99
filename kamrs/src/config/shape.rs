//! The file's shape: one struct per table, every key with its default.
//!
//! Every struct denies unknown fields, so a misspelt key stops start-up
//! instead of being silently ignored (see the module documentation).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::peer::{ListenAddr, Proto};
use crate::registrar::{MaxContactsPolicy, MinExpiresMode};
use crate::store::StoreMode;

/// The whole configuration. `Default` is the embedded configuration used
/// when no file is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Sockets to listen on, `udp:IP:PORT`, `tcp:`, `tls:`, `ws:` or
    /// `wss:IP:PORT` (IPv6 in brackets).
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
    /// Kamailio's `nat_uac_test` bits that mark a binding NATed (1 private
    /// Contact, 2 Via address, 16 Via port, 32 private source); 0 = off.
    pub nat_uac_test: u32,
    /// The `cflags` bit that marks a binding NATed (`nat_bflag`, 0..=31).
    pub nat_bflag: u8,
    /// `Flow-Timer` seconds in a 200 for an RFC 5626 flow; 0 = 30 over UDP,
    /// 120 over streams.
    pub flow_timer: u32,
    /// NAT keepalive (Kamailio's usrloc `ka_mode`): 0 off; 1 every
    /// binding, 2 NATed ones only, 4 UDP ones only (6: NATed UDP).
    pub ka_mode: u32,
    /// Seconds between two pings of one binding.
    pub ka_interval: u32,
    /// Spread the pings evenly over `ka_interval` (else all at once).
    pub ka_randomize: bool,
    /// `"OPTIONS"`, or `"CRLF"` for a CRLF CRLF ping on TCP connections.
    pub ka_method: crate::keepalive::Method,
    /// The From URI of the pings.
    pub ka_from: String,
    /// Seconds a pinged binding may go without answering before it is
    /// removed; 0 = never.
    pub ka_timeout: u32,
    /// This node's id (Kamailio's `server_id`), stored in its bindings: in
    /// a cluster sharing a store, only the node holding a binding's flow
    /// pings it. Give each node its own.
    pub server_id: u32,
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
    /// Remove the bindings of a TCP connection that closed (Kamailio's
    /// `handle_lost_tcp`, off by default as there; see the README).
    pub handle_lost_tcp: bool,
    /// Close a TCP connection once its last binding expired (Kamailio's
    /// `close_expired_tcp`; on by default here).
    pub close_expired_tcp: bool,
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
    /// Where the location table's events go besides `ul.subscribe`
    /// (`[events]`).
    pub events: EventsConfig,
    /// The certificate of `tls:` and `wss:` listeners (`[tls]`).
    pub tls: TlsConfig,
    /// SIP over WebSocket, `ws:` and `wss:` listeners (`[websocket]`).
    pub websocket: WebsocketConfig,
    /// What happens to requests other than REGISTER (`[route]`).
    pub route: RouteConfig,
}

impl Default for Config {
    fn default() -> Self {
        let reg = crate::registrar::Settings::default();
        let ka = crate::keepalive::Settings::default();
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
            nat_uac_test: reg.nat_uac_test,
            nat_bflag: reg.nat_bflag,
            flow_timer: reg.flow_timer,
            ka_mode: ka.mode,
            ka_interval: ka.interval,
            ka_randomize: ka.randomize,
            ka_method: ka.method,
            ka_from: ka.from,
            ka_timeout: ka.timeout,
            server_id: reg.server_id,
            max_bindings: 1_000_000,
            max_table_bytes: 1 << 30,
            max_message_size: 65536,
            max_headers: 64,
            max_line_length: 8192,
            tcp_connection_lifetime: 120,
            handle_lost_tcp: false,
            close_expired_tcp: true,
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
            events: EventsConfig::default(),
            tls: TlsConfig::default(),
            websocket: WebsocketConfig::default(),
            route: RouteConfig::default(),
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

/// `[events]`: the location table's events (`ul.watch`'s) POSTed to a
/// web service as they happen (`webhook.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// `http://HOST[:PORT]/PATH` to POST batches of events to (a JSON array,
    /// as `ul.watch --json` prints them); `""` = off.
    pub webhook: String,
    /// A file holding a token sent as `Authorization: Bearer TOKEN`, so
    /// the receiver can tell kamrs from anyone else who can reach it.
    pub webhook_token_file: Option<PathBuf>,
    /// Most events in one POST.
    pub webhook_batch: usize,
    /// Most events waiting while the receiver is down or slow; beyond it
    /// the oldest are dropped and counted (`events:webhook_dropped`).
    pub webhook_queue: usize,
    /// Seconds a POST may take, connecting included, before it counts as
    /// failed and is retried.
    pub webhook_timeout: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            webhook: String::new(),
            webhook_token_file: None,
            webhook_batch: 500,
            webhook_queue: 20_000,
            webhook_timeout: 10,
        }
    }
}

/// `[tls]`: the certificate `tls:` and `wss:` listeners present (Kamailio's
/// tls module parameters of the same names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file: the server certificate, then its intermediates (an ACME
    /// client's `fullchain.pem`).
    pub certificate: Option<PathBuf>,
    /// PEM file: its private key (`privkey.pem`).
    pub private_key: Option<PathBuf>,
    /// Require a client certificate signed by a CA of `ca_list`.
    pub verify_client: bool,
    /// PEM file of the CAs that sign client certificates.
    pub ca_list: Option<PathBuf>,
    /// Lowest TLS version offered: "1.2" or "1.3".
    pub min_version: TlsMinVersion,
    /// Seconds a client has to finish its TLS handshake.
    pub handshake_timeout: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: None,
            private_key: None,
            verify_client: false,
            ca_list: None,
            min_version: TlsMinVersion::Tls12,
            handshake_timeout: 5,
        }
    }
}

/// `[tls] min_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMinVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[websocket]`: SIP over WebSocket (RFC 7118) on `ws:` and `wss:`
/// listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebsocketConfig {
    /// Origins (`https://phone.example.com`) whose pages may connect; empty
    /// accepts any Origin, and clients that send none (not browsers).
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
    /// Seconds of silence after which a WebSocket Ping is sent; when
    /// another as long passes with nothing heard, the connection is
    /// closed as lost. 0 = no pings (Kamailio's `keepalive_timeout`).
    pub keepalive_timeout: u64,
    /// Seconds a client has to finish its HTTP upgrade.
    pub handshake_timeout: u64,
    /// Remove a WebSocket's bindings when it closes. On by default, unlike
    /// TCP's `handle_lost_tcp`: a WebSocket client (a browser tab) has an
    /// unroutable `.invalid` Contact, so once its socket is gone nothing
    /// can reach it, and it registers anew when it reconnects.
    pub handle_lost_tcp: bool,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        WebsocketConfig {
            allowed_origins: Vec::new(),
            keepalive_timeout: 180,
            handshake_timeout: 5,
            handle_lost_tcp: true,
        }
    }
}

/// `[route]`: the tutorial's routing, a stateful proxy to the bindings,
/// or redirects to them (docs/proxy.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// `"registrar"` (INVITE 480, ACK absorbed, else 501), `"proxy"` or
    /// `"redirect"`.
    pub mode: crate::proxy::Mode,
    /// Domains whose users are ours besides the addresses kamrs listens
    /// on; empty with `use_domain = false`: every domain.
    #[serde(deserialize_with = "one_or_many")]
    pub domains: Vec<String>,
    /// Relay requests for other domains (to the address their URI names)
    /// instead of answering 403.
    pub relay_foreign: bool,
    /// Stay on the path of the dialogs kamrs forwards (Record-Route).
    pub record_route: bool,
    /// Milliseconds a branch may go without any response (Kamailio's tm
    /// `fr_timer`).
    pub fr_timer: u64,
    /// Milliseconds an INVITE branch may ring without answering (tm's
    /// `fr_inv_timer`; RFC 3261 timer C).
    pub fr_inv_timer: u64,
    /// Most transactions at once; more requests get 503.
    pub max_transactions: usize,
    /// Ring one q group of bindings at a time, best q first.
    pub serial_forking: bool,
    /// With `[auth]` on, challenge requests whose From is one of our
    /// users with 407, so a caller must own the identity it claims.
    pub authenticate_calls: bool,
    /// Take calls to our users from other domains without a challenge.
    pub accept_foreign_callers: bool,
    /// Keys the flow tokens in Record-Route and the temporary GRUUs: give
    /// every node of a cluster the same one (at least 16 characters) so
    /// dialogs and GRUUs survive restarts; empty: a random one per start.
    pub secret: String,
}

impl Default for RouteConfig {
    fn default() -> Self {
        let s = crate::proxy::Settings::default();
        RouteConfig {
            mode: s.mode,
            domains: s.domains,
            relay_foreign: s.relay_foreign,
            record_route: s.record_route,
            fr_timer: s.fr_timer.as_millis() as u64,
            fr_inv_timer: s.fr_inv_timer.as_millis() as u64,
            max_transactions: s.max_transactions,
            serial_forking: s.serial_forking,
            authenticate_calls: s.authenticate_calls,
            accept_foreign_callers: s.accept_foreign_callers,
            secret: String::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Lowest level logged when neither `RUST_LOG` nor `-v`/`-q` says
    /// otherwise.
    pub level: LogLevel,
    /// `"text"` for people, `"json"` (one object a line) for log shippers.
    pub format: LogFormat,
    /// Level of the line a refresh gets (a REGISTER that only renews its
    /// bindings): by default below `info`, since phones refresh every few
    /// minutes and would bury the lines that matter.
    pub refreshes: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel::Info,
            format: LogFormat::Text,
            refreshes: LogLevel::Debug,
        }
    }
}

/// How a log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    /// As a `tracing` level; `None` for `off`.
    pub fn level(self) -> Option<tracing::Level> {
        match self {
            LogLevel::Off => None,
            LogLevel::Error => Some(tracing::Level::ERROR),
            LogLevel::Warn => Some(tracing::Level::WARN),
            LogLevel::Info => Some(tracing::Level::INFO),
            LogLevel::Debug => Some(tracing::Level::DEBUG),
            LogLevel::Trace => Some(tracing::Level::TRACE),
        }
    }

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
