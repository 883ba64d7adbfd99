use super::*;

fn evidence<'a>(
    contact: &'a str,
    via: &'a str,
    via_port: Option<u16>,
    source: &str,
) -> Evidence<'a> {
    Evidence {
        contact_host: contact,
        via_host: via,
        via_port,
        tls: false,
        source: source.parse().unwrap(),
    }
}

#[test]
fn private_ranges_are_kamailios_plus_ula() {
    for ip in [
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "100.127.255.254",
        "192.0.0.5",
        "fd00::1",
        "fc12::9",
        "::ffff:10.0.0.1",
    ] {
        assert!(is_private(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "172.32.0.1",
        "100.128.0.1",
        "192.0.0.8",
        "8.8.8.8",
        "192.0.2.1",
        "2001:db8::1",
        "fe80::1",
        "127.0.0.1",
    ] {
        assert!(!is_private(ip.parse().unwrap()), "{ip}");
    }
}

#[test]
fn a_phone_with_its_public_address_everywhere_is_not_nated() {
    let e = evidence("192.0.2.10", "192.0.2.10", Some(5060), "192.0.2.10:5060");
    assert!(!is_nated(ALL, &e));
    // The Via port defaults to 5060, and to 5061 over TLS.
    let e = evidence("192.0.2.10", "192.0.2.10", None, "192.0.2.10:5060");
    assert!(!is_nated(ALL, &e));
    let tls = Evidence {
        tls: true,
        ..evidence("192.0.2.10", "192.0.2.10", None, "192.0.2.10:5061")
    };
    assert!(!is_nated(ALL, &tls));
    // IPv6 in brackets is the same address.
    let e = evidence(
        "[2001:db8::5]",
        "[2001:db8::5]",
        Some(5060),
        "[2001:db8::5]:5060",
    );
    assert!(!is_nated(ALL, &e));
}

#[test]
fn each_test_catches_its_own_case_only_when_asked() {
    // 1: a private Contact.
    let e = evidence("192.168.1.20", "192.0.2.10", Some(5060), "192.0.2.10:5060");
    assert!(is_nated(CONTACT_PRIVATE, &e));
    assert!(!is_nated(ALL & !CONTACT_PRIVATE, &e));
    // 2: the Via names another address (or a name).
    let e = evidence("192.0.2.10", "192.168.1.20", Some(5060), "192.0.2.10:5060");
    assert!(is_nated(VIA_ADDRESS, &e));
    let e = evidence(
        "192.0.2.10",
        "phone.example.com",
        Some(5060),
        "192.0.2.10:5060",
    );
    assert!(is_nated(VIA_ADDRESS, &e));
    assert!(!is_nated(ALL & !VIA_ADDRESS, &e));
    // 16: the NAT changed the port.
    let e = evidence("192.0.2.10", "192.0.2.10", Some(5060), "192.0.2.10:40312");
    assert!(is_nated(VIA_PORT, &e));
    assert!(!is_nated(ALL & !VIA_PORT, &e));
    // 32: the source itself is private (a NAT in front of kamrs too).
    let e = evidence("10.0.0.7", "10.0.0.7", Some(5060), "10.0.0.7:5060");
    assert!(is_nated(SOURCE_PRIVATE, &e));
    assert!(!is_nated(VIA_ADDRESS | VIA_PORT, &e));
    // A name in the Contact says nothing for test 1.
    let e = evidence(
        "phone.example.com",
        "192.0.2.10",
        Some(5060),
        "192.0.2.10:5060",
    );
    assert!(!is_nated(CONTACT_PRIVATE, &e));
    assert!(!is_nated(
        0,
        &evidence("10.0.0.1", "x", Some(1), "10.0.0.2:2")
    ));
}
