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
