//! Cutting a byte stream (TCP) into SIP messages (RFC 3261 §18.3).
//!
//! A datagram is one message; a stream is not. On a stream the header
//! section runs to the first empty line and the body is exactly
//! Content-Length bytes, which is therefore mandatory. Between messages a
//! client may send CRLF keep-alives (RFC 5626 §3.5.1): a double CRLF is a
//! ping that we answer with a single CRLF, a lone CRLF is a pong we skip.

use super::{header_name, HeaderName, Limits, ParseError};

/// The outcome of looking at the front of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFrame {
    /// A whole message occupies `buf[..len]`.
    Message { len: usize },
    /// `buf[..len]` is a CRLFCRLF keep-alive ping: answer with CRLF.
    Ping { len: usize },
    /// `buf[..len]` is a lone CRLF (a pong or stray line end): skip it.
    Skip { len: usize },
    /// More bytes are needed.
    Incomplete,
    /// The header section alone reaches `max_message_size` without ending:
    /// there is nothing to answer from, and the connection must close since
    /// we cannot find where the next message starts.
    TooLarge,
    /// The header section ends at `head_len` but the message cannot be
    /// taken: Content-Length missing or not a number (`error` says which,
    /// answered 400), or the headers plus Content-Length exceed
    /// `max_message_size` ([`ParseError::MessageTooLarge`], answered 513).
    /// The reply is built from the headers, then the connection must close.
    Unframeable { head_len: usize, error: ParseError },
}

/// Looks for the next frame at the start of `buf`.
pub fn next_stream_frame(buf: &[u8], limits: &Limits) -> StreamFrame {
    if buf.starts_with(b"\r\n\r\n") {
        return StreamFrame::Ping { len: 4 };
    }
    if buf.starts_with(b"\r\n") {
        // Could be the start of a ping whose second CRLF has not arrived.
        if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            return StreamFrame::Incomplete;
        }
        return StreamFrame::Skip { len: 2 };
    }
    if buf == b"\r" {
        return StreamFrame::Incomplete;
    }
    if buf.first() == Some(&b'\n') {
        return StreamFrame::Skip { len: 1 };
    }
    let Some(head_len) = find_head_end(buf) else {
        return if buf.len() >= limits.max_message_size {
            StreamFrame::TooLarge
        } else {
            StreamFrame::Incomplete
        };
    };
    if head_len > limits.max_message_size {
        // The header section alone is over the limit (only possible in a
        // buffer longer than the limit; the TCP buffer never is).
        return StreamFrame::TooLarge;
    }
    let body_len = match content_length(&buf[..head_len]) {
        Ok(Some(n)) => n,
        Ok(None) => {
            return StreamFrame::Unframeable {
                head_len,
                error: ParseError::MissingContentLength,
            }
        }
        Err(error) => return StreamFrame::Unframeable { head_len, error },
    };
    let total = match head_len.checked_add(body_len) {
        Some(t) if t <= limits.max_message_size => t,
        // The headers are here, so the sender can be told why (RFC 3261
        // §21.5.14) instead of seeing the connection drop.
        _ => {
            return StreamFrame::Unframeable {
                head_len,
                error: ParseError::MessageTooLarge,
            }
        }
    };
    if buf.len() < total {
        StreamFrame::Incomplete
    } else {
        StreamFrame::Message { len: total }
    }
}

/// Length of the header section including the empty line that ends it,
/// accepting bare-LF line ends as the parser does.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let nl = from + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        from = nl + 1;
    }
    None
}

/// Finds the Content-Length (or `l`) header in a header section. A value
/// that is not a plain decimal number, or two that disagree, is an error.
fn content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    // Skip the start line; continuation lines (folding) belong to the
    // header above them.
    for line in head.split(|&b| b == b'\n').skip(1) {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_ascii(&line[..colon]);
        if !matches!(name.len(), 1 | 14) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if header_name(name) != HeaderName::ContentLength {
            continue;
        }
        let n = super::parse_content_length(trim_ascii(&line[colon + 1..]))?;
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

#[cfg(test)]
mod tests;
