use super::*;

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn finds_the_call_id_in_either_form() {
    let full = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  ka-1.2.3 \r\n\r\n";
    assert_eq!(call_id(full, &limits()), Some("ka-1.2.3"));
    let compact = b"SIP/2.0 200 OK\r\ni:abc\r\n\r\n";
    assert_eq!(call_id(compact, &limits()), Some("abc"));
    let bare_lf = b"SIP/2.0 200 OK\nCALL-ID: x\n\n";
    assert_eq!(call_id(bare_lf, &limits()), Some("x"));
}

#[test]
fn stops_at_the_body_and_at_limits() {
    let in_body = b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\nCall-ID: x\r\n";
    assert_eq!(call_id(in_body, &limits()), None);
    let empty = b"SIP/2.0 200 OK\r\nCall-ID: \r\n\r\n";
    assert_eq!(call_id(empty, &limits()), None);
    let mut many = b"SIP/2.0 200 OK\r\n".to_vec();
    for _ in 0..limits().max_headers {
        many.extend_from_slice(b"X: y\r\n");
    }
    many.extend_from_slice(b"Call-ID: late\r\n\r\n");
    assert_eq!(call_id(&many, &limits()), None);
    let binary = b"SIP/2.0 200 OK\r\nCall-ID: \xff\xfe\r\n\r\n";
    assert_eq!(call_id(binary, &limits()), None);
    assert_eq!(call_id(b"", &limits()), None);
    assert_eq!(call_id(b"SIP/2.0 200 OK", &limits()), None);
}

#[test]
fn refuses_values_that_are_not_a_call_id() {
    for msg in [
        &b"SIP/2.0 200 OK\r\ni: \0\0\0\rh\r\n\r\n"[..],
        b"SIP/2.0 200 OK\r\nCall-ID: two words\r\n\r\n",
        b"SIP/2.0 200 OK\r\nCall-ID: caf\xc3\xa9\r\n\r\n",
        b"SIP/2.0 200 OK\r\nCall-ID:   \r\n\r\n",
    ] {
        assert_eq!(call_id(msg, &limits()), None, "{msg:?}");
    }
}
