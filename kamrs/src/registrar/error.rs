//! Why a REGISTER was refused: Kamailio's registrar error table, with the
//! status codes RFC 3261 §10.3 asks for.

use crate::sip::ParseError;

/// A refused REGISTER. Each maps to a status, a reason phrase and the same
/// text in `P-Registrar-Error` (Kamailio's header for it), plus the header
/// the RFC requires for some (Min-Expires, Retry-After, Unsupported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// A header the registrar needs is malformed (Expires, Contact, Path).
    Parse(ParseError),
    /// The To URI gives no usable address-of-record.
    InvalidAor,
    /// The To URI's user makes an AoR that could not be managed (an
    /// escaped `@`, a control character); carries the reason phrase.
    UnusableAor(&'static str),
    /// `Contact: *` beside other contacts.
    StarWithContacts,
    /// `Contact: *` without `Expires: 0`.
    StarWithExpires,
    /// Same Call-ID as a binding, lower CSeq (RFC 3261 §10.3 step 7).
    InvalidCSeq,
    ContactTooLong,
    InvalidExpires,
    InvalidQ,
    InvalidRegId,
    /// 400: `Require: outbound` (RFC 5626) but no contact names its flow
    /// with `+sip.instance` and `reg-id`.
    OutboundWithoutFlow,
    /// 423 Interval Too Brief; carries `min_expires`.
    IntervalTooBrief(u32),
    /// 503; carries the Retry-After seconds.
    TooManyContacts(u64),
    /// 420 Bad Extension; carries the option tags we do not support.
    Unsupported(String),
    /// 500: the location store could not make the change durable.
    StoreUnavailable,
    /// 500: the 200 would not fit the UDP reply budget (the datagram
    /// limit, or the amplification bound for unauthenticated requests);
    /// nothing was changed. Over TCP the same request is answered in full.
    ReplyTooLarge,
    /// 503: the location table holds `max_bindings` bindings or
    /// `max_table_bytes` bytes; carries the Retry-After seconds. Nothing
    /// was changed; refreshes and removals still work.
    TableFull(u64),
    /// 400: the Call-ID is longer than `callid_max_size`.
    CallIdTooLong,
    /// 401 with these `WWW-Authenticate` values.
    Challenge(Vec<String>),
    /// 403: authenticated but not allowed (or too many wrong answers).
    Forbidden(&'static str),
    /// 400: unusable credentials.
    BadCredentials(&'static str),
    /// 400: `sips:` used where RFC 5630 does not allow it (over a hop
    /// that is not TLS, or mixed with `sip:`); carries the reason phrase.
    Sips(&'static str),
}

impl Reject {
    pub fn status(&self) -> u16 {
        match self {
            Reject::Parse(e) => e.status(),
            Reject::IntervalTooBrief(_) => 423,
            Reject::TooManyContacts(_) => 503,
            Reject::Unsupported(_) => 420,
            Reject::StoreUnavailable | Reject::ReplyTooLarge => 500,
            Reject::TableFull(_) => 503,
            Reject::Challenge(_) => 401,
            Reject::Forbidden(_) => 403,
            _ => 400,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Parse(e) => e.reason(),
            Reject::InvalidAor => "Invalid Address Of Record In To",
            Reject::StarWithContacts => "Contact * Must Be The Only Contact",
            Reject::StarWithExpires => "Contact * Requires Expires 0",
            Reject::InvalidCSeq => "Invalid CSeq Number",
            Reject::ContactTooLong => "Contact URI Too Long",
            Reject::InvalidExpires => "Invalid Expires Param In Contact",
            Reject::InvalidQ => "Invalid q Param In Contact",
            Reject::InvalidRegId => "Invalid reg-id Param In Contact",
            Reject::OutboundWithoutFlow => "Outbound Requires +sip.instance And reg-id",
            Reject::IntervalTooBrief(_) => "Interval Too Brief",
            Reject::TooManyContacts(_) => "Too Many Registered Contacts",
            Reject::Unsupported(_) => "Bad Extension",
            Reject::StoreUnavailable => "Location Store Unavailable",
            Reject::ReplyTooLarge => "Reply Too Large For UDP, Use TCP",
            Reject::TableFull(_) => "Location Table Full",
            Reject::CallIdTooLong => "Call-ID Too Long",
            Reject::Challenge(_) => "Unauthorized",
            Reject::Forbidden(r)
            | Reject::BadCredentials(r)
            | Reject::UnusableAor(r)
            | Reject::Sips(r) => r,
        }
    }
}

impl From<ParseError> for Reject {
    fn from(e: ParseError) -> Self {
        Reject::Parse(e)
    }
}
