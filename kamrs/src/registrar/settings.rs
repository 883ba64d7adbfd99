//! The registrar's knobs, taken from the config (docs/design.md §5) once at start.
//! The registrar owns them and their enums; `config.rs` maps the file onto
//! them (`impl From<&Config> for Settings` lives there), never the other way.

use serde::{Deserialize, Serialize};

/// Default and upper bound of `udp_reply_max_size`: the most an IPv4 UDP
/// datagram carries (65,535 less the IP and UDP headers).
pub const UDP_REPLY_MAX: usize = 65_507;

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

/// Registrar parameters with Kamailio's names.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_expires: u32,
    pub min_expires: u32,
    pub min_expires_mode: MinExpiresMode,
    /// 0 = no upper bound.
    pub max_expires: u32,
    /// 0 = unlimited.
    pub max_contacts: u32,
    pub max_contacts_policy: MaxContactsPolicy,
    pub use_domain: bool,
    pub use_path: bool,
    pub contact_max_size: usize,
    /// Longest Call-ID accepted (`callid_max_size`).
    pub callid_max_size: usize,
    /// Longest User-Agent stored; longer ones are cut (`user_agent_max_size`).
    pub user_agent_max_size: usize,
    /// Largest UDP reply (`udp_reply_max_size`), see [`super::budget`].
    pub udp_reply_max_size: usize,
    /// Which of Kamailio's `nat_uac_test` tests mark a binding NATed
    /// ([`super::nat`]); 0 turns detection off.
    pub nat_uac_test: u32,
    /// The branch flag (bit of the binding's `cflags`) that marks it NATed
    /// (Kamailio's `nat_bflag`).
    pub nat_bflag: u8,
    /// The `Flow-Timer` of a 200 for an RFC 5626 flow (Kamailio's
    /// `flow_timer`): seconds the registrar waits for a keepalive; 0 picks
    /// by transport ([`FLOW_TIMER_UDP`], [`FLOW_TIMER_STREAM`]).
    pub flow_timer: u32,
    /// This node's `server_id`, stored in the bindings it makes.
    pub server_id: u32,
    /// The level of a refresh's log line (`[log] refreshes`); `None`: not
    /// logged.
    pub refresh_log: Option<tracing::Level>,
}

/// RFC 5626 §4.4.2: STUN keepalives on UDP every 24 to 29 s keep NAT
/// mappings alive; a phone told 30 pings at 80–100 % of it.
pub const FLOW_TIMER_UDP: u32 = 30;
/// RFC 5626 §4.4.1: CRLF keepalives on streams every 95 to 120 s.
pub const FLOW_TIMER_STREAM: u32 = 120;

/// The embedded defaults: `Config::default()` takes them from here.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_expires: 3600,
            min_expires: 60,
            min_expires_mode: MinExpiresMode::Reject,
            max_expires: 3600,
            max_contacts: 10,
            max_contacts_policy: MaxContactsPolicy::Reject,
            use_domain: false,
            use_path: false,
            contact_max_size: 512,
            callid_max_size: 255,
            user_agent_max_size: 255,
            udp_reply_max_size: UDP_REPLY_MAX,
            nat_uac_test: super::nat::ALL,
            nat_bflag: 6,
            flow_timer: 0,
            server_id: 0,
            refresh_log: Some(tracing::Level::DEBUG),
        }
    }
}
