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
fn an_ipv6_host_counts_as_its_slash_64() {
    let p = pike(&[]);
    let addr = |i: u32| -> IpAddr { format!("2001:db8:0:7::{i:x}").parse().unwrap() };
    // A new address per request, all in one /64: still one source.
    assert!((0..3).all(|i| p.allow_at(addr(i), 0)));
    assert!(!p.allow_at(addr(99), 10), "the /64 is over its limit");
    assert!(
        p.allow_at("2001:db8:0:8::1".parse().unwrap(), 10),
        "another /64"
    );
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

fn small(max_tracked: usize) -> Pike {
    Pike::new(PikeSettings {
        window: Duration::from_secs(2),
        max_requests: 3,
        block_time: Duration::from_secs(5),
        trusted: Vec::new(),
        max_tracked,
    })
}

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
}

#[test]
fn a_full_table_evicts_cold_sources_and_still_blocks_a_new_flooder() {
    let p = small(64);
    assert_eq!(p.capacity(), 64);
    // Ten times the capacity, one packet each: all let through, the
    // table never holds more than its capacity.
    for i in 0..640 {
        assert!(p.allow_at(v4(i), u64::from(i)));
    }
    assert_eq!(p.tracked.load(Ordering::Relaxed), 64);
    assert_eq!(p.evicted.load(Ordering::Relaxed), 640 - 64);
    // A new source flooding now is tracked and blocked at once.
    let flooder = v4(10_000);
    let allowed = (0..100).filter(|_| p.allow_at(flooder, 700)).count();
    assert_eq!(allowed, 3);
    assert_eq!(p.blocks.load(Ordering::Relaxed), 1);
    // Hundreds more one-packet sources cannot push it out while blocked.
    for i in 1000..2000 {
        p.allow_at(v4(i), 800);
    }
    assert!(
        !p.allow_at(flooder, 900),
        "the blocked source was forgotten"
    );
    assert!(p.top(1)[0].blocked);
    assert_eq!(p.top(1)[0].ip, flooder);
}

#[test]
fn a_bucket_full_of_blocked_sources_shares_one_allowance() {
    // One bucket: every slot blocked, newcomers share max_requests.
    let p = small(WAYS);
    for i in 0..WAYS as u32 {
        for _ in 0..4 {
            p.allow_at(v4(i), 0);
        }
    }
    assert_eq!(p.blocks.load(Ordering::Relaxed), WAYS as u64);
    let newcomers = (100..200).filter(|&i| p.allow_at(v4(i), 10)).count();
    assert_eq!(newcomers, 3, "untracked sources must not flood either");
    assert_eq!(p.untracked.load(Ordering::Relaxed), 100);
    // Next window: another allowance.
    assert!(p.allow_at(v4(300), 2_100));
    // Once the blocks are over (quiet for block_time), slots free up:
    // the coldest unblocked one is taken.
    assert!(p.allow_at(v4(400), 20_000));
    assert_eq!(p.evicted.load(Ordering::Relaxed), 1);
}

#[test]
fn sweep_forgets_idle_sources_but_not_blocked_ones() {
    let p = small(64);
    for i in 0..10 {
        p.allow_at(v4(i), 0);
    }
    for _ in 0..4 {
        p.allow_at(v4(99), 0);
    }
    // Still flooding at 4 s: blocked until 9 s, kept.
    assert!(!p.allow_at(v4(99), 4_000));
    p.sweep_at(7_001);
    assert_eq!(p.tracked.load(Ordering::Relaxed), 1);
    p.sweep_at(11_001);
    assert_eq!(p.tracked.load(Ordering::Relaxed), 0);
    assert!(p.top(10).is_empty());
}
