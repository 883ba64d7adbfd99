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
mod tests;
