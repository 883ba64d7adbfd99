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
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_source_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(source_prefix(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_prefix(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            source_prefix(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            source_prefix(ip("2001:db8:1:2::1")),
            source_prefix(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            source_prefix(ip("2001:db8:1:2::1")),
            source_prefix(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn networks_match_by_prefix_and_family() {
        assert!(in_net(ip("127.1.2.3"), ip("127.0.0.0"), 8));
        assert!(in_net(ip("::ffff:127.1.2.3"), ip("127.0.0.0"), 8));
        assert!(!in_net(ip("128.0.0.1"), ip("127.0.0.0"), 8));
        assert!(in_net(ip("10.0.0.1"), ip("0.0.0.0"), 0));
        assert!(in_net(ip("::1"), ip("::1"), 128));
        assert!(!in_net(ip("::2"), ip("::1"), 128));
        assert!(in_net(ip("2001:db8::5"), ip("2001:db8::"), 32));
        assert!(!in_net(ip("127.0.0.1"), ip("::1"), 128));
        assert!(in_net(ip("192.0.2.1"), ip("192.0.2.1"), 99));
    }
}
