//! Why a message was refused, and the status and reason phrase that say so.

use super::HeaderName;

/// A fault in a received message. Requests whose reply can still be
/// addressed are answered with [`status`](ParseError::status) and
/// [`reason`](ParseError::reason); the reason names the fault so that the
/// person reading a trace sees at once what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a SIP start line at all.
    BadStartLine,
    /// `SIP/x.y` other than 2.0 (answered 505).
    VersionNotSupported,
    BadRequestUri,
    /// A header line without a colon, an empty name, or a stray fold.
    MalformedHeaderLine,
    TooManyHeaders,
    LineTooLong,
    Missing(HeaderName),
    Duplicate(HeaderName),
    Malformed(HeaderName),
    CSeqMethodMismatch,
    BadContentLength,
    /// Content-Length larger than the bytes that follow the headers.
    BodyTruncated,
    /// On a stream, Content-Length is mandatory (RFC 3261 §18.3).
    MissingContentLength,
    /// A NUL, or a CR that does not end its line, in a header line.
    ControlCharacter,
    /// On a stream, the header section plus Content-Length exceed
    /// `max_message_size` (answered 513, then the connection closes: the
    /// body is not read, so the next message cannot be found).
    MessageTooLarge,
}

impl ParseError {
    pub fn status(self) -> u16 {
        match self {
            ParseError::VersionNotSupported => 505,
            ParseError::MessageTooLarge => 513,
            _ => 400,
        }
    }

    pub fn reason(self) -> &'static str {
        use HeaderName as H;
        match self {
            ParseError::BadStartLine => "Bad Request Line",
            ParseError::VersionNotSupported => "Version Not Supported",
            ParseError::BadRequestUri => "Malformed Request-URI",
            ParseError::MalformedHeaderLine => "Malformed Header Line",
            ParseError::TooManyHeaders => "Too Many Headers",
            ParseError::LineTooLong => "Header Line Too Long",
            ParseError::CSeqMethodMismatch => "CSeq Method Does Not Match Request Method",
            ParseError::BadContentLength => "Bad Content-Length",
            ParseError::BodyTruncated => "Content-Length Larger Than Body",
            ParseError::MissingContentLength => "Missing Content-Length",
            ParseError::ControlCharacter => "NUL Or Bare CR In Header",
            ParseError::MessageTooLarge => "Message Too Large",
            ParseError::Missing(h) => match h {
                H::Via => "Missing Via Header",
                H::From => "Missing From Header",
                H::To => "Missing To Header",
                H::CallId => "Missing Call-ID Header",
                H::CSeq => "Missing CSeq Header",
                _ => "Missing Mandatory Header",
            },
            ParseError::Duplicate(h) => match h {
                H::From => "Duplicate From Header",
                H::To => "Duplicate To Header",
                H::CallId => "Duplicate Call-ID Header",
                H::CSeq => "Duplicate CSeq Header",
                H::MaxForwards => "Duplicate Max-Forwards Header",
                H::ContentLength => "Duplicate Content-Length Header",
                H::Expires => "Duplicate Expires Header",
                _ => "Duplicate Header",
            },
            ParseError::Malformed(h) => match h {
                H::Via => "Malformed Via Header",
                H::From => "Malformed From Header",
                H::To => "Malformed To Header",
                H::CallId => "Malformed Call-ID Header",
                H::CSeq => "Malformed CSeq Header",
                H::Contact => "Malformed Contact Header",
                H::Expires => "Malformed Expires Header",
                H::MaxForwards => "Malformed Max-Forwards Header",
                H::Path => "Malformed Path Header",
                _ => "Malformed Header",
            },
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for ParseError {}
