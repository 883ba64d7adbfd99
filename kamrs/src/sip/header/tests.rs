use super::*;

#[test]
fn names_and_compact_forms() {
    for (name, want) in [
        ("Via", HeaderName::Via),
        ("v", HeaderName::Via),
        ("V", HeaderName::Via),
        ("CALL-ID", HeaderName::CallId),
        ("i", HeaderName::CallId),
        ("Contact", HeaderName::Contact),
        ("m", HeaderName::Contact),
        ("cseq", HeaderName::CSeq),
        ("Content-Length", HeaderName::ContentLength),
        ("l", HeaderName::ContentLength),
        ("k", HeaderName::Supported),
        ("Max-Forwards", HeaderName::MaxForwards),
        ("Authorization", HeaderName::Authorization),
        ("Proxy-Require", HeaderName::ProxyRequire),
        ("User-Agent", HeaderName::UserAgent),
        ("Expires", HeaderName::Expires),
        ("Require", HeaderName::Require),
        ("Route", HeaderName::Route),
        ("Path", HeaderName::Path),
        ("To", HeaderName::To),
        ("Content-Type", HeaderName::ContentType),
        ("Contacts", HeaderName::Other),
        ("Call-IX", HeaderName::Other),
        ("Allow", HeaderName::Allow),
        ("ALLOW", HeaderName::Allow),
        ("Allow-Events", HeaderName::Other),
        ("x", HeaderName::Other),
        ("", HeaderName::Other),
    ] {
        assert_eq!(header_name(name), want, "{name}");
    }
}
