//! `sips:` in a REGISTER (RFC 5630, which updates RFC 3261 §26).
//!
//! A `sips:` URI promises TLS on every hop, so a registration that uses
//! one must have reached us over TLS (or WSS); and RFC 5630 does not let
//! `sip:` and `sips:` mix within one registration:
//!
//! - a `sips:` AoR (To), Request-URI or Contact over a hop that is not
//!   TLS/WSS: refused, since the phone asked for a protection it did not
//!   get (§3.1.3, §26.2.2 as updated);
//! - a `sips:` Contact needs a `sips:` Request-URI and `sips:` Path URIs
//!   (§5.2: "MUST reject the REGISTER with a 400");
//! - under a `sips:` AoR every Contact must be `sips:` (Appendix A,
//!   replacing RFC 3261 §10.2.1: the UA "MUST also include only SIPS
//!   URIs"); a `sip:` Contact would silently drop the protection the AoR
//!   stands for.
//!
//! Each refusal is a 400 whose reason phrase names the rule. AoRs that
//! differ only by `sip:`/`sips:` are the same AoR (§5.2), which
//! [`super::save::aor`] already does by ignoring the scheme.

use crate::sip::{HeaderName, NameAddrList, Request, Scheme, Uri};

use super::error::Reject;

const INSECURE: &str = "SIPS Requires TLS";
const MIXED_PATH: &str = "SIPS Contact Requires SIPS Request-URI And Path";
const MIXED_CONTACT: &str = "SIPS AoR Requires SIPS Contacts";

/// Checks `req` (from a hop that is TLS or WSS when `secure`).
pub fn check(req: &Request<'_>, secure: bool) -> Result<(), Reject> {
    let is_sips = |raw: &str| Uri::parse(raw.as_bytes()).is_some_and(|u| u.scheme == Scheme::Sips);
    let aor_sips = req.to.uri.scheme == Scheme::Sips;
    let ruri_sips = is_sips(req.uri);
    let mut any_sips_contact = false;
    let mut any_sip_contact = false;
    // A Contact that does not parse is refused later, by save, with its
    // own reason; here it simply does not count.
    for contact in req.contacts().flatten() {
        if contact.uri.scheme == Scheme::Sips {
            any_sips_contact = true;
        } else {
            any_sip_contact = true;
        }
    }
    if (aor_sips || ruri_sips || any_sips_contact) && !secure {
        return Err(Reject::Sips(INSECURE));
    }
    if any_sips_contact {
        let path_sips = req
            .raw
            .headers_named(HeaderName::Path)
            .flat_map(NameAddrList::new)
            .all(|p| p.is_ok_and(|p| p.uri.scheme == Scheme::Sips));
        if !ruri_sips || !path_sips {
            return Err(Reject::Sips(MIXED_PATH));
        }
    }
    if aor_sips && any_sip_contact {
        return Err(Reject::Sips(MIXED_CONTACT));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
