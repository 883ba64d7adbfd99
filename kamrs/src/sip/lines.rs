//! Where each header of a parsed message sits in the received bytes, so a
//! proxy can copy a message line by line and change only what RFC 3261
//! §16.6 says it changes (Request-URI, Via, Max-Forwards, Route,
//! Record-Route): everything else reaches the next hop byte for byte,
//! headers kamrs does not know included.
//!
//! Header values are slices of the message, so their positions are found
//! by address arithmetic, not by searching again.

use std::ops::Range;

use super::scan::find1;

/// The offset of `part` inside `msg`, when `part` is a slice of it.
pub fn offset_in(msg: &[u8], part: &[u8]) -> Option<usize> {
    let start = msg.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    let off = at.checked_sub(start)?;
    (off + part.len() <= msg.len()).then_some(off)
}

/// The whole line (name, value, folds and line end) holding the header
/// value `value`, a slice of `msg`.
pub fn line_of(msg: &[u8], value: &[u8]) -> Option<Range<usize>> {
    let off = offset_in(msg, value)?;
    let start = memchr::memrchr(b'\n', &msg[..off]).map_or(0, |i| i + 1);
    let end = off + value.len();
    let end = find1(b'\n', &msg[end..]).map_or(msg.len(), |i| end + i + 1);
    Some(start..end)
}

/// Where the header section ends: the offset of the empty line.
pub fn headers_end(msg: &[u8], body: &[u8]) -> usize {
    // The parser's body is always a slice of the message, empty or not.
    let body_at = offset_in(msg, body).unwrap_or(msg.len());
    let head = &msg[..body_at];
    // The empty line is "\r\n" or "\n" just before the body.
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    let head = head.strip_suffix(b"\r").unwrap_or(head);
    head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_and_the_header_end() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nTo: <sip:a@b>;\r\n  tag=1\r\n\r\nbody";
        let at = |needle: &[u8]| msg.windows(needle.len()).position(|w| w == needle).unwrap();
        let start = at(b"<sip:a@b>;");
        let to = &msg[start..start + 19];
        assert_eq!(to, b"<sip:a@b>;\r\n  tag=1");
        let line = line_of(msg, to).unwrap();
        assert_eq!(&msg[line], b"To: <sip:a@b>;\r\n  tag=1\r\n");
        let body = at(b"body");
        assert_eq!(headers_end(msg, &msg[body..]), body - 2);
        assert_eq!(offset_in(msg, b"elsewhere"), None);
        let no_body = b"OPTIONS sip:a SIP/2.0\nVia: x\n\n";
        assert_eq!(
            &no_body[..headers_end(no_body, &no_body[no_body.len()..])],
            b"OPTIONS sip:a SIP/2.0\nVia: x\n"
        );
    }
}
