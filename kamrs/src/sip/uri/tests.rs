use super::*;

fn u(s: &str) -> Uri<'_> {
    Uri::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s} should parse"))
}

#[test]
fn parts() {
    let x = u("sip:alice:secret@Example.COM:5070;transport=tcp;lr?subject=hi&x=1");
    assert_eq!(x.scheme, Scheme::Sip);
    assert_eq!(x.user, Some("alice"));
    assert_eq!(x.password, Some("secret"));
    assert_eq!(x.host, "Example.COM");
    assert_eq!(x.port, Some(5070));
    assert_eq!(x.params.get("transport"), Some(Some("tcp")));
    assert_eq!(x.params.get("lr"), Some(None));
    assert_eq!(x.headers, Some("subject=hi&x=1"));
    assert_eq!(u("sip:h:00080").port, Some(80));
    assert_eq!(u("sip:h:65535").port, Some(65535));
    let v6 = u("sips:[2001:db8::5]:5061");
    assert_eq!(v6.host, "[2001:db8::5]");
    assert_eq!(v6.port, Some(5061));
    assert!(v6.user.is_none());
    let t = u("tel:+1-555-123-4567;phone-context=example.com");
    assert_eq!(t.scheme, Scheme::Tel);
    assert_eq!(t.user, Some("+1-555-123-4567"));
}

#[test]
fn ascii_parts_are_cut_where_the_grammar_says() {
    let u = Uri::parse(b"sip:al%41ce:pw@host.example:5070;transport=tcp?h=1").unwrap();
    assert_eq!(
        (u.user, u.password, u.host, u.port, u.headers),
        (
            Some("al%41ce"),
            Some("pw"),
            "host.example",
            Some(5070),
            Some("h=1")
        )
    );
    let t = Uri::parse(b"tel:+1-212-555;phone-context=x").unwrap();
    assert_eq!(
        (t.user, t.raw),
        (Some("+1-212-555"), "tel:+1-212-555;phone-context=x")
    );
    let raw = [b"sip:a@h".as_slice(), &[0xff]].concat();
    assert!(Uri::parse(&raw).is_none());
}

#[test]
fn rejects() {
    for bad in [
        "",
        "sip:",
        "http://x",
        "sip:@host",
        "sip:host:99999",
        "sip:host:5060x",
        "sip:host:065535",
        "sip:host:",
        "sip:host:;x",
        "sip:[zz::1]",
        "sip:[::1",
        "sip:a b@host",
        "sip:host;a=\"q\"",
        "tel:",
        // Non-ASCII anywhere (valid UTF-8 or not): no URI character
        // class admits it.
        "sip:j\u{f6}rg@host",
        "sip:host\u{e9}",
        "sip:host;x=\u{e9}",
        "sip:host?h=\u{e9}",
        "tel:+1\u{e9}",
    ] {
        assert!(
            Uri::parse(bad.as_bytes()).is_none(),
            "{bad:?} should not parse"
        );
    }
}

/// RFC 3261 §19.1.4's own examples, plus the escapes and parameter rules.
#[test]
fn rfc_equivalent() {
    for (a, b) in [
        (
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        ),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        (
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on",
        ),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
        ("SIP:alice@atlanta.com", "sip:alice@atlanta.com"),
        ("tel:+15551234567", "TEL:+15551234567"),
    ] {
        assert!(u(a).equivalent(&u(b)), "{a} == {b}");
        assert!(u(b).equivalent(&u(a)), "{b} == {a}");
    }
}

#[test]
fn repeated_params_are_still_reflexive() {
    for s in [
        "sip:x;transo;transo=",
        "sip:x;a=1;a=2",
        "sip:x;transport=udp;transport=tcp",
    ] {
        assert!(u(s).equivalent(&u(s)), "{s}");
    }
}

#[test]
fn rfc_not_equivalent() {
    for (a, b) in [
        (
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP",
        ),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        (
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp",
        ),
        (
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting",
        ),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        (
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off",
        ),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
        ("sip:alice@atlanta.com;user=phone", "sip:alice@atlanta.com"),
    ] {
        assert!(u(a).equivalent(&u(a)), "{a} == itself");
        assert!(!u(a).equivalent(&u(b)), "{a} != {b}");
        assert!(!u(b).equivalent(&u(a)), "{b} != {a}");
    }
}
