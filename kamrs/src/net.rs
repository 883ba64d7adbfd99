//! Addresses as the limits see them: which network a source belongs to,
//! and under what key one source is counted. Shared by pike, the TCP
//! per-address cap and the authentication lock-out, so that all three
//! agree on what "one source" is.

use std::net::{IpAddr, Ipv6Addr};

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 host.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What one source is counted under: its IPv4 address, or its IPv6 /64.
/// One host usually owns a whole /64 and can send from any address in
/// it, so counting IPv6 per address would let it dodge every per-source
/// limit by changing address per request.
pub fn source_prefix(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Whether `ip` is inside `net/bits` (same family once v4-mapped IPv6 is
/// read as IPv4; `bits` past the family's width counts as the width).
pub fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = u32::from(bits.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = u32::from(bits.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
