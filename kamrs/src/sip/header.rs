//! Header names: the ones kamrs reads, recognised in full and compact form.

/// Headers kamrs interprets. Everything else is [`HeaderName::Other`]: its
/// value is kept, its name is not (nothing kamrs does with such a header
/// needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    Expires,
    MaxForwards,
    ContentLength,
    ContentType,
    Path,
    Supported,
    Require,
    ProxyRequire,
    Authorization,
    UserAgent,
    Allow,
    Route,
    RecordRoute,
    ProxyAuthorization,
    Other,
}

impl HeaderName {
    /// How many names there are, [`HeaderName::Other`] included: the size
    /// of a table indexed by `name as usize`.
    pub const COUNT: usize = HeaderName::Other as usize + 1;

    /// Canonical spelling, used when we write the header ourselves.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::Expires => "Expires",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::Path => "Path",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Authorization => "Authorization",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Allow => "Allow",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::Other => "",
        }
    }
}

/// Classifies a header name, case-insensitively, compact forms included
/// (RFC 3261 §7.3.3). Dispatching on length first keeps this to one or two
/// comparisons per header.
#[inline]
pub fn header_name(name: &str) -> HeaderName {
    header_name_bytes(name.as_bytes())
}

/// [`header_name`] on bytes: the header splitter has the name as token
/// bytes and needs no UTF-8 check to classify it.
#[inline]
pub(crate) fn header_name_bytes(b: &[u8]) -> HeaderName {
    let Some(&first) = b.first() else {
        return HeaderName::Other;
    };
    // (length, first letter) picks at most one candidate, so a header costs
    // one case-insensitive comparison at most.
    let candidate = match (b.len(), first | 0x20) {
        (1, b'v') => return HeaderName::Via,
        (1, b'f') => return HeaderName::From,
        (1, b't') => return HeaderName::To,
        (1, b'i') => return HeaderName::CallId,
        (1, b'm') => return HeaderName::Contact,
        (1, b'l') => return HeaderName::ContentLength,
        (1, b'c') => return HeaderName::ContentType,
        (1, b'k') => return HeaderName::Supported,
        (2, b't') => ("to", HeaderName::To),
        (3, b'v') => ("via", HeaderName::Via),
        (4, b'f') => ("from", HeaderName::From),
        (4, b'c') => ("cseq", HeaderName::CSeq),
        (4, b'p') => ("path", HeaderName::Path),
        (5, b'r') => ("route", HeaderName::Route),
        (5, b'a') => ("allow", HeaderName::Allow),
        (7, b'c') if b.get(1).is_some_and(|c| c | 0x20 == b'a') => ("call-id", HeaderName::CallId),
        (7, b'c') => ("contact", HeaderName::Contact),
        (7, b'e') => ("expires", HeaderName::Expires),
        (7, b'r') => ("require", HeaderName::Require),
        (9, b's') => ("supported", HeaderName::Supported),
        (10, b'u') => ("user-agent", HeaderName::UserAgent),
        (12, b'm') => ("max-forwards", HeaderName::MaxForwards),
        (12, b'c') => ("content-type", HeaderName::ContentType),
        (12, b'r') => ("record-route", HeaderName::RecordRoute),
        (19, b'p') => ("proxy-authorization", HeaderName::ProxyAuthorization),
        (13, b'p') => ("proxy-require", HeaderName::ProxyRequire),
        (13, b'a') => ("authorization", HeaderName::Authorization),
        (14, b'c') => ("content-length", HeaderName::ContentLength),
        _ => return HeaderName::Other,
    };
    if eq_lower(b, candidate.0.as_bytes()) {
        candidate.1
    } else {
        HeaderName::Other
    }
}

/// `b` equals `lower` (lower-case letters and `-`) ignoring ASCII case.
/// Header names are tokens, and for token bytes `b | 0x20` equals a
/// lower-case letter or `-` only when `b` is that letter (either case) or
/// `-`: so OR-ing 0x20 into every byte is a case-insensitive compare, done
/// here a word at a time (two possibly overlapping loads cover 4 to 16
/// bytes) rather than byte by byte.
#[inline(always)]
fn eq_lower(b: &[u8], lower: &[u8]) -> bool {
    if b.len() != lower.len() {
        return false;
    }
    const M8: u64 = 0x2020_2020_2020_2020;
    const M4: u32 = 0x2020_2020;
    let w8 = |s: Option<&[u8; 8]>| s.map(|c| u64::from_le_bytes(*c));
    let w4 = |s: Option<&[u8; 4]>| s.map(|c| u32::from_le_bytes(*c));
    match b.len() {
        8..=16 => {
            let (Some(x0), Some(x1), Some(y0), Some(y1)) = (
                w8(b.first_chunk()),
                w8(b.last_chunk()),
                w8(lower.first_chunk()),
                w8(lower.last_chunk()),
            ) else {
                return false;
            };
            x0 | M8 == y0 && x1 | M8 == y1
        }
        4..=7 => {
            let (Some(x0), Some(x1), Some(y0), Some(y1)) = (
                w4(b.first_chunk()),
                w4(b.last_chunk()),
                w4(lower.first_chunk()),
                w4(lower.last_chunk()),
            ) else {
                return false;
            };
            x0 | M4 == y0 && x1 | M4 == y1
        }
        _ => b.iter().zip(lower).all(|(x, y)| x | 0x20 == *y),
    }
}

#[cfg(test)]
mod tests;

/// One header line (folds included) as received.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// Only the class is kept, not the name as received: every header
    /// kamrs reads has its own [`HeaderName`], and the list is copied a
    /// few times per message, so its 16 bytes a header were paid on every
    /// REGISTER for nothing.
    pub name: HeaderName,
    /// The value with leading and trailing white space removed; may contain
    /// folds (CRLF + SP/HT), which parsers treat as white space.
    pub value: &'a [u8],
}
