use super::*;

fn key(b: u8) -> TokenKey {
    TokenKey::new([b; 32])
}

fn sample() -> Token {
    Token {
        ftag: tag_hash("abc"),
        call: tag_hash("call-1@example.com"),
        caller: Hop {
            target: Target::Datagram {
                local: "127.0.0.1:5060".parse().unwrap(),
                dest: "192.0.2.7:40000".parse().unwrap(),
            },
            proto: Proto::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
        },
        callee: Hop {
            target: Target::Conn {
                conn: ConnId::from_raw(77),
                remote: "[2001:db8::1]:5061".parse().unwrap(),
            },
            proto: Proto::Wss,
            local: "[::1]:443".parse().unwrap(),
        },
    }
}

#[test]
fn round_trips_and_fits_a_user_part() {
    let t = sample();
    let text = key(1).encode(&t);
    assert!(text.len() <= MAX_ENCODED, "{}", text.len());
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(key(1).decode(&text), Some(t));
}

#[test]
fn refuses_what_we_did_not_issue() {
    let text = key(1).encode(&sample());
    assert_eq!(key(2).decode(&text), None, "another secret");
    // Every single-character change is caught.
    for i in 0..text.len() {
        let mut b = text.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(b).unwrap();
        assert_eq!(key(1).decode(&forged), None, "changed at {i}");
    }
    assert_eq!(key(1).decode(&text[..text.len() - 4]), None, "truncated");
    assert_eq!(key(1).decode(""), None);
    assert_eq!(key(1).decode("bob"), None);
    assert_eq!(key(1).decode("a!b$"), None);
    assert_eq!(key(1).decode(&"A".repeat(MAX_ENCODED + 1)), None);
}

#[test]
fn base64url_round_trips_every_length() {
    for n in 0..40u8 {
        let bin: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(unbase64url(&base64url(&bin)), Some(bin));
    }
    assert_eq!(unbase64url("A"), None);
}

/// A token another process wrote (a restart under the same secret):
/// its UDP hops are good, its connection ids name no connection here.
#[test]
fn connection_hops_of_another_process_name_no_connection() {
    let t = sample();
    let mut other = process_epoch();
    other[0] ^= 1;
    let text = key(1).encode_in(&t, other);
    assert!(text.len() <= MAX_ENCODED);
    let got = key(1).decode(&text).expect("still ours: the secret is");
    assert_eq!(got.caller, t.caller);
    assert_eq!(got.ftag, t.ftag);
    match got.callee.target {
        Target::Conn { conn, remote } => {
            assert_ne!(conn, ConnId::from_raw(77));
            assert_eq!(conn, ConnId::from_raw(0));
            assert_eq!(remote, "[2001:db8::1]:5061".parse().unwrap());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_longest_token_fits_max_encoded() {
    let mut t = sample();
    t.caller = t.callee;
    let text = key(1).encode(&t);
    assert_eq!(text.len(), 159);
    assert!(text.len() <= MAX_ENCODED);
    assert_eq!(key(1).decode(&text), Some(t));
}

/// A token of the version before the process mark and Call-ID hash,
/// under the same secret, is not read with its fields shifted.
#[test]
fn a_version_1_token_is_not_ours() {
    let k = key(1);
    let mut bin = vec![1u8];
    bin.extend_from_slice(&tag_hash("abc").to_be_bytes());
    put_hop(&mut bin, &sample().caller);
    put_hop(&mut bin, &sample().callee);
    let mac = k.mac(&bin);
    bin.extend_from_slice(&mac);
    assert_eq!(k.decode(&base64url(&bin)), None);
}
