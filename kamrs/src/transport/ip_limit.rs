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
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::net::{canonical, in_net, source_prefix};

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
        let key = source_prefix(ip);
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
        open.get(&source_prefix(ip)).copied().unwrap_or(0)
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
}
