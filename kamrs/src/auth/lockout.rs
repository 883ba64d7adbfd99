//! Brute-force lock-out: wrong digest answers are counted, and
//! past a threshold within `lockout_window` the guesser is refused (403)
//! for `lockout_time` without its answer even being checked, so the right
//! password fails too and guessing learns nothing.
//!
//! Counting per nonce (`max_failures`) cannot do this: a REGISTER without
//! credentials gets a fresh nonce and a fresh count. So failures are
//! counted here, at three scopes, because each alone is either too weak or
//! a weapon:
//!
//! - **pair** (subscriber `user@realm` from one source address),
//!   `lockout_failures`: the ordinary case, one source guessing one
//!   account. Locking the pair never locks the real user out from their
//!   own address, so an attacker cannot use it to deny service.
//! - **source** (one address, any user), `lockout_source_failures`: one
//!   source spraying many accounts. An IPv6 source counts as its /64,
//!   which one host usually holds whole. Behind a NAT shared with the
//!   victim this can lock the victim out too, hence a higher threshold.
//! - **user** (one subscriber, any source), `lockout_user_failures`: many
//!   sources guessing one account, each staying under the pair threshold.
//!   This one could let an attacker with many addresses lock a victim
//!   out, so its threshold is higher still and 0 turns it off.
//!
//! What keeps the last two from being weapons: a user+source pair that
//! answered right within the last [`TRUST_TIME`] is **trusted**, and the
//! source and user lock-outs do not apply to it, only its own pair count
//! does. The subscriber's phones, which registered before the attack, keep
//! registering while the attacker's addresses are locked out, and an
//! attacker sharing a trusted address still meets the pair limit.
//!
//! Two more exemptions:
//!
//! - **Trusted networks** (`[pike] trusted`: loopback and the operator's
//!   own edge proxies). Everyone behind a proxy shares its address, so
//!   the pair and source scopes would let one attacker lock every user of
//!   the proxy, or every phone of the victim's, out. From those networks
//!   only the user scope counts, and without the trusted-pair exemption
//!   (everyone there shares the pair too).
//! - **Registered sources**: the caller says (lazily, only when the user
//!   scope is locked) whether the source holds a live binding of the AoR.
//!   Such a source is spared the user scope like a trusted pair: trusted
//!   pairs live in memory only, but bindings preloaded from a store
//!   survive a restart, so registered phones keep registering.
//!
//! Every table is bounded ([`CAPACITY`] entries each, fixed-size keys: a
//! keyed hash, so long or numerous user names cannot grow it). When one is
//! full, entries whose window and lock are over go first, then unlocked
//! entries with the oldest windows, and locked entries only last: to free
//! its own lock by filling the table an attacker must lock `CAPACITY`
//! other keys first.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Entries per table at most (about 40 bytes each with the map's own).
pub const CAPACITY: usize = 65_536;

/// Seconds a right answer keeps its user+source pair trusted: a day, longer
/// than any phone's re-registration interval.
pub const TRUST_TIME: u64 = 86_400;

/// The `[auth] lockout_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutSettings {
    /// Wrong answers for one subscriber from one source (0: off).
    pub failures: u32,
    /// Wrong answers from one source for any subscriber (0: off).
    pub source_failures: u32,
    /// Wrong answers for one subscriber from any source (0: off).
    pub user_failures: u32,
    /// Seconds over which failures are counted.
    pub window: u64,
    /// Seconds a lock-out lasts.
    pub time: u64,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            failures: 10,
            source_failures: 50,
            user_failures: 100,
            window: 300,
            time: 300,
        }
    }
}

/// Which count reached its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Pair,
    Source,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Pair => "user+source",
            Scope::Source => "source",
            Scope::User => "user",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    count: u32,
    /// 0: not locked.
    locked_until: u64,
}

struct Table {
    map: Mutex<HashMap<u64, Entry>>,
    threshold: u32,
    capacity: usize,
}

impl Table {
    fn new(threshold: u32, capacity: usize) -> Table {
        Table {
            map: Mutex::new(HashMap::new()),
            threshold,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        crate::util::lock(&self.map)
    }

    fn locked(&self, key: u64, now: u64) -> bool {
        self.threshold != 0 && self.lock().get(&key).is_some_and(|e| e.locked_until > now)
    }

    /// Counts one failure; true when it starts a lock-out.
    fn fail(&self, key: u64, now: u64, s: &LockoutSettings, evicted: &AtomicU64) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= self.capacity {
            make_room(&mut map, self.capacity, now, s.window, evicted);
        }
        let e = map.entry(key).or_insert(Entry {
            window_start: now,
            count: 0,
            locked_until: 0,
        });
        if e.locked_until > now {
            return false;
        }
        if now.saturating_sub(e.window_start) > s.window || e.locked_until != 0 {
            *e = Entry {
                window_start: now,
                count: 0,
                locked_until: 0,
            };
        }
        e.count = e.count.saturating_add(1);
        if e.count >= self.threshold {
            e.locked_until = now.saturating_add(s.time);
            return true;
        }
        false
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Frees an eighth of a full table (so the next insertions do not each pay
/// for a sweep): finished entries, then the oldest unlocked windows, then
/// the locks that end soonest.
fn make_room(
    map: &mut HashMap<u64, Entry>,
    capacity: usize,
    now: u64,
    window: u64,
    evicted: &AtomicU64,
) {
    map.retain(|_, e| e.locked_until > now || now.saturating_sub(e.window_start) <= window);
    let target = capacity - capacity / 8;
    if map.len() < target.max(1) {
        return;
    }
    let mut order: Vec<(bool, u64, u64)> = map
        .iter()
        .map(|(&k, e)| {
            let locked = e.locked_until > now;
            (
                locked,
                if locked {
                    e.locked_until
                } else {
                    e.window_start
                },
                k,
            )
        })
        .collect();
    order.sort_unstable();
    let excess = map.len() + 1 - target.max(1);
    for (_, _, k) in order.into_iter().take(excess) {
        map.remove(&k);
        evicted.fetch_add(1, Ordering::Relaxed);
    }
}

/// User+source pairs that answered right lately: key → last success.
struct Trusted {
    map: Mutex<HashMap<u64, u64>>,
    capacity: usize,
}

impl Trusted {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        crate::util::lock(&self.map)
    }

    fn contains(&self, key: u64, now: u64) -> bool {
        self.lock()
            .get(&key)
            .is_some_and(|&t| now.saturating_sub(t) <= TRUST_TIME)
    }

    /// Records a success; when full, drops lapsed entries, then the eighth
    /// least recently used.
    fn insert(&self, key: u64, now: u64, evicted: &AtomicU64) {
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= self.capacity {
            map.retain(|_, t| now.saturating_sub(*t) <= TRUST_TIME);
            let target = (self.capacity - self.capacity / 8).max(1);
            if map.len() >= target {
                let mut order: Vec<(u64, u64)> = map.iter().map(|(&k, &t)| (t, k)).collect();
                order.sort_unstable();
                let excess = map.len() + 1 - target;
                for (_, k) in order.into_iter().take(excess) {
                    map.remove(&k);
                    evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        map.insert(key, now);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The three failure tables, the trusted pairs and their counters.
pub struct Lockout {
    settings: LockoutSettings,
    /// `[pike] trusted` networks (`crate::pike::parse_net`).
    trusted_nets: Vec<(IpAddr, u8)>,
    keys: RandomState,
    pairs: Table,
    sources: Table,
    users: Table,
    trusted: Trusted,
    /// Lock-outs begun (`auth:lockouts`).
    pub lockouts: AtomicU64,
    /// REGISTERs refused because a lock-out was in force
    /// (`auth:locked_out`).
    pub refused: AtomicU64,
    /// Entries dropped from a full table while still counting
    /// (`auth:lockout_evicted`).
    pub evicted: AtomicU64,
}

impl Lockout {
    pub fn new(settings: LockoutSettings) -> Lockout {
        Lockout::with_capacity(settings, CAPACITY)
    }

    pub fn with_capacity(settings: LockoutSettings, capacity: usize) -> Lockout {
        Lockout {
            trusted_nets: Vec::new(),
            pairs: Table::new(settings.failures, capacity),
            sources: Table::new(settings.source_failures, capacity),
            users: Table::new(settings.user_failures, capacity),
            trusted: Trusted {
                map: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
            },
            settings,
            keys: RandomState::new(),
            lockouts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Sources in these networks (`[pike] trusted`) count only towards
    /// the user scope.
    pub fn with_trusted_networks(mut self, nets: Vec<(IpAddr, u8)>) -> Lockout {
        self.trusted_nets = nets;
        self
    }

    fn in_trusted_network(&self, ip: IpAddr) -> bool {
        self.trusted_nets
            .iter()
            .any(|&(net, bits)| crate::net::in_net(ip, net, bits))
    }

    pub fn settings(&self) -> &LockoutSettings {
        &self.settings
    }

    /// Entries in all four tables (`auth:lockout_tracked`).
    pub fn tracked(&self) -> usize {
        self.pairs.len() + self.sources.len() + self.users.len() + self.trusted.len()
    }

    fn source_key(&self, ip: IpAddr) -> u64 {
        self.keys
            .hash_one(("source", crate::net::source_prefix(ip)))
    }

    fn user_key(&self, user: &str, realm: &str) -> u64 {
        self.keys.hash_one(("user", user, realm))
    }

    fn pair_key(&self, user: &str, realm: &str, ip: IpAddr) -> u64 {
        self.keys.hash_one(("pair", user, realm, ip))
    }

    /// The lock-out in force for an answer as `user` from `ip`, if any;
    /// counted in `refused`. A trusted pair meets only its own pair limit;
    /// `registered` (asked only while the user scope is locked) says the
    /// source holds a live binding of the AoR, which spares it the user
    /// scope. A source in a trusted network meets only the user scope,
    /// with no exemption.
    pub fn refused(
        &self,
        user: &str,
        realm: &str,
        ip: IpAddr,
        now: u64,
        registered: &dyn Fn() -> bool,
    ) -> Option<Scope> {
        let scope = if self.in_trusted_network(ip) {
            self.users
                .locked(self.user_key(user, realm), now)
                .then_some(Scope::User)
        } else {
            let pair = self.pair_key(user, realm, ip);
            if self.pairs.locked(pair, now) {
                Some(Scope::Pair)
            } else {
                let wider = if self.sources.locked(self.source_key(ip), now) {
                    Some(Scope::Source)
                } else if self.users.locked(self.user_key(user, realm), now) {
                    Some(Scope::User)
                } else {
                    None
                };
                // Asked only during a lock-out: no cost otherwise.
                wider
                    .filter(|_| !self.trusted.contains(pair, now))
                    .filter(|&s| s != Scope::User || !registered())
            }
        };
        if scope.is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        scope
    }

    /// Records a right answer as `user` from `ip`: the pair is trusted for
    /// [`TRUST_TIME`]. Nothing is recorded while the source and user
    /// lock-outs are both off (the trust would never be asked).
    pub fn success(&self, user: &str, realm: &str, ip: IpAddr, now: u64) {
        if self.settings.source_failures == 0 && self.settings.user_failures == 0
            || self.in_trusted_network(ip)
        {
            return;
        }
        self.trusted
            .insert(self.pair_key(user, realm, ip), now, &self.evicted);
    }

    /// Counts a wrong answer; the scopes whose lock-out it starts.
    pub fn failure(&self, user: &str, realm: &str, ip: IpAddr, now: u64) -> Vec<Scope> {
        let s = &self.settings;
        let mut started = Vec::new();
        // From a trusted network (a proxy shared by many) only the user.
        let skip = usize::from(self.in_trusted_network(ip)) * 2;
        for (table, key, scope) in [
            (&self.pairs, self.pair_key(user, realm, ip), Scope::Pair),
            (&self.sources, self.source_key(ip), Scope::Source),
            (&self.users, self.user_key(user, realm), Scope::User),
        ]
        .into_iter()
        .skip(skip)
        {
            if table.fail(key, now, s, &self.evicted) {
                started.push(scope);
            }
        }
        self.lockouts
            .fetch_add(started.len() as u64, Ordering::Relaxed);
        started
    }
}

#[cfg(test)]
mod tests;
