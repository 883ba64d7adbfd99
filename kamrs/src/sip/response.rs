//! What kamrs reads from a response: only its Call-ID, to find the
//! keepalive ping it answers. Responses are not parsed further (kamrs
//! relays none), so this is a bounded scan of the header lines.

use super::Limits;

/// The Call-ID (`Call-ID:` or compact `i:`) of the response `msg`, trimmed;
/// `None` when the headers end, a line is over `max_line_length`, more than
/// `max_headers` lines come first, or the value is empty or not printable ASCII.
pub fn call_id<'a>(msg: &'a [u8], limits: &Limits) -> Option<&'a str> {
    // Every keepalive reply comes through here: lines are found with
    // memchr, and only a line starting like `Call-ID` or `i` is split.
    let mut rest = msg.get(memchr::memchr(b'\n', msg)? + 1..)?;
    for _ in 0..limits.max_headers {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.len() > limits.max_line_length {
            return None;
        }
        if !matches!(line[0], b'c' | b'C' | b'i' | b'I') {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = super::trim_ws(&line[..colon]);
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = super::trim_ws(&line[colon + 1..]);
            // RFC 3261 §25.1: a Call-ID is `word ["@" word]`, printable
            // characters without spaces; anything else is not one of ours
            // and must not reach a log line.
            if value.is_empty() || !value.iter().all(u8::is_ascii_graphic) {
                return None;
            }
            return std::str::from_utf8(value).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests;
