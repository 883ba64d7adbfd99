use super::*;

fn list(s: &str) -> Vec<NameAddr<'_>> {
    NameAddrList::new(s.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|()| panic!("{s} should parse"))
}

#[test]
fn quoted_params_with_brackets_commas_and_semicolons() {
    let v = r#"<sip:a@h>;x="<v>;,1", <sip:b@h;lr>;y="a\"b";z"#;
    let l = list(v);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].params.get("x"), Some(Some("<v>;,1")));
    assert_eq!(l[1].uri.raw, "sip:b@h;lr");
    assert_eq!(l[1].params.get("y"), Some(Some(r#"a\"b"#)));
    assert_eq!(l[1].params.get("z"), Some(None));
}

#[test]
fn uri_params_versus_header_params() {
    let na = NameAddr::parse(b"<sip:a@h;transport=tcp>;expires=30").unwrap();
    assert_eq!(na.uri.params.get("transport"), Some(Some("tcp")));
    assert!(na.params.get("transport").is_none());
    assert_eq!(na.params.get("expires"), Some(Some("30")));
    let spec = NameAddr::parse(b"sip:a@h;transport=tcp;expires=30").unwrap();
    assert!(spec.uri.params.is_empty());
    assert_eq!(spec.params.get("transport"), Some(Some("tcp")));
    assert_eq!(spec.params.get("expires"), Some(Some("30")));
}

#[test]
fn white_space_and_folds_around_separators() {
    let na = NameAddr::parse(b"  \"Bob\"\r\n <sip:b@h> ; tag = 12 ;\r\n\tq=0.5 ").unwrap();
    assert_eq!(na.tag(), Some("12"));
    assert_eq!(na.params.get("q"), Some(Some("0.5")));
    let l = list("<sip:a@h> ,\r\n <sip:b@h>");
    assert_eq!(l.len(), 2);
}

#[test]
fn token_display_names_and_ipv6() {
    let na = NameAddr::parse(b"Alice Smith <sip:alice@[2001:db8::1]:5060>").unwrap();
    assert_eq!(na.display, Some(&b"Alice Smith"[..]));
    assert_eq!(na.uri.host, "[2001:db8::1]");
    let tel = NameAddr::parse(b"<tel:+4930123;phone-context=+49>;tag=x").unwrap();
    assert_eq!(tel.uri.user, Some("+4930123"));
    assert_eq!(tel.tag(), Some("x"));
}

#[test]
fn malformed() {
    for bad in [
        "<sip:a@h",
        "\"unterminated <sip:a@h>",
        "<sip:a@h>;x=\"open",
        "<sip:a@h> junk",
        "<http://x>",
        "<sip:a@h>;;=1",
        "",
    ] {
        assert!(NameAddr::parse(bad.as_bytes()).is_none(), "{bad:?}");
    }
    let mut l = NameAddrList::new(b"<sip:a@h>, <broken");
    assert!(l.next().unwrap().is_ok());
    assert!(l.next().unwrap().is_err());
    assert!(l.next().is_none());
}
