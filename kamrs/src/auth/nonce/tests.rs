use super::*;

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

#[test]
fn round_trip_expiry_and_tampering() {
    let n = Nonces::new(b"secret".to_vec(), 300, 7);
    let nonce = n.issue(1000, 2, "example.com", IP);
    assert_eq!(nonce.len(), NONCE_LEN);
    assert!(matches!(
        n.check(&nonce, 1100, "example.com", IP),
        NonceCheck::Valid {
            failures: 2,
            serial: 0,
            issued_at: 1000,
        }
    ));
    assert_eq!(
        n.check(&nonce, 1301, "example.com", IP),
        NonceCheck::Stale { failures: 2 }
    );
    assert_eq!(n.check(&nonce, 1100, "other.com", IP), NonceCheck::Invalid);
    let other = Nonces::new(b"other secret".to_vec(), 300, 7);
    assert_eq!(
        other.check(&nonce, 1100, "example.com", IP),
        NonceCheck::Invalid
    );
    // Flip the failure counter: the MAC no longer matches.
    let mut forged = nonce.clone().into_bytes();
    forged[49] = if forged[49] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        n.check(&forged, 1100, "example.com", IP),
        NonceCheck::Invalid
    );
    for junk in ["", "zz", &"0".repeat(NONCE_LEN)] {
        assert_eq!(n.check(junk, 1100, "example.com", IP), NonceCheck::Invalid);
    }
    assert_ne!(
        nonce,
        n.issue(1000, 2, "example.com", IP),
        "every nonce is unique"
    );
}

#[test]
fn another_process_nonce_is_stale_not_valid() {
    let a = Nonces::new(b"secret".to_vec(), 300, 1);
    let nonce = a.issue(1000, 1, "example.com", IP);
    // A restart (new boot id) or a second node with the same secret:
    // genuine, so stale=true, but never accepted as a first use.
    let b = Nonces::new(b"secret".to_vec(), 300, 2);
    assert_eq!(
        b.check(&nonce, 1001, "example.com", IP),
        NonceCheck::Stale { failures: 1 }
    );
    // Forging the boot id breaks the MAC.
    let mut forged = nonce.into_bytes();
    forged[31] = if forged[31] == b'2' { b'3' } else { b'2' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        b.check(&forged, 1001, "example.com", IP),
        NonceCheck::Invalid
    );
    assert_ne!(random_boot_id(), random_boot_id());
}

#[test]
fn a_nonce_answered_from_another_address_is_stale() {
    let n = Nonces::new(b"secret".to_vec(), 300, 1);
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let nonce = n.issue(1000, 0, "example.com", v6);
    assert!(matches!(
        n.check(&nonce, 1000, "example.com", v6),
        NonceCheck::Valid { .. }
    ));
    assert_eq!(
        n.check(&nonce, 1000, "example.com", IP),
        NonceCheck::Stale { failures: 0 }
    );
    // The binding cannot be moved to another address without the secret.
    let mut forged = nonce.into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        n.check(&forged, 1000, "example.com", v6),
        NonceCheck::Stale { failures: 0 }
    );
}
