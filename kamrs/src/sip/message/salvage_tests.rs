use super::*;

#[test]
fn salvage_skips_broken_lines_to_find_the_via() {
    let msg = "REGISTER sip:x SIP/2.0\r\nno colon here\r\n\tstray fold\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKs\r\nCall-ID: c\r\n\r\n";
    assert_eq!(
        parse_message(msg.as_bytes(), &Limits::default()).err(),
        Some(ParseError::MalformedHeaderLine)
    );
    let raw = salvage_for_reply(msg.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(raw.top_via.unwrap().branch(), Some("z9hG4bKs"));
    assert_eq!(raw.header(HeaderName::CallId), Some(&b"c"[..]));
}
