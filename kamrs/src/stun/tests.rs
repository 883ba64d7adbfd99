use super::*;

/// The sample request of RFC 5769 §2.1 (SOFTWARE, PRIORITY,
/// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT).
const RFC5769_REQUEST: &[u8] =
    b"\x00\x01\x00\x58\x21\x12\xa4\x42\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae\
\x80\x22\x00\x10STUN test client\
\x00\x24\x00\x04\x6e\x00\x01\xff\
\x80\x29\x00\x08\x93\x2f\xf9\xb1\x51\x26\x3b\x36\
\x00\x06\x00\x09\x65\x76\x74\x6a\x3a\x68\x36\x76\x59\x20\x20\x20\
\x00\x08\x00\x14\x9a\xea\xa7\x0c\xbf\xd8\xcb\x56\x78\x1e\xf2\xb5\xb2\xd3\xf2\x49\xc1\xb5\x71\xa2\
\x80\x28\x00\x04\xe5\x7a\x3b\xcf";

fn request(transaction: [u8; 12], attrs: &[u8]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(&transaction);
    m.extend_from_slice(attrs);
    m
}

/// The attributes of an answer, as (type, value).
fn attributes(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < msg.len() {
        let kind = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
        out.push((kind, msg[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.div_ceil(4) * 4;
    }
    out
}

fn mapped(answer: &[u8]) -> SocketAddr {
    let (_, v) = attributes(answer)
        .into_iter()
        .find(|(k, _)| *k == ATTR_XOR_MAPPED_ADDRESS)
        .expect("XOR-MAPPED-ADDRESS");
    let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
    let mut key = MAGIC_COOKIE.to_be_bytes().to_vec();
    key.extend_from_slice(&answer[8..20]);
    let ip: IpAddr = match v[1] {
        1 => {
            let o: Vec<u8> = v[4..8].iter().zip(&key).map(|(a, k)| a ^ k).collect();
            IpAddr::from([o[0], o[1], o[2], o[3]])
        }
        2 => {
            let o: Vec<u8> = v[4..20].iter().zip(&key).map(|(a, k)| a ^ k).collect();
            let a: [u8; 16] = o.try_into().unwrap();
            IpAddr::from(a)
        }
        f => panic!("family {f}"),
    };
    SocketAddr::new(ip, port)
}

#[test]
fn stun_and_sip_are_told_apart_by_the_first_byte() {
    assert!(is_stun(0x00) && is_stun(0x01));
    assert!(!is_stun(b'R') && !is_stun(b'S') && !is_stun(b'\r') && !is_stun(b'\n'));
}

#[test]
fn a_binding_request_gets_its_mapped_address_v4_as_rfc5769_encodes_it() {
    let tid = [7u8; 12];
    let mut out = Vec::new();
    let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(
        handle(&request(tid, &[]), src, &mut out),
        Ok(Outcome::Reply)
    );
    assert_eq!(&out[0..2], &[0x01, 0x01], "Binding success");
    assert_eq!(&out[8..20], &tid, "same transaction");
    assert_eq!(
        usize::from(u16::from_be_bytes([out[2], out[3]])),
        out.len() - 20
    );
    // RFC 5769 §2.2: 192.0.2.1:32853 is sent as 00 01 a1 47 e1 12 a6 43.
    assert_eq!(
        attributes(&out),
        [(
            ATTR_XOR_MAPPED_ADDRESS,
            vec![0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]
        )]
    );
    assert_eq!(mapped(&out), src);
}

#[test]
fn a_binding_request_gets_its_mapped_address_v6() {
    let mut out = Vec::new();
    let src: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    let tid = *b"\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae";
    assert_eq!(
        handle(&request(tid, &[]), src, &mut out),
        Ok(Outcome::Reply)
    );
    assert_eq!(mapped(&out), src);
}

#[test]
fn the_rfc5769_sample_request_is_valid_and_its_answer_has_a_fingerprint() {
    let mut out = Vec::new();
    let src: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    assert_eq!(handle(RFC5769_REQUEST, src, &mut out), Ok(Outcome::Reply));
    assert_eq!(mapped(&out), src);
    let attrs = attributes(&out);
    let (kind, crc) = attrs.last().unwrap();
    assert_eq!(*kind, ATTR_FINGERPRINT);
    // CRC-32 of everything before it (length field already counting it),
    // XORed with "STUN".
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    assert_eq!(crc32fast::hash(&out[..out.len() - 8]) ^ 0x5354_554e, crc);
    // One bit flipped anywhere before it: dropped.
    let mut bad = RFC5769_REQUEST.to_vec();
    bad[30] ^= 1;
    assert_eq!(handle(&bad, src, &mut out), Err(Malformed::Fingerprint));
}

#[test]
fn an_unknown_required_attribute_gets_420_listing_it() {
    let mut out = Vec::new();
    let attrs = [0x00, 0x33, 0x00, 0x01, 0xaa, 0, 0, 0];
    let src: SocketAddr = "192.0.2.9:5060".parse().unwrap();
    assert_eq!(
        handle(&request([1; 12], &attrs), src, &mut out),
        Ok(Outcome::Reply)
    );
    assert_eq!(&out[0..2], &[0x01, 0x11], "Binding error");
    let a = attributes(&out);
    assert_eq!(a[0].0, ATTR_ERROR_CODE);
    assert_eq!(&a[0].1[2..4], &[4, 20]);
    assert_eq!(a[1], (ATTR_UNKNOWN_ATTRIBUTES, vec![0x00, 0x33]));
    // An unknown optional one is ignored.
    let attrs = [0x80, 0x33, 0x00, 0x00];
    assert_eq!(
        handle(&request([1; 12], &attrs), src, &mut out),
        Ok(Outcome::Reply)
    );
    assert_eq!(&out[0..2], &[0x01, 0x01]);
}

#[test]
fn indications_and_responses_are_not_answered() {
    let src: SocketAddr = "192.0.2.9:5060".parse().unwrap();
    for kind in [BINDING_INDICATION, BINDING_SUCCESS, BINDING_ERROR] {
        let mut m = request([2; 12], &[]);
        m[0..2].copy_from_slice(&kind.to_be_bytes());
        let mut out = Vec::new();
        assert_eq!(handle(&m, src, &mut out), Ok(Outcome::Silent));
        assert!(out.is_empty());
    }
}

#[test]
fn malformed_messages_are_dropped_with_a_reason() {
    let src: SocketAddr = "192.0.2.9:5060".parse().unwrap();
    let mut out = Vec::new();
    let ok = request([3; 12], &[0x80, 0x22, 0x00, 0x01, b'x', 0, 0, 0]);
    let cases: Vec<(Vec<u8>, Malformed)> = vec![
        (ok[..19].to_vec(), Malformed::Short),
        (vec![0u8; MAX_MESSAGE + 4], Malformed::TooLarge),
        (
            {
                let mut m = ok.clone();
                m[3] = 4;
                m
            },
            Malformed::Length,
        ),
        (
            {
                let mut m = ok.clone();
                m[3] = 9;
                m.push(0);
                m
            },
            Malformed::Length,
        ),
        (
            {
                let mut m = ok.clone();
                m[4] = 0;
                m
            },
            Malformed::Cookie,
        ),
        // The attribute says 9 bytes but the message holds 4.
        (
            {
                let mut m = ok.clone();
                m[23] = 9;
                m
            },
            Malformed::Attribute,
        ),
        (
            {
                let mut m = ok.clone();
                m[0..2].copy_from_slice(&[0x00, 0x03]);
                m
            },
            Malformed::Method,
        ),
        // Anything after FINGERPRINT.
        (
            {
                let mut m = RFC5769_REQUEST.to_vec();
                m.extend_from_slice(&[0x80, 0x22, 0, 0]);
                m[3] += 4;
                m
            },
            Malformed::Fingerprint,
        ),
    ];
    for (msg, why) in cases {
        assert_eq!(handle(&msg, src, &mut out), Err(why), "{msg:02x?}");
        assert!(out.is_empty());
    }
    assert_eq!(handle(&ok, src, &mut out), Ok(Outcome::Reply));
}

proptest::proptest! {
    /// Whatever arrives, the handler returns, and any answer is a
    /// well-formed STUN message for the same transaction.
    #[test]
    fn never_panics_and_answers_are_well_formed(bytes in proptest::collection::vec(0u8..=255, 0..600)) {
        let mut out = Vec::new();
        let src: SocketAddr = "10.0.0.1:1".parse().unwrap();
        if let Ok(Outcome::Reply) = handle(&bytes, src, &mut out) {
            proptest::prop_assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])) + 20, out.len());
            proptest::prop_assert_eq!(&out[8..20], &bytes[8..20]);
        }
    }
}

#[test]
fn an_ipv4_client_on_a_dual_stack_socket_is_told_its_ipv4_address() {
    let mut out = Vec::new();
    let seen: SocketAddr = "[::ffff:192.0.2.1]:32853".parse().unwrap();
    assert_eq!(
        handle(&request([4; 12], &[]), seen, &mut out),
        Ok(Outcome::Reply)
    );
    assert_eq!(
        mapped(&out),
        "192.0.2.1:32853".parse::<SocketAddr>().unwrap()
    );
}
