use super::*;

const GOOD: &str = "OPTIONS sip:kamrs@127.0.0.1 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
    From: <sip:a@h>;tag=1\r\n\
    To: <sip:b@h>\r\n\
    Call-ID: c1\r\n\
    CSeq: 7 OPTIONS\r\n\
    Max-Forwards: 70\r\n\
    Content-Length: 0\r\n\r\n";

fn parse(s: &str) -> Result<Request<'_>, ParseError> {
    match parse_message(s.as_bytes(), &Limits::default())? {
        Message::Request(r) => Ok(r),
        Message::Response(_) => panic!("not a request"),
    }
}

fn without(header: &str) -> String {
    GOOD.lines()
        .filter(|l| !l.starts_with(header))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace('\n', "\r\n")
        .replace("\r\r\n", "\r\n")
}

fn replace(from: &str, to: &str) -> String {
    GOOD.replace(from, to)
}

#[test]
fn good_request() {
    let r = parse(GOOD).unwrap();
    assert_eq!(r.method, Method::Options);
    assert_eq!(
        r.cseq,
        CSeq {
            seq: 7,
            method: "OPTIONS"
        }
    );
    assert_eq!(r.max_forwards, Some(70));
    assert_eq!(r.raw.headers.len(), 7);
}

#[test]
fn nul_and_bare_cr_in_a_header_line_are_refused() {
    for bad in [
        "Call-ID: c1\0x\r\n",
        "Call-ID: c1\rX-Forged: 1\r\n",
        "Call-ID: c1\r\r\n",
        "X-Other: a\0\r\n",
    ] {
        let text = GOOD.replacen("Call-ID: c1\r\n", &format!("Call-ID: c1\r\n{bad}"), 1);
        let text = if bad.starts_with("Call-ID") {
            GOOD.replacen("Call-ID: c1\r\n", bad, 1)
        } else {
            text
        };
        assert_eq!(
            parse(&text).err(),
            Some(ParseError::ControlCharacter),
            "{text:?}"
        );
    }
    // CRLF and bare LF line ends stay fine.
    assert!(parse(GOOD).is_ok());
    assert!(parse(&GOOD.replace("\r\n", "\n")).is_ok());
    assert_eq!(
        ParseError::ControlCharacter.reason(),
        "NUL Or Bare CR In Header"
    );
}

#[test]
fn missing_mandatory_headers_are_named() {
    assert_eq!(
        parse(&without("From")).err(),
        Some(ParseError::Missing(HeaderName::From))
    );
    assert_eq!(
        parse(&without("To")).err(),
        Some(ParseError::Missing(HeaderName::To))
    );
    assert_eq!(
        parse(&without("Call-ID")).err(),
        Some(ParseError::Missing(HeaderName::CallId))
    );
    assert_eq!(
        parse(&without("CSeq")).err(),
        Some(ParseError::Missing(HeaderName::CSeq))
    );
    assert_eq!(
        parse(&without("Via")).err(),
        Some(ParseError::Missing(HeaderName::Via))
    );
    // Max-Forwards is optional for a registrar.
    assert!(parse(&without("Max-Forwards")).is_ok());
    assert!(ParseError::Missing(HeaderName::CallId)
        .reason()
        .contains("Call-ID"));
}

#[test]
fn each_unique_header_repeated_is_named() {
    for (line, name) in [
        ("From: <sip:a@h>;tag=1\r\n", HeaderName::From),
        ("To: <sip:b@h>\r\n", HeaderName::To),
        ("CSeq: 7 OPTIONS\r\n", HeaderName::CSeq),
        ("Max-Forwards: 70\r\n", HeaderName::MaxForwards),
        ("Content-Length: 0\r\n", HeaderName::ContentLength),
    ] {
        let dup = GOOD.replace(line, &format!("{line}{line}"));
        assert_eq!(
            parse(&dup).err(),
            Some(ParseError::Duplicate(name)),
            "{line}"
        );
    }
    // Compact and full forms are the same header.
    let dup = GOOD.replace("Content-Length: 0\r\n", "Content-Length: 0\r\nl: 0\r\n");
    assert_eq!(
        parse(&dup).err(),
        Some(ParseError::Duplicate(HeaderName::ContentLength))
    );
    let dup = GOOD.replace("CSeq", "Expires: 60\r\nExpires: 60\r\nCSeq");
    assert_eq!(
        parse(&dup).err(),
        Some(ParseError::Duplicate(HeaderName::Expires))
    );
    // Several repeated: the first in [`UNIQUE`] order is reported.
    let dup = GOOD.replace(
        "CSeq: 7 OPTIONS\r\n",
        "CSeq: 7 OPTIONS\r\nCSeq: 7 OPTIONS\r\n",
    );
    let dup = dup.replace("To: <sip:b@h>\r\n", "To: <sip:b@h>\r\nt: <sip:b@h>\r\n");
    assert_eq!(
        parse(&dup).err(),
        Some(ParseError::Duplicate(HeaderName::To))
    );
}

#[test]
fn header_lookups_by_position() {
    let msg = GOOD.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nSupported: path\r\nX-A: 1\r\nALLOW: INVITE\r\n\
         supported: gruu\r\nAllow: ACK\r\nX-B: 2\r\n",
    );
    let req = parse(&msg).unwrap();
    assert_eq!(req.header(HeaderName::Supported), Some(&b"path"[..]));
    let all: Vec<_> = req.raw.headers_named(HeaderName::Supported).collect();
    assert_eq!(all, [&b"path"[..], b"gruu"]);
    let allow: Vec<_> = req.raw.headers_named(HeaderName::Allow).collect();
    assert_eq!(allow, [&b"INVITE"[..], b"ACK"]);
    assert_eq!(req.header(HeaderName::Other), Some(&b"1"[..]));
    assert_eq!(req.header(HeaderName::Path), None);
    assert_eq!(req.raw.headers_named(HeaderName::Path).count(), 0);
    assert_eq!(req.header(HeaderName::CallId), Some(&b"c1"[..]));
}

#[test]
fn cseq_method_against_the_request_line() {
    // Extra white space before the method still matches.
    let msg = replace("CSeq: 7 OPTIONS", "CSeq: 7 \t OPTIONS");
    let req = parse(&msg).unwrap();
    assert_eq!((req.cseq.seq, req.cseq.method), (7, "OPTIONS"));
    // Methods are case-sensitive: `options` is another method.
    assert_eq!(
        parse(&replace("CSeq: 7 OPTIONS", "CSeq: 7 options")).err(),
        Some(ParseError::CSeqMethodMismatch)
    );
    // A method kamrs does not know, on both lines.
    let msg = GOOD.replace("OPTIONS", "PUBLISH");
    let req = parse(&msg).unwrap();
    assert_eq!(req.method, Method::Other("PUBLISH"));
    assert_eq!(req.cseq.method, "PUBLISH");
    // Not a token, and not the method either: malformed wins.
    assert_eq!(
        parse(&replace("CSeq: 7 OPTIONS", "CSeq: 7 OPT<IONS")).err(),
        Some(ParseError::Malformed(HeaderName::CSeq))
    );
    // The right method but a bad number.
    assert_eq!(
        parse(&replace("CSeq: 7 OPTIONS", "CSeq: 7x OPTIONS")).err(),
        Some(ParseError::Malformed(HeaderName::CSeq))
    );
}

#[test]
fn duplicates_and_malformed_values() {
    let dup = GOOD.replace("Call-ID: c1\r\n", "Call-ID: c1\r\ni: c2\r\n");
    assert_eq!(
        parse(&dup).err(),
        Some(ParseError::Duplicate(HeaderName::CallId))
    );
    for (from, to, err) in [
        (
            "CSeq: 7 OPTIONS",
            "CSeq: 7 INVITE",
            ParseError::CSeqMethodMismatch,
        ),
        (
            "CSeq: 7 OPTIONS",
            "CSeq: x OPTIONS",
            ParseError::Malformed(HeaderName::CSeq),
        ),
        (
            "CSeq: 7 OPTIONS",
            "CSeq: 2147483648 OPTIONS",
            ParseError::Malformed(HeaderName::CSeq),
        ),
        (
            "CSeq: 7 OPTIONS",
            "CSeq: 7",
            ParseError::Malformed(HeaderName::CSeq),
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: -1",
            ParseError::Malformed(HeaderName::MaxForwards),
        ),
        (
            "Content-Length: 0",
            "Content-Length: abc",
            ParseError::BadContentLength,
        ),
        (
            "Content-Length: 0",
            "Content-Length: 5",
            ParseError::BodyTruncated,
        ),
        (
            "Content-Length: 0",
            "Content-Length: -1",
            ParseError::BadContentLength,
        ),
        (
            "Call-ID: c1",
            "Call-ID: ",
            ParseError::Malformed(HeaderName::CallId),
        ),
        (
            "From: <sip:a@h>;tag=1",
            "From: <sip:a@h",
            ParseError::Malformed(HeaderName::From),
        ),
        (
            "To: <sip:b@h>",
            "To: nonsense",
            ParseError::Malformed(HeaderName::To),
        ),
        (
            "SIP/2.0\r\nVia",
            "SIP/3.0\r\nVia",
            ParseError::VersionNotSupported,
        ),
        (
            "OPTIONS sip:kamrs",
            "OPTIONS  sip:kamrs",
            ParseError::BadRequestUri,
        ),
        (
            "Via: SIP/2.0/UDP 127.0.0.1:5070",
            "Via: SIP/2.0/UDP",
            ParseError::Malformed(HeaderName::Via),
        ),
        (
            "Max-Forwards: 70\r\n",
            "Max-Forwards 70\r\n",
            ParseError::MalformedHeaderLine,
        ),
    ] {
        let msg = replace(from, to);
        assert_ne!(msg, GOOD, "{from} not found");
        assert_eq!(parse(&msg).err(), Some(err), "{to}");
    }
}

#[test]
fn limits() {
    let limits = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    assert_eq!(
        parse_message(GOOD.as_bytes(), &limits).err(),
        Some(ParseError::TooManyHeaders)
    );
    let limits = Limits {
        max_line_length: 40,
        ..Limits::default()
    };
    assert_eq!(
        parse_message(GOOD.as_bytes(), &limits).err(),
        Some(ParseError::LineTooLong)
    );
}

#[test]
fn folds() {
    let folded = GOOD.replace("To: <sip:b@h>", "To:\r\n <sip:b@h>\r\n\t;tag=x");
    let r = parse(&folded).unwrap();
    assert_eq!(r.to.tag(), Some("x"));
    let stray = GOOD.replace(
        "OPTIONS sip:kamrs@127.0.0.1 SIP/2.0\r\n",
        "OPTIONS sip:kamrs@127.0.0.1 SIP/2.0\r\n stray\r\n",
    );
    assert_eq!(parse(&stray).err(), Some(ParseError::MalformedHeaderLine));
}

#[test]
fn responses_are_recognised() {
    let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
    match parse_message(resp, &Limits::default()) {
        Ok(Message::Response(r)) => {
            assert_eq!(r.status, 200);
            assert_eq!(r.reason, b"OK");
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_message(b"SIP/2.0 2x0 OK\r\n\r\n", &Limits::default()).is_err());
}

#[test]
fn salvage_keeps_what_a_reply_needs() {
    let bad = GOOD.replace("CSeq: 7 OPTIONS", "CSeq: 7 INVITE");
    let raw = salvage_for_reply(bad.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(raw.top_via.unwrap().branch(), Some("z9hG4bK1"));
    // No Via: nothing to address a reply to.
    assert!(salvage_for_reply(without("Via").as_bytes(), &Limits::default()).is_none());
    assert!(salvage_for_reply(b"\x00\x01garbage", &Limits::default()).is_none());
}

#[test]
fn expires_values() {
    let r = |v: &str| {
        parse(&GOOD.replace("Max-Forwards: 70", &format!("Expires: {v}"))).map(|r| r.expires())
    };
    assert_eq!(r("300").unwrap(), Ok(Some(300)));
    assert_eq!(r("99999999999").unwrap(), Ok(Some(u32::MAX)));
    assert_eq!(
        r("soon").unwrap(),
        Err(ParseError::Malformed(HeaderName::Expires))
    );
}
