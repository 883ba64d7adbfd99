//! Bounds the types alone cannot express: each check yields the key at
//! fault and the problem, which loading turns into a `file:line: key`
//! message.

use super::shape::{RouteConfig, TlsConfig, WebsocketConfig};
use super::{
    AuthConfig, AuthMode, Config, CtlConfig, EventsConfig, PikeConfig, StoreBackend, StoreConfig,
};
use crate::peer::ListenAddr;
use crate::registrar::settings::UDP_REPLY_MAX;

/// Upper bound of `udp_workers`.
const MAX_UDP_WORKERS: usize = 256;

/// Bounds that the types alone cannot express. Each entry: the key, and
/// the problem when its value is out of range.
pub(super) fn check_ranges(c: &Config) -> Vec<(&'static str, String)> {
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
    if c.nat_uac_test & !crate::registrar::nat::ALL != 0 {
        bad.push((
            "nat_uac_test",
            format!(
                "{} asks for tests kamrs does not make: the known ones are 1 (private Contact), 2 (Via address), 16 (Via port) and 32 (private source), summed, e.g. 51 for all",
                c.nat_uac_test
            ),
        ));
    }
    if c.flow_timer > 3600 {
        bad.push((
            "flow_timer",
            format!(
                "{} is over 3600 seconds: a NAT forgets a silent flow long before",
                c.flow_timer
            ),
        ));
    }
    if c.ka_mode & !crate::keepalive::mode::KNOWN != 0 {
        bad.push((
            "ka_mode",
            format!(
                "{} has bits kamrs does not know: 1 (every binding), 2 (NATed only), 4 (UDP only), summed, e.g. 6 for NATed UDP bindings; 0 turns keepalive off",
                c.ka_mode
            ),
        ));
    }
    if !(1..=3600).contains(&c.ka_interval) {
        bad.push((
            "ka_interval",
            format!("{} is out of range 1..=3600 (seconds)", c.ka_interval),
        ));
    }
    if c.ka_timeout != 0 && c.ka_timeout < c.ka_interval.saturating_mul(2) {
        bad.push((
            "ka_timeout",
            format!(
                "{} s is less than two ka_interval ({} s): one lost ping would remove a live phone; use at least {} or 0 to never remove",
                c.ka_timeout,
                c.ka_interval,
                c.ka_interval.saturating_mul(2)
            ),
        ));
    }
    if crate::sip::Uri::parse(c.ka_from.as_bytes()).is_none() || c.ka_from.contains(['<', '>']) {
        bad.push((
            "ka_from",
            format!(
                "{:?} is not a SIP URI without brackets, e.g. \"sip:keepalive@registrar.example.com\"",
                c.ka_from
            ),
        ));
    }
    if c.nat_bflag > 31 {
        bad.push((
            "nat_bflag",
            format!("{} is out of range 0..=31 (a bit of cflags)", c.nat_bflag),
        ));
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
    c.events.check(&mut bad);
    c.tls.check(&c.listen, &mut bad);
    c.websocket.check(&mut bad);
    c.route.check(&mut bad);
    bad
}

/// Ranges of the TCP limits (connection caps, read deadlines, write
/// queues): each must be on, and not so large that it stops protecting
/// anything.
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
    // A year: longer is no different in practice, and a deadline that
    // far must still be a representable instant.
    const LIFETIME_MAX: u64 = 365 * 86_400;
    if !(1..=LIFETIME_MAX).contains(&c.tcp_connection_lifetime) {
        bad.push((
            "tcp_connection_lifetime",
            format!(
                "{} is out of range 1..={LIFETIME_MAX} (seconds)",
                c.tcp_connection_lifetime
            ),
        ));
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

impl StoreConfig {
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
}

impl EventsConfig {
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        if !self.webhook.is_empty() {
            if let Err(e) = crate::webhook::Target::parse(&self.webhook) {
                bad.push(("events.webhook", e));
            }
        }
        if !(1..=10_000).contains(&self.webhook_batch) {
            bad.push((
                "events.webhook_batch",
                format!(
                    "{} is out of range 1..=10000 (events per POST)",
                    self.webhook_batch
                ),
            ));
        }
        if !(1..=10_000_000).contains(&self.webhook_queue) {
            bad.push((
                "events.webhook_queue",
                format!(
                    "{} is out of range 1..=10000000 (events; each waiting one holds a copy of its binding, 1 to 10 KiB)",
                    self.webhook_queue
                ),
            ));
        }
        if !(1..=300).contains(&self.webhook_timeout) {
            bad.push((
                "events.webhook_timeout",
                format!("{} is out of range 1..=300 (seconds)", self.webhook_timeout),
            ));
        }
    }
}

impl TlsConfig {
    fn check(&self, listen: &[ListenAddr], bad: &mut Vec<(&'static str, String)>) {
        if let Some(l) = listen.iter().find(|l| l.proto.is_secure()) {
            if self.certificate.is_none() || self.private_key.is_none() {
                bad.push((
                    "tls.certificate",
                    format!(
                        "`listen` has {l}, which needs a certificate: set [tls] certificate and private_key (PEM files, e.g. an ACME client's fullchain.pem and privkey.pem)"
                    ),
                ));
            }
        }
        if self.certificate.is_some() != self.private_key.is_some() {
            bad.push((
                "tls.private_key",
                "certificate and private_key go together: set both or neither".to_owned(),
            ));
        }
        if self.verify_client && self.ca_list.is_none() {
            bad.push((
                "tls.ca_list",
                "verify_client = true needs ca_list, the PEM file of the CAs client certificates must be signed by".to_owned(),
            ));
        }
        if !(1..=60).contains(&self.handshake_timeout) {
            bad.push((
                "tls.handshake_timeout",
                format!(
                    "{} is out of range 1..=60 (seconds)",
                    self.handshake_timeout
                ),
            ));
        }
    }
}

impl WebsocketConfig {
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        for origin in &self.allowed_origins {
            if let Err(why) = crate::rpc::check_origin(origin) {
                bad.push(("websocket.allowed_origins", why));
            }
        }
        if self.allowed_origins.len() > 256 {
            bad.push((
                "websocket.allowed_origins",
                "at most 256 origins".to_owned(),
            ));
        }
        if self.keepalive_timeout > 86_400 {
            bad.push((
                "websocket.keepalive_timeout",
                format!(
                    "{} is out of range 0..=86400 (seconds; 0 = no pings)",
                    self.keepalive_timeout
                ),
            ));
        }
        if !(1..=60).contains(&self.handshake_timeout) {
            bad.push((
                "websocket.handshake_timeout",
                format!(
                    "{} is out of range 1..=60 (seconds)",
                    self.handshake_timeout
                ),
            ));
        }
    }
}

impl RouteConfig {
    fn check(&self, bad: &mut Vec<(&'static str, String)>) {
        if !(100..=300_000).contains(&self.fr_timer) {
            bad.push((
                "route.fr_timer",
                format!(
                    "{} is out of range 100..=300000 (milliseconds)",
                    self.fr_timer
                ),
            ));
        }
        if !(100..=3_600_000).contains(&self.fr_inv_timer) {
            bad.push((
                "route.fr_inv_timer",
                format!(
                    "{} is out of range 100..=3600000 (milliseconds)",
                    self.fr_inv_timer
                ),
            ));
        }
        if !(1..=1_000_000).contains(&self.max_transactions) {
            bad.push((
                "route.max_transactions",
                format!("{} is out of range 1..=1000000", self.max_transactions),
            ));
        }
        if !self.secret.is_empty() && self.secret.len() < 16 {
            bad.push((
                "route.secret",
                "is too short: use at least 16 characters (or leave it out for a random one per start)".to_owned(),
            ));
        }
        for d in &self.domains {
            if d.is_empty()
                || d.len() > 253
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            {
                bad.push((
                    "route.domains",
                    format!("{d:?} is not a host name or address"),
                ));
            }
        }
        if self.domains.len() > 1024 {
            bad.push(("route.domains", "at most 1024 domains".to_owned()));
        }
    }
}
