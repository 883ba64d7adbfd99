//! The SIP message layer (docs/design.md §2): framing, zero-copy parsing of what a
//! registrar needs, URI comparison and reply building.
//!
//! Ours rather than a crate's: the crates measured reject or corrupt what
//! real phones send (quoted `+sip.instance` params, IPv6, folding, several
//! contacts per header) or ignore Content-Length on streams.

mod error;
pub mod framing;
mod header;
pub mod lines;
mod message;
mod name_addr;
mod params;
pub mod reply;
pub mod response;
mod scan;
mod uri;
mod via;

pub use error::ParseError;
pub use header::{header_name, Header, HeaderName};
pub use message::{
    parse_content_length, parse_delta_seconds, parse_message, parse_response, salvage_for_reply,
    CSeq, FullResponse, Headers, Limits, Message, Method, RawRequest, Request, Response,
};
pub use name_addr::{NameAddr, NameAddrList};
pub use params::Params;
pub use scan::{is_token as is_token_byte, trim as trim_ws};
pub use uri::{Scheme, Uri};
pub use via::Via;
