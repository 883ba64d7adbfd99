use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn one_source_is_an_ipv4_address_or_an_ipv6_slash_64() {
    assert_eq!(source_prefix(ip("192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(source_prefix(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(
        source_prefix(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
        ip("2001:db8:1:2::")
    );
    assert_eq!(
        source_prefix(ip("2001:db8:1:2::1")),
        source_prefix(ip("2001:db8:1:2:ffff::9"))
    );
    assert_ne!(
        source_prefix(ip("2001:db8:1:2::1")),
        source_prefix(ip("2001:db8:1:3::1"))
    );
}

#[test]
fn networks_match_by_prefix_and_family() {
    assert!(in_net(ip("127.1.2.3"), ip("127.0.0.0"), 8));
    assert!(in_net(ip("::ffff:127.1.2.3"), ip("127.0.0.0"), 8));
    assert!(!in_net(ip("128.0.0.1"), ip("127.0.0.0"), 8));
    assert!(in_net(ip("10.0.0.1"), ip("0.0.0.0"), 0));
    assert!(in_net(ip("::1"), ip("::1"), 128));
    assert!(!in_net(ip("::2"), ip("::1"), 128));
    assert!(in_net(ip("2001:db8::5"), ip("2001:db8::"), 32));
    assert!(!in_net(ip("127.0.0.1"), ip("::1"), 128));
    assert!(in_net(ip("192.0.2.1"), ip("192.0.2.1"), 99));
}
