//! The keepalive's knobs, under usrloc's names, and which bindings they
//! select.

use crate::peer::Proto;
use crate::usrloc::Binding;

/// `ka_mode` bits (Kamailio's usrloc): any bit turns pinging on; 2 and 4
/// narrow it down, together to NATed UDP bindings.
pub mod mode {
    /// Every binding.
    pub const ALL: u32 = 1;
    /// Only bindings marked NATed (their `nat_bflag` bit of `cflags`).
    pub const NATED: u32 = 2;
    /// Only bindings registered over UDP.
    pub const UDP: u32 = 4;
    /// Every bit kamrs knows.
    pub const KNOWN: u32 = ALL | NATED | UDP;
}

/// What a ping is (`ka_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    /// An OPTIONS request, whose reply proves the flow alive and measures
    /// the round trip.
    #[serde(rename = "OPTIONS")]
    Options,
    /// On stream connections a CRLF CRLF ping (RFC 5626 §3.5.1): keeps the
    /// connection's NAT mapping open; the connection itself tells when the
    /// phone is gone. UDP bindings still get OPTIONS (a CRLF datagram has
    /// no answer).
    #[serde(rename = "CRLF")]
    Crlf,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `ka_mode`: 0 = off.
    pub mode: u32,
    /// `ka_interval`: seconds between two pings of one binding.
    pub interval: u32,
    /// `ka_randomize`: spread the pings evenly over the interval (each AoR
    /// at its own fixed offset) instead of sending all at its start.
    pub randomize: bool,
    /// `ka_method`.
    pub method: Method,
    /// `ka_from`: the From URI of the pings.
    pub from: String,
    /// `ka_timeout`: seconds without an answer (or REGISTER) after which
    /// a pinged binding is removed; 0 = never.
    pub timeout: u32,
    /// This node's `server_id`: only bindings carrying it are pinged (in
    /// a cluster sharing a store, the others' flows are on other nodes).
    pub server_id: u32,
    /// The `cflags` bit that marks a binding NATed (`nat_bflag`).
    pub nat_bit: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: 0,
            interval: 30,
            randomize: true,
            method: Method::Options,
            from: "sip:keepalive@kamrs.invalid".to_owned(),
            timeout: 0,
            server_id: 0,
            nat_bit: 1 << 6,
        }
    }
}

impl Settings {
    pub fn enabled(&self) -> bool {
        self.mode != 0
    }

    /// Whether `b` is one this node pings.
    pub fn selects(&self, b: &Binding) -> bool {
        if !self.enabled() || b.server_id != self.server_id {
            return false;
        }
        if self.mode & mode::NATED != 0 && b.cflags & self.nat_bit == 0 {
            return false;
        }
        let udp = b.source().is_none_or(|s| s.proto == Proto::Udp);
        self.mode & mode::UDP == 0 || udp
    }
}
