//! Splitting a message into start line, headers and body, then checking a
//! request's mandatory headers (RFC 3261 §7, §8.1.1, §18.3).
//!
//! Parsing is two steps. [`RawRequest`] is the structure only: request line,
//! header lines, body and the top Via. [`Request`] adds the typed mandatory
//! headers. The split lets a message that fails the second step still be
//! answered with a 400 built from its raw headers.

use smallvec::SmallVec;

use super::error::ParseError;
use super::header::{header_name_bytes, Header, HeaderName};
use super::name_addr::{NameAddr, NameAddrList};
use super::scan::{all_graphic, ascii, class, find1, find2, is_ws, parse_u32, skip_ws, span, trim};
use super::via::Via;

/// Size limits applied before and while parsing. Every buffer the SIP layer
/// fills is bounded by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_536,
            max_headers: 64,
            max_line_length: 8_192,
        }
    }
}

/// SIP methods. Names are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'a> {
    Register,
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Subscribe,
    Notify,
    Message,
    Other(&'a str),
}

impl<'a> Method<'a> {
    pub fn parse(s: &'a str) -> Method<'a> {
        match s {
            "REGISTER" => Method::Register,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "CANCEL" => Method::Cancel,
            "BYE" => Method::Bye,
            "OPTIONS" => Method::Options,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "MESSAGE" => Method::Message,
            other => Method::Other(other),
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Bye => "BYE",
            Method::Options => "OPTIONS",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
}

/// Headers of one message, in order. Inline capacity covers what phones
/// send, so parsing a typical REGISTER does not allocate.
pub type Headers<'a> = SmallVec<[Header<'a>; 16]>;

/// A parsed message.
// Boxing the request would cost an allocation per packet; a response is
// rare (and ignored), so the size difference is the cheaper trade.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Message<'a> {
    Request(Request<'a>),
    Response(Response<'a>),
}

/// A response that reached us. kamrs keeps no transactions, so responses are
/// only recognised (to be counted and ignored), never interpreted.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub reason: &'a [u8],
}

/// A request whose structure is sound; its headers are not yet checked.
#[derive(Debug, Clone)]
pub struct RawRequest<'a> {
    pub method: Method<'a>,
    pub uri: &'a str,
    pub headers: Headers<'a>,
    pub body: &'a [u8],
    /// The first Via value, needed to address any reply.
    pub top_via: Option<Via<'a>>,
    index: HeaderIndex,
}

/// Where each kind of header first appears in [`RawRequest::headers`],
/// recorded while the lines are split. The checks and lookups that follow
/// (top Via, Content-Length, the mandatory headers, Expires, Contact) then
/// index instead of searching the list again: six more passes over it per
/// REGISTER before.
#[derive(Debug, Clone, Copy)]
struct HeaderIndex {
    /// Position of the first header of each [`HeaderName`], [`NONE`] when
    /// there is none.
    first: [u16; HeaderName::COUNT],
    /// Names seen more than once, one bit per [`HeaderName`].
    repeated: u32,
}

/// [`HeaderIndex::first`] of an absent header.
const NONE: u16 = u16::MAX;

impl HeaderIndex {
    const EMPTY: HeaderIndex = HeaderIndex {
        first: [NONE; HeaderName::COUNT],
        repeated: 0,
    };

    /// Records the header at `position`. A position that does not fit is
    /// not recorded; the configured header limit (at most 10,000) keeps
    /// every position far below.
    #[inline(always)]
    fn add(&mut self, name: HeaderName, position: usize) {
        let slot = &mut self.first[name as usize];
        if *slot == NONE {
            *slot = u16::try_from(position).unwrap_or(NONE);
        } else {
            self.repeated |= 1 << name as u32;
        }
    }

    fn first(&self, name: HeaderName) -> Option<usize> {
        match self.first[name as usize] {
            NONE => None,
            i => Some(usize::from(i)),
        }
    }

    fn repeated(&self, name: HeaderName) -> bool {
        self.repeated & (1 << name as u32) != 0
    }
}

impl<'a> RawRequest<'a> {
    /// First header called `name`.
    #[inline]
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        let i = self.index.first(name)?;
        self.headers.get(i).map(|h| h.value)
    }

    /// Every header called `name`, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers_from(name)
            .filter(move |h| h.name == name)
            .map(|h| h.value)
    }

    /// The headers from the first one called `name` on (none when there is
    /// no such header).
    fn headers_from(&self, name: HeaderName) -> std::slice::Iter<'_, Header<'a>> {
        let start = self.index.first(name).unwrap_or(self.headers.len());
        self.headers.get(start..).unwrap_or_default().iter()
    }
}

/// `CSeq: 4711 REGISTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    pub fn parse(v: &'a [u8]) -> Option<CSeq<'a>> {
        let v = trim(v);
        let sp = v.iter().position(|&b| is_ws(b))?;
        let seq = parse_u32(&v[..sp])?;
        // RFC 3261 §8.1.1.5: the sequence number must be below 2**31.
        if seq >= 1 << 31 {
            return None;
        }
        let m = trim(&v[sp..]);
        if m.is_empty() || span(m, 0, class::TOKEN) != m.len() {
            return None;
        }
        Some(CSeq {
            seq,
            method: ascii(m)?,
        })
    }

    /// [`CSeq::parse`] for a request whose method is `method`: a CSeq
    /// naming another method is [`ParseError::CSeqMethodMismatch`]. The
    /// usual case, the same method, is settled by comparing bytes: the
    /// request line's method is a checked token already.
    #[inline]
    fn parse_for(v: &'a [u8], method: Method<'a>) -> Result<CSeq<'a>, ParseError> {
        let malformed = ParseError::Malformed(HeaderName::CSeq);
        let v = trim(v);
        let sp = v.iter().position(|&b| is_ws(b)).ok_or(malformed)?;
        let expected = method.as_str();
        if trim(&v[sp..]) == expected.as_bytes() {
            let seq = parse_u32(&v[..sp]).filter(|&n| n < 1 << 31);
            return Ok(CSeq {
                seq: seq.ok_or(malformed)?,
                method: expected,
            });
        }
        CSeq::parse(v).ok_or(malformed)?;
        Err(ParseError::CSeqMethodMismatch)
    }
}

/// A request with its mandatory headers present, unique and well formed.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub raw: RawRequest<'a>,
    pub method: Method<'a>,
    /// The Request-URI as received.
    pub uri: &'a str,
    pub top_via: Via<'a>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub call_id: &'a str,
    pub cseq: CSeq<'a>,
    pub max_forwards: Option<u32>,
}

impl<'a> Request<'a> {
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        self.raw.header(name)
    }

    /// Every Contact of every Contact header, in order. `Contact: *` is
    /// reported by [`Request::contact_star`], not here.
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        Contacts {
            headers: self.raw.headers_from(HeaderName::Contact),
            list: NameAddrList::new(b""),
        }
    }

    /// Whether a `Contact: *` is present.
    pub fn contact_star(&self) -> bool {
        self.raw
            .headers_named(HeaderName::Contact)
            .any(|v| v == b"*")
    }

    /// The Expires header: `Ok(None)` when absent. A value too large for
    /// `u32` is taken as `u32::MAX` (RFC 3261 §20.19 allows it; the
    /// registrar clamps anyway).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.raw.header(HeaderName::Expires) {
            None => Ok(None),
            Some(v) => parse_delta_seconds(v)
                .map(Some)
                .ok_or(ParseError::Malformed(HeaderName::Expires)),
        }
    }
}

/// [`Request::contacts`]: one loop instead of filter, flat_map and map
/// adapters, each of which moved the ~230-byte `NameAddr` once more.
struct Contacts<'r, 'a> {
    headers: std::slice::Iter<'r, Header<'a>>,
    /// The Contact header being read.
    list: NameAddrList<'a>,
}

impl<'a> Iterator for Contacts<'_, 'a> {
    type Item = Result<NameAddr<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next = self
                .list
                .next_or(ParseError::Malformed(HeaderName::Contact));
            if next.is_some() {
                return next;
            }
            let h = self
                .headers
                .find(|h| h.name == HeaderName::Contact && h.value != b"*")?;
            self.list = NameAddrList::new(h.value);
        }
    }
}

/// delta-seconds, saturating at `u32::MAX`.
#[inline]
pub fn parse_delta_seconds(v: &[u8]) -> Option<u32> {
    let v = trim(v);
    if v.is_empty() {
        return None;
    }
    // One pass: check and accumulate together, saturating.
    let mut n: u64 = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = (n * 10 + u64::from(d)).min(u64::from(u32::MAX));
    }
    Some(n as u32)
}

/// Content-Length value: decimal digits only.
#[inline]
pub fn parse_content_length(v: &[u8]) -> Result<usize, ParseError> {
    let v = trim(v);
    if v.is_empty() || v.len() > 9 {
        return Err(ParseError::BadContentLength);
    }
    // Check and accumulate in one pass; nine digits cannot overflow.
    let mut n = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(ParseError::BadContentLength);
        }
        n = n * 10 + usize::from(d);
    }
    Ok(n)
}

/// Parses one complete message: a datagram, or a frame cut from a stream.
// Inlined into the caller so the returned `Message` (over 1 KiB) is built
// in the caller's slot instead of being copied out.
#[inline]
pub fn parse_message<'a>(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    match parse_structure(buf, limits, true)? {
        Structure::Response(r) => Ok(Message::Response(r)),
        Structure::Request(raw) => validate(raw).map(Message::Request),
    }
}

/// After [`parse_message`] failed: recovers enough of a request to address
/// a 400 reply (request line, headers, top Via), ignoring the SIP version
/// and the body. `None` when even that is impossible.
pub fn salvage_for_reply<'a>(buf: &'a [u8], limits: &Limits) -> Option<RawRequest<'a>> {
    match parse_structure(buf, limits, false) {
        Ok(Structure::Request(raw)) if raw.top_via.is_some() => Some(raw),
        _ => None,
    }
}

#[allow(clippy::large_enum_variant)]
enum Structure<'a> {
    Request(RawRequest<'a>),
    Response(Response<'a>),
}

// Inlined into its two callers so the ~700-byte RawRequest is built in
// place rather than copied out (callgrind: memcpy was 6 % of a REGISTER).
#[inline(always)]
fn parse_structure<'a>(
    buf: &'a [u8],
    limits: &Limits,
    strict: bool,
) -> Result<Structure<'a>, ParseError> {
    // Line ends are CRLF; a bare LF is accepted as well (many stacks send
    // it and nothing is ambiguous about it).
    let first_nl = find1(b'\n', buf).ok_or(ParseError::BadStartLine)?;
    let start_line = strip_cr(&buf[..first_nl]);
    if start_line.len() > limits.max_line_length {
        return Err(ParseError::LineTooLong);
    }
    if start_line.starts_with(b"SIP/") {
        return parse_status_line(start_line).map(Structure::Response);
    }
    let (method, uri) = parse_request_line(start_line, strict)?;

    // Built in place: the header list (392 bytes) filled in a local and
    // then moved into the request was one more copy per message.
    let mut raw = RawRequest {
        method,
        uri,
        headers: Headers::new(),
        body: &[],
        top_via: None,
        index: HeaderIndex::EMPTY,
    };
    let body_start = split_headers(
        buf,
        first_nl + 1,
        limits,
        strict,
        &mut raw.headers,
        &mut raw.index,
    )?;

    // The top Via is needed to answer even a broken request.
    raw.top_via = raw
        .header(HeaderName::Via)
        .and_then(|v| Via::parse_at(v, 0).map(|(via, _)| via));

    let mut body = &buf[body_start.min(buf.len())..];
    if strict {
        if raw.index.repeated(HeaderName::ContentLength) {
            return Err(ParseError::Duplicate(HeaderName::ContentLength));
        }
        if let Some(v) = raw.header(HeaderName::ContentLength) {
            let n = parse_content_length(v)?;
            // RFC 3261 §18.3: bytes beyond Content-Length are discarded; fewer
            // bytes than it announces make the message unusable.
            body = body.get(..n).ok_or(ParseError::BodyTruncated)?;
        }
    }
    raw.body = body;
    Ok(Structure::Request(raw))
}

/// Splits the header lines of `buf` from `pos` into `headers`, recording
/// each in `index`; returns where the body starts. Shared by requests and
/// the responses the proxy reads; inlined so the request path stays as it
/// was measured.
#[inline(always)]
fn split_headers<'a>(
    buf: &'a [u8],
    pos: usize,
    limits: &Limits,
    strict: bool,
    headers: &mut Headers<'a>,
    index: &mut HeaderIndex,
) -> Result<usize, ParseError> {
    let mut pos = pos;
    let mut body_start = buf.len();
    // Where the last header's value starts in `buf`, for folds.
    let mut last_value_start = None;
    while pos < buf.len() {
        let nl = find1(b'\n', &buf[pos..]).map(|i| pos + i);
        let line_end = nl.unwrap_or(buf.len());
        let line_start = pos;
        let line = strip_cr(&buf[pos..line_end]);
        let next = nl.map_or(buf.len(), |n| n + 1);
        if line.is_empty() {
            body_start = next;
            break;
        }
        pos = next;
        // In lenient mode (salvaging a reply to a broken request) a bad
        // line is skipped instead of failing the message, so the Via,
        // From, To, Call-ID and CSeq around it can still address a 400.
        macro_rules! bad_line {
            ($err:expr) => {{
                if strict {
                    return Err($err);
                }
                last_value_start = None;
                continue;
            }};
        }
        if line.len() > limits.max_line_length {
            bad_line!(ParseError::LineTooLong);
        }
        // Neither NUL nor a CR inside a line is allowed in a header (RFC
        // 3261 §25.1: TEXT-UTF8char and LWS exclude both). A bare CR ends
        // a line for some parsers, so a value holding one could carry a
        // forged header into the replies we copy it into, or into a log.
        if find2(0, b'\r', line).is_some() {
            bad_line!(ParseError::ControlCharacter);
        }
        if is_ws(line[0]) {
            // A fold: the line continues the previous header's value, which
            // keeps pointing into the received bytes.
            let (Some(last), Some(value_start)) = (headers.last_mut(), last_value_start) else {
                bad_line!(ParseError::MalformedHeaderLine);
            };
            last.value = trim(&buf[value_start..line_start + line.len()]);
            continue;
        }
        // name *(SP/HT) ":" in one pass over the name's bytes.
        let name_len = span(line, 0, class::TOKEN);
        let colon = name_len
            + line[name_len..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
        if name_len == 0 || line.get(colon) != Some(&b':') {
            bad_line!(ParseError::MalformedHeaderLine);
        }
        if headers.len() >= limits.max_headers {
            bad_line!(ParseError::TooManyHeaders);
        }
        let name = header_name_bytes(&line[..name_len]);
        let after_colon = &line[colon + 1..];
        let lead = skip_ws(after_colon, 0);
        last_value_start = Some(line_start + colon + 1 + lead);
        // The leading white space is counted already: trim the end only.
        let mut value = &after_colon[lead..];
        while let [rest @ .., last] = value {
            if !is_ws(*last) {
                break;
            }
            value = rest;
        }
        index.add(name, headers.len());
        headers.push(Header { name, value });
    }

    Ok(body_start)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_request_line(line: &[u8], strict: bool) -> Result<(Method<'_>, &str), ParseError> {
    let sp1 = find1(b' ', line).ok_or(ParseError::BadStartLine)?;
    // The last space. Nearly every request line ends in " SIP/2.0", which
    // holds no other space and needs no other version check: testing for
    // that is cheaper than searching.
    let exact_version = line.ends_with(b" SIP/2.0");
    let sp2 = if exact_version {
        line.len() - 8
    } else {
        memchr::memrchr(b' ', line).ok_or(ParseError::BadStartLine)?
    };
    if sp2 <= sp1 + 1 {
        return Err(ParseError::BadStartLine);
    }
    // Matched as bytes: the methods kamrs expects most need neither the
    // token check (they are tokens) nor a `&str` conversion.
    let method = match &line[..sp1] {
        b"REGISTER" => Method::Register,
        b"OPTIONS" => Method::Options,
        other => {
            if other.is_empty() || span(other, 0, class::TOKEN) != other.len() {
                return Err(ParseError::BadStartLine);
            }
            Method::parse(ascii(other).ok_or(ParseError::BadStartLine)?)
        }
    };
    let uri = &line[sp1 + 1..sp2];
    // White space is not graphic: this rejects it as well.
    if !all_graphic(uri) {
        return Err(ParseError::BadRequestUri);
    }
    if !exact_version {
        let version = &line[sp2 + 1..];
        if !version.starts_with(b"SIP/") && !version.starts_with(b"sip/") {
            return Err(ParseError::BadStartLine);
        }
        if strict && !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::VersionNotSupported);
        }
    }
    Ok((method, ascii(uri).ok_or(ParseError::BadRequestUri)?))
}

fn parse_status_line(line: &[u8]) -> Result<Response<'_>, ParseError> {
    // SIP/2.0 SP 3DIGIT SP reason
    let rest = line.get(8..).ok_or(ParseError::BadStartLine)?;
    let code = rest.get(..3).ok_or(ParseError::BadStartLine)?;
    let status = parse_u32(code)
        .filter(|c| (100..700).contains(c))
        .ok_or(ParseError::BadStartLine)? as u16;
    Ok(Response {
        status,
        reason: trim(rest.get(3..).unwrap_or(b"")),
    })
}

/// A response as the proxy reads it: the status, the headers it needs to
/// match the response to its transaction, and the rest kept as received.
#[derive(Debug, Clone)]
pub struct FullResponse<'a> {
    pub status: u16,
    pub reason: &'a [u8],
    pub headers: Headers<'a>,
    /// The first Via value: ours, on a response to a request we sent.
    pub top_via: Via<'a>,
    pub call_id: &'a str,
    pub cseq: CSeq<'a>,
    /// The To tag, which an ACK to a non-2xx response must repeat.
    pub to_tag: Option<&'a str>,
    /// The whole To value, for the ACK.
    pub to: &'a [u8],
    pub body: &'a [u8],
    index: HeaderIndex,
}

impl<'a> FullResponse<'a> {
    /// First header called `name`.
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        let i = self.index.first(name)?;
        self.headers.get(i).map(|h| h.value)
    }
}

/// Parses a response completely enough to relay it (RFC 3261 §16.7): the
/// status line, every header line (bounded by `limits`), the top Via,
/// Call-ID, CSeq and To; the body must match Content-Length when given.
pub fn parse_response<'a>(buf: &'a [u8], limits: &Limits) -> Result<FullResponse<'a>, ParseError> {
    let first_nl = find1(b'\n', buf).ok_or(ParseError::BadStartLine)?;
    let start_line = strip_cr(&buf[..first_nl]);
    if start_line.len() > limits.max_line_length || !start_line.starts_with(b"SIP/2.0 ") {
        return Err(ParseError::BadStartLine);
    }
    let head = parse_status_line(start_line)?;
    let mut headers = Headers::new();
    let mut index = HeaderIndex::EMPTY;
    let body_start = split_headers(buf, first_nl + 1, limits, true, &mut headers, &mut index)?;
    let get = |name| {
        index
            .first(name)
            .and_then(|i| headers.get(i))
            .map(|h| h.value)
    };
    if index.repeated & UNIQUE_MASK != 0 {
        for name in UNIQUE {
            if index.repeated(name) {
                return Err(ParseError::Duplicate(name));
            }
        }
    }
    let via = get(HeaderName::Via).ok_or(ParseError::Missing(HeaderName::Via))?;
    let (top_via, _) = Via::parse_at(via, 0).ok_or(ParseError::Malformed(HeaderName::Via))?;
    let call_id = get(HeaderName::CallId).ok_or(ParseError::Missing(HeaderName::CallId))?;
    let call_id = ascii(call_id)
        .filter(|c| !c.is_empty() && all_graphic(c.as_bytes()))
        .ok_or(ParseError::Malformed(HeaderName::CallId))?;
    let cseq = get(HeaderName::CSeq).ok_or(ParseError::Missing(HeaderName::CSeq))?;
    let cseq = CSeq::parse(cseq).ok_or(ParseError::Malformed(HeaderName::CSeq))?;
    let to = get(HeaderName::To).ok_or(ParseError::Missing(HeaderName::To))?;
    let to_tag = NameAddr::parse(to)
        .ok_or(ParseError::Malformed(HeaderName::To))?
        .tag();
    let mut body = &buf[body_start.min(buf.len())..];
    if let Some(v) = get(HeaderName::ContentLength) {
        let n = parse_content_length(v)?;
        body = body.get(..n).ok_or(ParseError::BodyTruncated)?;
    }
    Ok(FullResponse {
        status: head.status,
        reason: head.reason,
        top_via,
        call_id,
        cseq,
        to_tag,
        to,
        body,
        headers,
        index,
    })
}

/// Headers a request may carry once at most, in the order [`validate`]
/// reports them when several are repeated.
const UNIQUE: [HeaderName; 6] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::Expires,
];

const UNIQUE_MASK: u32 = {
    let mut mask = 0;
    let mut i = 0;
    while i < UNIQUE.len() {
        mask |= 1 << UNIQUE[i] as u32;
        i += 1;
    }
    mask
};

/// Step two: the mandatory headers of RFC 3261 §8.1.1, each present once and
/// well formed. Max-Forwards is checked only when present: many phones (and
/// the corpus) omit it on REGISTER and Kamailio accepts that.
#[inline(always)]
fn validate(raw: RawRequest<'_>) -> Result<Request<'_>, ParseError> {
    if raw.index.repeated & UNIQUE_MASK != 0 {
        for name in UNIQUE {
            if raw.index.repeated(name) {
                return Err(ParseError::Duplicate(name));
            }
        }
    }
    let from = raw.header(HeaderName::From);
    let to = raw.header(HeaderName::To);
    let call_id = raw.header(HeaderName::CallId);
    let cseq = raw.header(HeaderName::CSeq);
    let max_forwards = raw.header(HeaderName::MaxForwards);
    if raw.index.first(HeaderName::Via).is_none() {
        return Err(ParseError::Missing(HeaderName::Via));
    }
    let top_via = raw.top_via.ok_or(ParseError::Malformed(HeaderName::Via))?;
    let from = from.ok_or(ParseError::Missing(HeaderName::From))?;
    // Kept where the parser returned them and read by reference: moving
    // them out (`?`) copied each (over 200 bytes) once more on the way
    // into the request.
    let from = NameAddr::parse_whole(from);
    let from = from
        .as_ref()
        .ok_or(ParseError::Malformed(HeaderName::From))?;
    let to = to.ok_or(ParseError::Missing(HeaderName::To))?;
    let to = NameAddr::parse_whole(to);
    let to = to.as_ref().ok_or(ParseError::Malformed(HeaderName::To))?;
    let call_id = call_id.ok_or(ParseError::Missing(HeaderName::CallId))?;
    if call_id.is_empty() || !all_graphic(call_id) {
        return Err(ParseError::Malformed(HeaderName::CallId));
    }
    let call_id = ascii(call_id).ok_or(ParseError::Malformed(HeaderName::CallId))?;
    let cseq = cseq.ok_or(ParseError::Missing(HeaderName::CSeq))?;
    let cseq = CSeq::parse_for(cseq, raw.method)?;
    let max_forwards = match max_forwards {
        None => None,
        Some(v) => Some(parse_u32(trim(v)).ok_or(ParseError::Malformed(HeaderName::MaxForwards))?),
    };
    Ok(Request {
        method: raw.method,
        uri: raw.uri,
        top_via,
        from: from.0,
        to: to.0,
        call_id,
        cseq,
        max_forwards,
        raw,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod salvage_tests;
