//! Flood protection per source IP, like Kamailio's pike module.
//!
//! Each source gets a request count per `window`; a source that sends more
//! than `max_requests` in one window is blocked, and stays blocked until it
//! has been quiet for `block_time` (every dropped request restarts that
//! wait). Blocked traffic is dropped before parsing, so a flood costs one
//! bucket lookup per packet and cannot slow down other sources.
//!
//! Memory is bounded by `max_tracked` and the filter never fails open when
//! that is reached (with a table that simply stopped adding
//! sources, 200,000 one-packet sources made every later flooder
//! untracked). Sources live in a fixed set of buckets of [`WAYS`] slots,
//! picked by a keyed hash of the address (the key is random per process,
//! so nobody can aim many addresses at one bucket). A new source takes a
//! free slot of its bucket, else the slot of the least recently seen source
//! there that is *not blocked* (counted in `evicted`): a flooder is always
//! among the most recently seen, so it keeps its slot, and a blocked source
//! is never forgotten while its block lasts. Only when every slot of a
//! bucket holds a blocked source do newcomers to that bucket go untracked;
//! they then share one allowance of `max_requests` per window (the
//! bucket's overflow counter, a one-row count-min sketch), so even that
//! case cannot be used to flood. Every operation is O([`WAYS`]).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default `[pike] max_tracked`. A slot costs about 60 bytes, so the
/// default holds at most about 12 MB (allocated bucket by bucket, as
/// sources arrive).
pub const MAX_TRACKED: usize = 200_000;
/// Bounds of `[pike] max_tracked`.
pub const MIN_TRACKED: usize = 16;
pub const MAX_MAX_TRACKED: usize = 10_000_000;

/// Slots per bucket: the sources a new one competes with for a slot.
/// Eight keeps the scan within a cache line or two of addresses while
/// making it unlikely that all of a bucket's sources are blocked.
pub const WAYS: usize = 8;

#[derive(Debug, Clone)]
pub struct PikeSettings {
    pub window: Duration,
    pub max_requests: u32,
    pub block_time: Duration,
    /// Sources never limited (e.g. loopback, your own proxies).
    pub trusted: Vec<(IpAddr, u8)>,
    /// Sources tracked at most (`[pike] max_tracked`), rounded up to a
    /// multiple of [`WAYS`].
    pub max_tracked: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ip: IpAddr,
    window_start: u64,
    count: u32,
    /// Milliseconds (since `Pike::epoch`) until which the source is blocked.
    blocked_until: u64,
    last_seen: u64,
    dropped: u64,
}

impl Slot {
    fn new(ip: IpAddr, now: u64) -> Slot {
        Slot {
            ip,
            window_start: now,
            count: 0,
            blocked_until: 0,
            last_seen: now,
            dropped: 0,
        }
    }

    fn blocked(&self, now: u64) -> bool {
        now < self.blocked_until
    }
}

/// One bucket: up to [`WAYS`] sources, and the shared allowance of
/// newcomers that found every slot blocked.
#[derive(Debug, Default)]
struct Bucket {
    /// Allocated (exactly [`WAYS`]) when the first source arrives.
    slots: Vec<Slot>,
    overflow_start: u64,
    overflow_count: u32,
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
    buckets: Box<[Mutex<Bucket>]>,
    hasher: RandomState,
    /// Requests dropped because their source was blocked.
    pub dropped: AtomicU64,
    /// Sources that became blocked.
    pub blocks: AtomicU64,
    /// Sources forgotten to make room for a new one (`pike:evicted`).
    pub evicted: AtomicU64,
    /// Requests from sources that found their bucket full of blocked
    /// sources and were counted together (`pike:untracked_requests`).
    pub untracked: AtomicU64,
    /// Sources tracked now (`pike:tracked_sources`, a gauge).
    pub tracked: AtomicU64,
}

impl Pike {
    pub fn new(settings: PikeSettings) -> Self {
        let buckets = settings.max_tracked.max(1).div_ceil(WAYS);
        Pike {
            settings,
            epoch: Instant::now(),
            buckets: (0..buckets).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            dropped: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            tracked: AtomicU64::new(0),
        }
    }

    /// Most sources tracked at once.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.settings
            .trusted
            .iter()
            .any(|&(net, bits)| crate::net::in_net(ip, net, bits))
    }

    fn bucket(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, Bucket> {
        // Multiply-shift maps the hash onto 0..len without a division.
        let h = self.hasher.hash_one(ip);
        let i = ((u128::from(h) * self.buckets.len() as u128) >> 64) as usize;
        self.buckets[i.min(self.buckets.len() - 1)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request from `ip`; false if it must be dropped.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, self.now_ms())
    }

    fn allow_at(&self, ip: IpAddr, now: u64) -> bool {
        if self.trusted(ip) {
            return true;
        }
        // An IPv6 host owns its /64: counted per address it could spread
        // a flood over 2^64 sources, none of them ever over the limit.
        let ip = crate::net::source_prefix(ip);
        let window = self.settings.window.as_millis() as u64;
        let block = self.settings.block_time.as_millis() as u64;
        let mut bucket = self.bucket(ip);
        let b = &mut *bucket;
        let i = match b.slots.iter().position(|s| s.ip == ip) {
            Some(i) => i,
            None if b.slots.len() < WAYS => {
                if b.slots.capacity() == 0 {
                    b.slots.reserve_exact(WAYS);
                }
                b.slots.push(Slot::new(ip, now));
                self.tracked.fetch_add(1, Ordering::Relaxed);
                b.slots.len() - 1
            }
            None => {
                let coldest = b
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.blocked(now))
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(i, _)| i);
                match coldest {
                    Some(i) => {
                        b.slots[i] = Slot::new(ip, now);
                        self.evicted.fetch_add(1, Ordering::Relaxed);
                        i
                    }
                    None => return self.allow_untracked(b, now, window),
                }
            }
        };
        let e = &mut b.slots[i];
        e.last_seen = now;
        if e.blocked(now) {
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

    /// A request from a source with no slot because every slot of its
    /// bucket holds a blocked source: all such sources of the bucket share
    /// one window count, so they cannot flood either.
    fn allow_untracked(&self, b: &mut Bucket, now: u64, window: u64) -> bool {
        self.untracked.fetch_add(1, Ordering::Relaxed);
        if now.saturating_sub(b.overflow_start) >= window {
            b.overflow_start = now;
            b.overflow_count = 0;
        }
        b.overflow_count = b.overflow_count.saturating_add(1);
        if b.overflow_count > self.settings.max_requests {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Forgets sources idle for longer than a window and a block time, so
    /// `pike.top` and the gauge show who is active. (Room for new sources
    /// does not depend on it: they take the coldest slot anyway.)
    pub fn sweep(&self) {
        self.sweep_at(self.now_ms());
    }

    fn sweep_at(&self, now: u64) {
        let idle = (self.settings.window + self.settings.block_time).as_millis() as u64;
        for bucket in self.buckets.iter() {
            let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            let before = b.slots.len();
            b.slots
                .retain(|e| now.saturating_sub(e.last_seen) <= idle || e.blocked(now));
            let gone = before - b.slots.len();
            if gone > 0 {
                self.tracked.fetch_sub(gone as u64, Ordering::Relaxed);
            }
            if b.slots.is_empty() && b.slots.capacity() > 0 {
                b.slots = Vec::new();
            }
        }
    }

    /// The busiest sources, blocked ones first (`pike.top`).
    pub fn top(&self, n: usize) -> Vec<SourceInfo> {
        let now = self.now_ms();
        let window = self.settings.window.as_millis() as u64;
        let mut v: Vec<SourceInfo> = Vec::new();
        for bucket in self.buckets.iter() {
            let b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            v.extend(b.slots.iter().map(|e| SourceInfo {
                ip: e.ip,
                requests_in_window: if now.saturating_sub(e.window_start) < window {
                    e.count
                } else {
                    0
                },
                blocked: e.blocked(now),
                dropped: e.dropped,
            }));
        }
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
mod tests;
