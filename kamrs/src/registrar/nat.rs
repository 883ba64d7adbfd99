//! Is this phone behind a NAT? Kamailio's `nat_uac_test` (nathelper),
//! the tests a registrar can make from a REGISTER alone. A binding found
//! NATed is shown as `Keepalive` in `ul.dump` and is what `ka_mode` can
//! limit pinging to.
//!
//! The test numbers and their meaning are Kamailio's, so an operator's
//! `nat_uac_test(51)` habit carries over:
//!
//! | bit | test |
//! |---|---|
//! | 1 | the Contact names a private address |
//! | 2 | the top Via's address is not the packet's source address |
//! | 16 | the top Via's port is not the packet's source port |
//! | 32 | the source address itself is private |
//!
//! "Private" is RFC 1918, RFC 6598 (carrier-grade NAT, 100.64/10),
//! 192.0.0.0/29 (DS-Lite), and for IPv6 unique-local fc00::/7, the same
//! list as Kamailio's plus ULA.

use std::net::{IpAddr, SocketAddr};

use crate::net::in_net;

/// Contact names a private address.
pub const CONTACT_PRIVATE: u32 = 1;
/// Top Via address differs from the source address.
pub const VIA_ADDRESS: u32 = 2;
/// Top Via port differs from the source port.
pub const VIA_PORT: u32 = 16;
/// The source address is private.
pub const SOURCE_PRIVATE: u32 = 32;
/// Every test kamrs knows (what Kamailio's 51 asks for).
pub const ALL: u32 = CONTACT_PRIVATE | VIA_ADDRESS | VIA_PORT | SOURCE_PRIVATE;

/// What one REGISTER says about where its sender is.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The host of the Contact URI being saved, as written.
    pub contact_host: &'a str,
    /// The top Via's sent-by host, as written.
    pub via_host: &'a str,
    /// The top Via's port, if written.
    pub via_port: Option<u16>,
    /// Whether the transport is TLS (Via default port 5061 instead of 5060).
    pub tls: bool,
    /// The packet's source.
    pub source: SocketAddr,
}

/// Whether any of the `tests` (bits above) says the sender is NATed.
pub fn is_nated(tests: u32, e: &Evidence<'_>) -> bool {
    let source = crate::net::canonical(e.source.ip());
    (tests & CONTACT_PRIVATE != 0 && host_ip(e.contact_host).is_some_and(is_private))
        || (tests & VIA_ADDRESS != 0
            && host_ip(e.via_host).map(crate::net::canonical) != Some(source))
        || (tests & VIA_PORT != 0
            && e.via_port.unwrap_or(if e.tls { 5061 } else { 5060 }) != e.source.port())
        || (tests & SOURCE_PRIVATE != 0 && is_private(source))
}

/// The address a URI or Via host names, when it is a literal one (IPv6
/// in brackets or not). A name is not an address: `None`.
fn host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The `cflags` mask of branch flag `nat_bflag` (0..=31; the config
/// refuses more, and more is read as 31).
pub fn bit(nat_bflag: u8) -> u32 {
    1u32 << nat_bflag.min(31)
}

/// The private ranges above.
pub fn is_private(ip: IpAddr) -> bool {
    const V4: &[([u8; 4], u8)] = &[
        ([10, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 168, 0, 0], 16),
        ([100, 64, 0, 0], 10),
        ([192, 0, 0, 0], 29),
    ];
    match crate::net::canonical(ip) {
        IpAddr::V4(_) => V4
            .iter()
            .any(|(net, bits)| in_net(ip, IpAddr::from(*net), *bits)),
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    }
}

#[cfg(test)]
mod tests;
