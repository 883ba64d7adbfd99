//! `name-addr` / `addr-spec` with header parameters: the shape of From, To,
//! Contact and Path values (RFC 3261 §20.10, §25.1).
//!
//! The one rule that trips most parsers: in `<sip:a@b;x=1>;y=2` the `x` is a
//! URI parameter and `y` a header parameter, but in the bracket-less
//! `sip:a@b;y=2` every parameter belongs to the header, not the URI.

use super::params::{self, Params, ParamsIn};
use super::scan::{find1, is_token, is_ws, quoted_end, skip_ws, trim};
use super::uri::Uri;

#[derive(Debug, Clone, Copy)]
pub struct NameAddr<'a> {
    /// Display name as received (quotes kept), if any. Bytes, because old
    /// phones send Latin-1 here and we must still answer them.
    pub display: Option<&'a [u8]>,
    pub uri: Uri<'a>,
    /// Header parameters (`tag`, `expires`, `q`, `+sip.instance`, …).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one whole value (From, To): nothing but white space may follow.
    #[inline]
    pub fn parse(s: &'a [u8]) -> Option<NameAddr<'a>> {
        Self::parse_impl(s, 0, true).map(|(na, _)| na)
    }

    /// [`NameAddr::parse`] returning the value as the parser built it, with
    /// its end: a caller that keeps the result in place and reads it by
    /// reference saves a copy.
    #[inline]
    pub(crate) fn parse_whole(s: &'a [u8]) -> Option<(NameAddr<'a>, usize)> {
        Self::parse_impl(s, 0, true)
    }

    /// Parses one element of a list at `s[i..]`; returns it and the index
    /// where it ends (a top-level `,` or the end).
    #[inline]
    pub fn parse_at(s: &'a [u8], i: usize) -> Option<(NameAddr<'a>, usize)> {
        Self::parse_impl(s, i, false)
    }

    /// [`NameAddr::parse_at`]; with `whole`, nothing but white space may
    /// follow (checked before the result is built, not on a copy of it).
    ///
    /// One shared copy for From, To and every Contact. The whole parse runs
    /// once per message with few loops, so its speed is bound by fetching
    /// and decoding code, not by the instruction count: each inlined copy
    /// of this (about 9 KB) cost more than the calls it saved (wall time
    /// 5 % lower out of line, with 1 % more instructions). The URI is
    /// returned by value rather than parsed into a placeholder, which saves
    /// copying a constant placeholder (152 bytes) per name-addr.
    #[inline(never)]
    fn parse_impl(s: &'a [u8], i: usize, whole: bool) -> Option<(NameAddr<'a>, usize)> {
        let i = skip_ws(s, i);
        // The display name, the URI's bytes and where the parameters start.
        let (display, uri, params_start) = match s.get(i)? {
            b'"' => {
                let end = quoted_end(s, i)?;
                let lt = skip_ws(s, end);
                if s.get(lt) != Some(&b'<') {
                    return None;
                }
                let (uri, after) = bracketed(s, lt)?;
                (Some(&s[i..end]), uri, after)
            }
            b'<' => {
                let (uri, after) = bracketed(s, i)?;
                (None, uri, after)
            }
            _ => {
                // Either `token *(LWS token) <uri>` or a bare addr-spec.
                let mut j = i;
                while j < s.len() && (is_token(s[j]) || is_ws(s[j]) || s[j] >= 0x80) {
                    j += 1;
                }
                if s.get(j) == Some(&b'<') {
                    let (uri, after) = bracketed(s, j)?;
                    (Some(trim(&s[i..j])).filter(|d| !d.is_empty()), uri, after)
                } else {
                    let mut j = i;
                    while j < s.len() && !matches!(s[j], b';' | b',') && !is_ws(s[j]) {
                        j += 1;
                    }
                    (None, &s[i..j], j)
                }
            }
        };
        // Read through a reference, not moved out with `?`: the move made a
        // second copy of the URI (152 bytes) before the one into the result.
        let parsed = Uri::parse(uri);
        let uri = parsed.as_ref()?;
        let (params, end) = params::scan(s, params_start, ParamsIn::Header)?;
        if whole && skip_ws(s, end) != s.len() {
            return None;
        }
        Some((
            NameAddr {
                display,
                uri: *uri,
                params,
            },
            end,
        ))
    }

    /// The `tag` header parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

/// `s[lt]` is `<`: the URI up to the matching `>` (white space trimmed) and
/// the index just past the `>`.
#[inline(always)]
fn bracketed(s: &[u8], lt: usize) -> Option<(&[u8], usize)> {
    let close = find1(b'>', &s[lt..])? + lt;
    Some((trim(&s[lt + 1..close]), close + 1))
}

/// Splits a comma-separated list of name-addrs (Contact, Path) and parses
/// each. Yields `Err(())` once for a malformed element, then stops.
pub struct NameAddrList<'a> {
    s: &'a [u8],
    i: usize,
    done: bool,
}

impl<'a> NameAddrList<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        NameAddrList {
            s,
            i: 0,
            done: false,
        }
    }
}

impl<'a> NameAddrList<'a> {
    /// [`Iterator::next`] with `error` for a malformed element: a caller
    /// that reports its own error type gets the result built where it
    /// returns it, instead of a copy through `map_err` (a `NameAddr` is
    /// over 200 bytes).
    #[inline(always)]
    pub(crate) fn next_or<E>(&mut self, error: E) -> Option<Result<NameAddr<'a>, E>> {
        if self.done {
            return None;
        }
        let i = skip_ws(self.s, self.i);
        if i >= self.s.len() {
            self.done = true;
            return None;
        }
        match NameAddr::parse_at(self.s, i) {
            Some((na, end)) => {
                match self.s.get(end) {
                    Some(b',') => self.i = end + 1,
                    _ => self.done = true,
                }
                Some(Ok(na))
            }
            None => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl<'a> Iterator for NameAddrList<'a> {
    type Item = Result<NameAddr<'a>, ()>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_or(())
    }
}

#[cfg(test)]
mod tests;
