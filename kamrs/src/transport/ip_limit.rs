//! Open TCP connections per source address (`tcp_accept_iplimit`, the
//! name Kamailio uses for the same limit).
//!
//! `tcp_max_connections` alone lets one host hold every slot (slowloris:
//! 64 connections dripping a byte a second kept a 64-slot table full), so
//! each source address may hold at most `tcp_accept_iplimit` of them. An
//! IPv6 source counts per /64: one host is routinely given a whole /64, so
//! counting per /128 would give an attacker as many addresses as it likes.
//! Networks in `[pike] trusted` (your own proxies, loopback by default) are
//! not limited: an edge proxy legitimately carries many phones.
//!
//! The table holds an entry only while its address has a connection open,
//! so it is bounded by the number of open connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The per-address counts, shared by every TCP listener.
#[derive(Debug)]
pub struct IpLimit {
    max: usize,
    trusted: Vec<(IpAddr, u8)>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's share of its address's count, given back
/// when dropped. Trusted sources hold an uncounted slot.
#[derive(Debug)]
pub struct IpSlot {
    limit: Arc<IpLimit>,
    /// None: a trusted source, not counted.
    key: Option<IpAddr>,
}

impl IpLimit {
    /// `max` connections per address (at least 1); `trusted` networks as
    /// `[pike] trusted` gives them (`crate::pike::parse_net`).
    pub fn new(max: usize, trusted: Vec<(IpAddr, u8)>) -> Arc<IpLimit> {
        Arc::new(IpLimit {
            max: max.max(1),
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or None when that address
    /// already holds `max` connections.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = canonical(ip);
        if self
            .trusted
            .iter()
            .any(|&(net, bits)| in_net(ip, net, bits))
        {
            return Some(IpSlot {
                limit: Arc::clone(self),
                key: None,
            });
        }
        let key = source_key(ip);
        // The lock is held for one map operation, never across an await; a
        // panic elsewhere cannot leave the counts half-updated.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.get(&key).copied().unwrap_or(0);
        if n >= self.max {
            return None;
        }
        open.insert(key, n + 1);
        Some(IpSlot {
            limit: Arc::clone(self),
            key: Some(key),
        })
    }

    /// Connections counted for `ip`'s address (or /64) now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&source_key(canonical(ip))).copied().unwrap_or(0)
    }

    /// Addresses with at least one counted connection.
    pub fn tracked(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self
            .limit
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 host.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What one source is counted under: the IPv4 address, or the IPv6 /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Whether `ip` is inside `net/bits` (same family only).
fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
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
    fn counts_per_address_and_frees_on_drop() {
        let l = IpLimit::new(2, vec![]);
        let a1 = l.admit(ip("192.0.2.1")).unwrap();
        let a2 = l.admit(ip("192.0.2.1")).unwrap();
        assert!(l.admit(ip("192.0.2.1")).is_none(), "third from one address");
        // Another address is not affected.
        let b = l.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(l.open_from(ip("192.0.2.1")), 2);
        drop(a1);
        let a3 = l.admit(ip("192.0.2.1")).expect("a slot was freed");
        drop((a2, a3, b));
        assert_eq!(l.tracked(), 0, "no entry outlives its connections");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_is_ipv4() {
        let l = IpLimit::new(1, vec![]);
        let _a = l.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(l.admit(ip("2001:db8:1:2:ffff::9")).is_none(), "same /64");
        let _b = l.admit(ip("2001:db8:1:3::1")).expect("another /64");
        let _c = l.admit(ip("198.51.100.7")).unwrap();
        assert!(l.admit(ip("::ffff:198.51.100.7")).is_none());
    }

    #[test]
    fn trusted_networks_are_not_limited() {
        let trusted = vec![
            crate::pike::parse_net("10.0.0.0/8").unwrap(),
            crate::pike::parse_net("::1").unwrap(),
        ];
        let l = IpLimit::new(1, trusted);
        let slots: Vec<_> = (0..5).map(|_| l.admit(ip("10.1.2.3")).unwrap()).collect();
        let more: Vec<_> = (0..5).map(|_| l.admit(ip("::1")).unwrap()).collect();
        assert_eq!(l.tracked(), 0);
        let _x = l.admit(ip("11.0.0.1")).unwrap();
        assert!(l.admit(ip("11.0.0.1")).is_none());
        drop((slots, more));
    }

    #[test]
    fn net_membership() {
        assert!(in_net(ip("127.0.0.2"), ip("127.0.0.0"), 8));
        assert!(!in_net(ip("128.0.0.1"), ip("127.0.0.0"), 8));
        assert!(in_net(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_net(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(!in_net(ip("2001:db9::1"), ip("2001:db8::"), 32));
        assert!(!in_net(ip("::1"), ip("127.0.0.1"), 8), "families differ");
    }
}
