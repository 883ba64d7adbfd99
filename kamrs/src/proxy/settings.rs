//! What `[route]` decides about requests that are not REGISTER.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[route] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The tutorial's routing: INVITE 480, ACK absorbed, the rest 501.
    #[default]
    Registrar,
    /// Requests to our users reach their bindings (RFC 3261 §16).
    Proxy,
    /// Requests to our users get 302 with their bindings.
    Redirect,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Registrar => "registrar",
            Mode::Proxy => "proxy",
            Mode::Redirect => "redirect",
        }
    }
}

/// The proxy's settings, from `[route]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// Host names (and addresses) whose users are ours besides the
    /// addresses kamrs listens on and the AoRs it has bindings for.
    pub domains: Vec<String>,
    /// Forward requests for other domains (to an address in the
    /// Request-URI) instead of refusing them with 403.
    pub relay_foreign: bool,
    /// Stay on the path of dialogs (Record-Route); needed for phones
    /// behind NAT and on connections.
    pub record_route: bool,
    /// How long a branch may go without any response (Kamailio's tm
    /// `fr_timer`; RFC 3261 timers B and F).
    pub fr_timer: Duration,
    /// How long an INVITE branch may ring without a final response
    /// (Kamailio's `fr_inv_timer`; RFC 3261 timer C).
    pub fr_inv_timer: Duration,
    /// Most transactions at once; more requests get 503.
    pub max_transactions: usize,
    /// Fork to one q group at a time, best q first, the next when every
    /// branch of the group failed (RFC 3261 §16.6 step 1's sequential
    /// search; Kamailio's `t_load_contacts`/`t_next_contacts`). Off: all
    /// bindings at once.
    pub serial_forking: bool,
    /// Challenge requests claiming one of our users as From with 407
    /// (when `[auth]` is on), so a caller must own its identity.
    pub authenticate_calls: bool,
    /// Take calls from other domains to our users without a challenge.
    pub accept_foreign_callers: bool,
    /// RFC 3261 T1 (first retransmission interval, Kamailio's
    /// `retr_timer1`), T2 (its cap, `retr_timer2`) and T4.
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Registrar,
            domains: Vec::new(),
            relay_foreign: false,
            record_route: true,
            fr_timer: Duration::from_secs(30),
            fr_inv_timer: Duration::from_secs(120),
            max_transactions: 10_000,
            serial_forking: false,
            authenticate_calls: true,
            accept_foreign_callers: true,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Settings {
    /// 64·T1: how long a finished transaction absorbs retransmissions.
    pub fn linger(&self) -> Duration {
        self.t1 * 64
    }
}
