//! Brute-force lock-out (issue 13): wrong digest answers are counted, and
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
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    /// A proxy's address, in `[pike] trusted`.
    const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    fn no() -> bool {
        false
    }
    const NO: fn() -> bool = no;

    fn behind_proxy() -> Lockout {
        Lockout::new(settings())
            .with_trusted_networks(vec![(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 0)), 8)])
    }

    #[test]
    fn a_trusted_network_counts_only_the_user_scope() {
        let l = behind_proxy();
        // Past the pair (3) and source (5) thresholds for alice and others:
        // neither locks the proxy.
        for _ in 0..7 {
            assert!(l.failure("alice", "r", PROXY, 0).is_empty());
        }
        for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
            assert!(l.failure(user, "r", PROXY, 0).is_empty());
        }
        assert_eq!(l.refused("alice", "r", PROXY, 1, &NO), None);
        assert_eq!(l.refused("bob", "r", PROXY, 1, &NO), None);
        assert_eq!(l.tracked(), 7, "only user entries");
        // The user scope still counts, and a right answer through the
        // proxy earns no trust (the attacker shares the pair).
        l.success("alice", "r", PROXY, 1);
        assert_eq!(l.failure("alice", "r", PROXY, 2), [Scope::User]);
        assert_eq!(l.refused("alice", "r", PROXY, 3, &NO), Some(Scope::User));
        assert_eq!(
            l.refused("alice", "r", PROXY, 3, &|| true),
            Some(Scope::User)
        );
        assert_eq!(l.refused("bob", "r", PROXY, 3, &NO), None);
        // Outside the network the pair scope applies as before.
        for _ in 0..3 {
            l.failure("bob", "r", A, 4);
        }
        assert_eq!(l.refused("bob", "r", A, 5, &NO), Some(Scope::Pair));
    }

    #[test]
    fn a_registered_source_is_spared_the_user_scope_only() {
        let l = Lockout::new(settings());
        for i in 0..8u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
            l.failure("alice", "r", ip, 0);
        }
        // No trusted pair (a restart): a source with a live binding of
        // alice's goes on, any other is refused.
        let asked = std::cell::Cell::new(0);
        let registered = || {
            asked.set(asked.get() + 1);
            true
        };
        assert_eq!(l.refused("alice", "r", B, 1, &registered), None);
        assert_eq!(l.refused("alice", "r", A, 1, &NO), Some(Scope::User));
        assert_eq!(asked.get(), 1);
        // Not asked when nothing is locked.
        assert_eq!(l.refused("bob", "r", B, 1, &registered), None);
        assert_eq!(asked.get(), 1);
        // A registered source meets its own pair and source limits.
        for user in ["u1", "u2", "u3", "u4", "u5"] {
            l.failure(user, "r", B, 2);
        }
        assert_eq!(
            l.refused("alice", "r", B, 3, &registered),
            Some(Scope::Source)
        );
    }

    fn settings() -> LockoutSettings {
        LockoutSettings {
            failures: 3,
            source_failures: 5,
            user_failures: 8,
            window: 60,
            time: 100,
        }
    }

    #[test]
    fn pair_locks_after_threshold_others_unaffected_until_it_ends() {
        let l = Lockout::new(settings());
        assert!(l.failure("alice", "r", A, 0).is_empty());
        assert!(l.failure("alice", "r", A, 1).is_empty());
        assert_eq!(l.failure("alice", "r", A, 2), [Scope::Pair]);
        assert_eq!(l.refused("alice", "r", A, 3, &NO), Some(Scope::Pair));
        // Another source for alice, another user from A: not locked.
        assert_eq!(l.refused("alice", "r", B, 3, &NO), None);
        assert_eq!(l.refused("bob", "r", A, 3, &NO), None);
        // Until the lock-out time is over.
        assert_eq!(l.refused("alice", "r", A, 101, &NO), Some(Scope::Pair));
        assert_eq!(l.refused("alice", "r", A, 102, &NO), None);
        assert_eq!(l.lockouts.load(Ordering::Relaxed), 1);
        assert_eq!(l.refused.load(Ordering::Relaxed), 2);
        // A fresh count afterwards.
        assert!(l.failure("alice", "r", A, 103).is_empty());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let l = Lockout::new(settings());
        for t in [0, 61, 122, 183] {
            assert!(l.failure("alice", "r", A, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn one_source_spraying_users_and_many_sources_one_user() {
        let l = Lockout::new(settings());
        for (i, user) in ["u1", "u2", "u3", "u4"].iter().enumerate() {
            assert!(l.failure(user, "r", A, i as u64).is_empty());
        }
        assert_eq!(l.failure("u5", "r", A, 5), [Scope::Source]);
        assert_eq!(l.refused("anyone", "r", A, 6, &NO), Some(Scope::Source));
        let l = Lockout::new(settings());
        for i in 0..7u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
            assert!(l.failure("alice", "r", ip, 0).is_empty());
        }
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 99));
        assert_eq!(l.failure("alice", "r", ip, 0), [Scope::User]);
        assert_eq!(l.refused("alice", "r", B, 1, &NO), Some(Scope::User));
        assert_eq!(l.refused("alice", "other realm", B, 1, &NO), None);
    }

    #[test]
    fn a_trusted_pair_is_spared_source_and_user_lockouts_not_its_own() {
        let l = Lockout::new(settings());
        // alice's phone at B answered right before the attack.
        l.success("alice", "r", B, 0);
        // Many addresses guess alice: the user lock-out starts.
        for i in 0..8u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
            l.failure("alice", "r", ip, 1);
        }
        assert_eq!(l.refused("alice", "r", A, 2, &NO), Some(Scope::User));
        assert_eq!(
            l.refused("alice", "r", B, 2, &NO),
            None,
            "her phone goes on"
        );
        // B sprays other users: the source locks, but alice at B is trusted.
        for user in ["u1", "u2", "u3", "u4", "u5"] {
            l.failure(user, "r", B, 3);
        }
        assert_eq!(l.refused("u6", "r", B, 4, &NO), Some(Scope::Source));
        assert_eq!(l.refused("alice", "r", B, 4, &NO), None);
        // Guessing alice from B itself still meets the pair limit.
        for _ in 0..3 {
            l.failure("alice", "r", B, 5);
        }
        assert_eq!(l.refused("alice", "r", B, 6, &NO), Some(Scope::Pair));
        // Trust lapses.
        let l = Lockout::new(settings());
        l.success("alice", "r", B, 0);
        for i in 0..8u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
            l.failure("alice", "r", ip, TRUST_TIME + 1);
        }
        assert_eq!(
            l.refused("alice", "r", B, TRUST_TIME + 2, &NO),
            Some(Scope::User)
        );
    }

    #[test]
    fn the_trusted_table_is_bounded() {
        let l = Lockout::with_capacity(settings(), 64);
        for i in 0..10_000u32 {
            l.success(&format!("u{i}"), "r", A, u64::from(i));
            assert!(l.trusted.len() <= 64);
        }
        // The most recent stay.
        assert!(l.trusted.contains(l.pair_key("u9999", "r", A), 10_000));
    }

    #[test]
    fn zero_turns_a_scope_off() {
        let l = Lockout::new(LockoutSettings {
            failures: 0,
            source_failures: 0,
            user_failures: 0,
            ..settings()
        });
        for t in 0..100 {
            assert!(l.failure("alice", "r", A, t).is_empty());
        }
        assert_eq!(l.refused("alice", "r", A, 100, &NO), None);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(crate::net::source_prefix(a), crate::net::source_prefix(b));
        assert_ne!(crate::net::source_prefix(a), crate::net::source_prefix(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(crate::net::source_prefix(mapped), A);
    }

    #[test]
    fn a_full_table_stays_bounded_and_keeps_locks_longest() {
        let l = Lockout::with_capacity(
            LockoutSettings {
                source_failures: 0,
                user_failures: 0,
                ..settings()
            },
            64,
        );
        // Lock alice from A, then flood the table with one-off failures.
        for t in 0..3 {
            l.failure("alice", "r", A, t);
        }
        for i in 0..10_000u32 {
            l.failure(&format!("junk{i}"), "r", B, 10);
            assert!(l.tracked() <= 64);
        }
        assert!(l.evicted.load(Ordering::Relaxed) > 0);
        assert_eq!(
            l.refused("alice", "r", A, 11, &NO),
            Some(Scope::Pair),
            "unlocked entries are evicted before a lock"
        );
    }
}
