//! Flood protection per source IP, like Kamailio's pike module.
//!
//! Each source gets a request count per `window`; a source that sends more
//! than `max_requests` in one window is blocked, and stays blocked until it
//! has been quiet for `block_time` (every dropped request restarts that
//! wait). Blocked traffic is dropped before parsing, so a flood costs one
//! map lookup per packet and cannot slow down other sources. Memory is
//! bounded: at most `MAX_TRACKED` sources are tracked, idle ones are swept.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Sources tracked at most; past that, new sources are let through
/// untracked (failing open beats blocking legitimate phones).
pub const MAX_TRACKED: usize = 200_000;
/// Bounds of `[pike] max_tracked`.
pub const MIN_TRACKED: usize = 16;
pub const MAX_MAX_TRACKED: usize = 10_000_000;

#[derive(Debug, Clone)]
pub struct PikeSettings {
    pub window: Duration,
    pub max_requests: u32,
    pub block_time: Duration,
    /// Sources never limited (e.g. loopback, your own proxies).
    pub trusted: Vec<(IpAddr, u8)>,
    /// Sources tracked at most (`[pike] max_tracked`).
    pub max_tracked: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    count: u32,
    /// Milliseconds (since `Pike::epoch`) until which the source is blocked.
    blocked_until: u64,
    last_seen: u64,
    dropped: u64,
}

/// A source as shown by `pike.top`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub ip: IpAddr,
    pub requests_in_window: u32,
    pub blocked: bool,
    pub dropped: u64,
}

pub struct Pike {
    settings: PikeSettings,
    epoch: Instant,
    sources: DashMap<IpAddr, Entry>,
    /// Requests dropped because their source was blocked.
    pub dropped: AtomicU64,
    /// Sources that became blocked.
    pub blocks: AtomicU64,
}

impl Pike {
    pub fn new(settings: PikeSettings) -> Self {
        Pike {
            settings,
            epoch: Instant::now(),
            sources: DashMap::new(),
            dropped: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.settings
            .trusted
            .iter()
            .any(|&(net, bits)| in_net(ip, net, bits))
    }

    /// Counts a request from `ip`; false if it must be dropped.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, self.now_ms())
    }

    fn allow_at(&self, ip: IpAddr, now: u64) -> bool {
        if self.trusted(ip) {
            return true;
        }
        let window = self.settings.window.as_millis() as u64;
        let block = self.settings.block_time.as_millis() as u64;
        let mut entry = match self.sources.get_mut(&ip) {
            Some(e) => e,
            None => {
                if self.sources.len() >= self.settings.max_tracked {
                    return true;
                }
                self.sources.entry(ip).or_insert(Entry {
                    window_start: now,
                    count: 0,
                    blocked_until: 0,
                    last_seen: now,
                    dropped: 0,
                })
            }
        };
        let e = &mut *entry;
        e.last_seen = now;
        if now < e.blocked_until {
            e.blocked_until = now + block;
            e.dropped += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if now.saturating_sub(e.window_start) >= window {
            e.window_start = now;
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        if e.count > self.settings.max_requests {
            e.blocked_until = now + block;
            e.dropped += 1;
            self.blocks.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%ip, max_requests = self.settings.max_requests, window_ms = window, "pike: source blocked for flooding");
            return false;
        }
        true
    }

    /// Forgets sources idle for longer than a window and a block time.
    pub fn sweep(&self) {
        let now = self.now_ms();
        let idle = (self.settings.window + self.settings.block_time).as_millis() as u64;
        self.sources
            .retain(|_, e| now.saturating_sub(e.last_seen) <= idle || now < e.blocked_until);
    }

    /// The busiest sources, blocked ones first (`pike.top`).
    pub fn top(&self, n: usize) -> Vec<SourceInfo> {
        let now = self.now_ms();
        let window = self.settings.window.as_millis() as u64;
        let mut v: Vec<SourceInfo> = self
            .sources
            .iter()
            .map(|r| {
                let e = r.value();
                SourceInfo {
                    ip: *r.key(),
                    requests_in_window: if now.saturating_sub(e.window_start) < window {
                        e.count
                    } else {
                        0
                    },
                    blocked: now < e.blocked_until,
                    dropped: e.dropped,
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.blocked
                .cmp(&a.blocked)
                .then(b.requests_in_window.cmp(&a.requests_in_window))
                .then(b.dropped.cmp(&a.dropped))
        });
        v.truncate(n);
        v
    }

    /// Sweeps idle sources every window until the runtime stops.
    pub async fn run_sweeper(self: std::sync::Arc<Self>) {
        let period = self.settings.window.max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(period).await;
            self.sweep();
        }
    }
}

/// Whether `ip` is inside `net/bits` (v4-mapped v6 addresses count as v4).
fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = u32::from(bits.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = u32::from(bits.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address.
pub fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pike(trusted: &[&str]) -> Pike {
        Pike::new(PikeSettings {
            window: Duration::from_secs(2),
            max_requests: 3,
            block_time: Duration::from_secs(5),
            trusted: trusted.iter().map(|t| parse_net(t).unwrap()).collect(),
            max_tracked: MAX_TRACKED,
        })
    }

    #[test]
    fn blocks_a_flood_until_it_is_quiet() {
        let p = pike(&[]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| p.allow_at(a, 0)));
        assert!(!p.allow_at(a, 10), "fourth in the window");
        assert!(p.allow_at(b, 10), "other sources are untouched");
        // Still flooding at 4 s: the block extends.
        assert!(!p.allow_at(a, 4_000));
        assert!(!p.allow_at(a, 8_999));
        // Quiet for the block time: allowed again, in a fresh window.
        assert!(p.allow_at(a, 14_000));
        assert_eq!(p.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(p.blocks.load(Ordering::Relaxed), 1);
        // A new window resets the count.
        assert!((0..2).all(|_| p.allow_at(b, 3_000)));
    }

    #[test]
    fn trusted_networks_and_top() {
        let p = pike(&["127.0.0.0/8", "2001:db8::/32"]);
        let lo: IpAddr = "127.0.0.9".parse().unwrap();
        assert!((0..100).all(|_| p.allow_at(lo, 0)));
        assert!((0..100).all(|_| p.allow_at("2001:db8::7".parse().unwrap(), 0)));
        let x: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..5 {
            p.allow_at(x, 0);
        }
        let top = p.top(10);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].ip, x);
        assert_eq!(top[0].dropped, 2);
        assert!(parse_net("10.0.0.0/33").is_none());
        assert!(parse_net("nonsense").is_none());
    }
}
