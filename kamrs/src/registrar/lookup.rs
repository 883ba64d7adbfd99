//! `lookup("location")`: where a request for a Request-URI should go,
//! as Kamailio's registrar answers it, without touching the request.
//!
//! The AoR comes from the Request-URI by the rules REGISTER uses on To
//! ([`super::save::aor_of_uri`]: user unescaped, domain kept or dropped by
//! `use_domain`), so a call finds what REGISTER stored. The result is the
//! AoR's current bindings in the order to try them: highest q first, a
//! binding without q after every binding with one (Kamailio keeps an unset
//! q as `Q_UNSPECIFIED`, -1, and usrloc orders by it), the most recently
//! changed first among equals.
//!
//! GRUUs (RFC 5627 §6): a Request-URI with `gr=<instance>` (a public GRUU)
//! yields only that instance's bindings; `sip:tgruu.TOKEN@…;gr` (a
//! temporary GRUU, [`super::gruu`]) only the binding it was issued for.
//!
//! What the caller answers:
//! - `Ok(bindings)` non-empty: forward (or redirect) to them;
//! - `Ok(vec![])`: nobody is registered there now: **480** Temporarily
//!   Unavailable. This includes a genuine GRUU whose binding has expired
//!   or was replaced (a temporary GRUU from a registration whose Call-ID
//!   has since changed): RFC 5627 §6's "valid but no contacts bound";
//! - `Err(e)`: **`e.status()`**, 404 for a Request-URI that names no AoR
//!   or a temporary GRUU this registrar never issued (forged, altered, or
//!   made under another secret), 400 for one that is no SIP/SIPS/tel URI.

use super::gruu::{self, TokenError};
use super::{save, Registrar, Reject};
use crate::sip::{Scheme, Uri};
use crate::usrloc::Binding;

/// Why a Request-URI could not be looked up at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Not a SIP, SIPS or tel URI (nothing REGISTER could have stored).
    #[error("the Request-URI is not a SIP, SIPS or tel URI")]
    BadUri,
    /// No user part, or one no AoR key can be made of; carries why.
    #[error("the Request-URI names no address-of-record: {0}")]
    NoAor(&'static str),
    /// `sip:tgruu.…;gr` whose token this registrar did not issue.
    #[error("the Request-URI is a temporary GRUU this registrar did not issue: {0}")]
    ForgedGruu(TokenError),
    /// A `gr` parameter this registrar cannot resolve: a temporary-GRUU
    /// form that is not ours, or a public GRUU whose instance ID has a
    /// malformed escape.
    #[error("the Request-URI is a GRUU this registrar does not know")]
    UnknownGruu,
}

impl LookupError {
    /// The status to answer the request with.
    pub fn status(&self) -> u16 {
        match self {
            LookupError::BadUri => 400,
            _ => 404,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            LookupError::BadUri => "Bad Request-URI",
            _ => "Not Found",
        }
    }
}

/// What a Request-URI asks for.
enum Target<'a> {
    /// Every binding of the AoR.
    All,
    /// The bindings of this instance ID (a `gr` value, unescaped).
    Instance(std::borrow::Cow<'a, str>),
    /// The binding a temporary GRUU names.
    Temp(gruu::TempGruu),
}

impl Registrar {
    /// Kamailio's `lookup("location")` for `ruri` at `now`: the current
    /// bindings it reaches, in the order to try them (see the module
    /// documentation for the order and what to answer).
    pub fn lookup(&self, ruri: &str, now: u64) -> Result<Vec<Binding>, LookupError> {
        let uri = Uri::parse(ruri.as_bytes()).ok_or(LookupError::BadUri)?;
        let (aor, target) = self.target(&uri)?;
        let Some(mut bindings) = self.table.lookup(&aor, now) else {
            return Ok(Vec::new());
        };
        match &target {
            Target::All => {}
            Target::Instance(id) => bindings.retain(|b| {
                b.instance()
                    .is_some_and(|i| gruu::instance_id(i) == id.as_ref())
            }),
            Target::Temp(t) => bindings.retain(|b| t.names(b)),
        }
        order(&mut bindings);
        Ok(bindings)
    }

    /// The AoR key `uri` is for, and which of its bindings it asks for.
    fn target<'a>(&self, uri: &Uri<'a>) -> Result<(String, Target<'a>), LookupError> {
        let use_domain = self.settings.use_domain;
        let gr = match uri.scheme {
            Scheme::Tel => None,
            _ => uri.params.get("gr"),
        };
        match gr {
            Some(Some(id)) if !id.is_empty() => {
                let id = gruu::unescape_gr(id).ok_or(LookupError::UnknownGruu)?;
                Ok((aor_key(uri, use_domain)?, Target::Instance(id)))
            }
            Some(_) => {
                let token = uri
                    .user
                    .and_then(|u| u.strip_prefix(gruu::TEMP_PREFIX))
                    .ok_or(LookupError::UnknownGruu)?;
                let temp = self.gruu.open(token).map_err(LookupError::ForgedGruu)?;
                Ok((temp.aor.clone(), Target::Temp(temp)))
            }
            None => Ok((aor_key(uri, use_domain)?, Target::All)),
        }
    }
}

fn aor_key(uri: &Uri<'_>, use_domain: bool) -> Result<String, LookupError> {
    save::aor_of_uri(uri, use_domain)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| {
            LookupError::NoAor(match e {
                Reject::UnusableAor(why) => why,
                _ => "no usable user part",
            })
        })
}

/// q as Kamailio's usrloc orders it: an unset q (`Q_UNSPECIFIED`) is -1.
fn rank(q: Option<u16>) -> i32 {
    q.map_or(-1, i32::from)
}

/// Highest q first, unset q last, most recently changed first among
/// equals, and among those the one stored later first.
pub fn order(bindings: &mut [Binding]) {
    bindings.reverse();
    bindings.sort_by(|a, b| {
        rank(b.q)
            .cmp(&rank(a.q))
            .then(b.last_modified.cmp(&a.last_modified))
    });
}

#[cfg(test)]
mod tests;
