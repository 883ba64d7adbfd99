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
