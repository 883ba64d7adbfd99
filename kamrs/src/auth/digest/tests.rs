use super::*;

#[test]
fn polycom_style() {
    let v = br#"Digest username="1002", realm="pbx.example.com", nonce="Zt1k6W", qop=auth, cnonce="6b8b4567", nc=00000001, uri="sip:pbx.example.com", response="f3c5e1a2", algorithm=MD5"#;
    let c = parse(v).unwrap();
    assert_eq!(c.username, "1002");
    assert_eq!(c.realm, "pbx.example.com");
    assert_eq!(c.nonce, "Zt1k6W");
    assert_eq!(c.uri, "sip:pbx.example.com");
    assert_eq!(c.response, "f3c5e1a2");
    assert_eq!(c.qop.as_deref(), Some("auth"));
    assert_eq!(c.nc.as_deref(), Some("00000001"));
    assert_eq!(c.cnonce.as_deref(), Some("6b8b4567"));
    assert_eq!(c.algorithm.as_deref(), Some("MD5"));
}

#[test]
fn escapes_folds_and_unknown_params() {
    let v = b"digest   username=\"a\\\"b\",\r\n realm=\"r\",nonce=\"n\" , uri=\"sip:x\", response=\"00\", foo=bar";
    let c = parse(v).unwrap();
    assert_eq!(c.username, "a\"b");
    assert!(c.algorithm.is_none());
}

#[test]
fn malformed() {
    for v in [
        &b"Basic dXNlcjpwYXNz"[..],
        b"Digest",
        b"Digest username=\"a",
        b"Digest username=\"a\" realm=\"r\"",
        b"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"",
        b"Digest =x",
        b"Digest username=, realm=r",
    ] {
        assert!(parse(v).is_err(), "{}", String::from_utf8_lossy(v));
    }
}
