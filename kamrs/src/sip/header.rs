//! Header names: the ones kamrs reads, recognised in full and compact form.

/// Headers kamrs interprets. Everything else is [`HeaderName::Other`] and
/// kept by its received name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    Route,
    Other,
}

impl HeaderName {
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
            HeaderName::Route => "Route",
            HeaderName::Other => "",
        }
    }
}

/// Classifies a header name, case-insensitively, compact forms included
/// (RFC 3261 §7.3.3). Dispatching on length first keeps this to one or two
/// comparisons per header.
pub fn header_name(name: &str) -> HeaderName {
    let b = name.as_bytes();
    let eq = |s: &str| b.eq_ignore_ascii_case(s.as_bytes());
    match b.len() {
        1 => match b[0].to_ascii_lowercase() {
            b'v' => HeaderName::Via,
            b'f' => HeaderName::From,
            b't' => HeaderName::To,
            b'i' => HeaderName::CallId,
            b'm' => HeaderName::Contact,
            b'l' => HeaderName::ContentLength,
            b'c' => HeaderName::ContentType,
            b'k' => HeaderName::Supported,
            _ => HeaderName::Other,
        },
        2 if eq("to") => HeaderName::To,
        3 if eq("via") => HeaderName::Via,
        4 if eq("from") => HeaderName::From,
        4 if eq("cseq") => HeaderName::CSeq,
        4 if eq("path") => HeaderName::Path,
        5 if eq("route") => HeaderName::Route,
        7 if eq("call-id") => HeaderName::CallId,
        7 if eq("contact") => HeaderName::Contact,
        7 if eq("expires") => HeaderName::Expires,
        7 if eq("require") => HeaderName::Require,
        9 if eq("supported") => HeaderName::Supported,
        10 if eq("user-agent") => HeaderName::UserAgent,
        12 if eq("max-forwards") => HeaderName::MaxForwards,
        12 if eq("content-type") => HeaderName::ContentType,
        13 if eq("proxy-require") => HeaderName::ProxyRequire,
        13 if eq("authorization") => HeaderName::Authorization,
        14 if eq("content-length") => HeaderName::ContentLength,
        _ => HeaderName::Other,
    }
}

/// One header line (folds included) as received.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub name: HeaderName,
    /// The name as received (`v`, `VIA`, `X-Foo`).
    pub raw_name: &'a [u8],
    /// The value with leading and trailing white space removed; may contain
    /// folds (CRLF + SP/HT), which parsers treat as white space.
    pub value: &'a [u8],
}
