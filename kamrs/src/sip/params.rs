//! `;name[=value]` parameters, as found after a Via, after a name-addr or
//! addr-spec in From/To/Contact (header params), and inside URIs.

use super::scan::{ascii, class, is, quoted_end, skip_ws};

/// Where a run of parameters ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamsIn {
    /// Header parameters: white space allowed around `;` and `=`, quoted
    /// values allowed, the run ends at a top-level `,` or the end.
    Header,
    /// URI parameters: no white space or quotes, ends at `?`, `>` or the end.
    Uri,
}

/// Checks the parameter grammar of `s[i..]` (which starts at `;` or at the
/// end) and returns the index where the run ends, or `None` when malformed.
pub(crate) fn scan(s: &[u8], mut i: usize, kind: ParamsIn) -> Option<usize> {
    loop {
        if kind == ParamsIn::Header {
            i = skip_ws(s, i);
        }
        match s.get(i) {
            None => return Some(i),
            Some(b';') => i += 1,
            Some(b',') if kind == ParamsIn::Header => return Some(i),
            Some(b'?' | b'>') if kind == ParamsIn::Uri => return Some(i),
            Some(_) => return None,
        }
        if kind == ParamsIn::Header {
            i = skip_ws(s, i);
        }
        let name_start = i;
        while i < s.len() && is_param_char(s[i], kind) {
            i += 1;
        }
        if i == name_start {
            // A trailing `;` with nothing after it: phones do send it; accept.
            if kind == ParamsIn::Header && skip_ws(s, i) == s.len() {
                return Some(s.len());
            }
            return None;
        }
        let mut j = if kind == ParamsIn::Header {
            skip_ws(s, i)
        } else {
            i
        };
        if s.get(j) == Some(&b'=') {
            j += 1;
            if kind == ParamsIn::Header {
                j = skip_ws(s, j);
            }
            i = scan_value(s, j, kind)?;
        }
    }
}

fn scan_value(s: &[u8], i: usize, kind: ParamsIn) -> Option<usize> {
    match s.get(i) {
        Some(b'"') if kind == ParamsIn::Header => quoted_end(s, i),
        Some(b'[') => {
            // IPv6 reference, e.g. received=[2001:db8::1] or maddr=[…].
            let close = memchr::memchr(b']', &s[i..])?;
            Some(i + close + 1)
        }
        _ => {
            let mut j = i;
            while j < s.len() && is_param_char(s[j], kind) {
                j += 1;
            }
            // An empty value (`expires=`) is tolerated; its meaning is the
            // consumer's business.
            Some(j)
        }
    }
}

#[inline(always)]
fn is_param_char(b: u8, kind: ParamsIn) -> bool {
    match kind {
        ParamsIn::Header => is(b, class::PARAM_HDR),
        ParamsIn::Uri => is(b, class::PARAM_URI),
    }
}

/// A run of parameters already checked by [`scan`]. Iterating yields
/// `(name, value)` with quotes stripped from quoted values (escapes left as
/// they are).
#[derive(Clone, Copy, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
    kind_is_uri: bool,
}

impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(*self).finish()
    }
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a [u8], kind: ParamsIn) -> Self {
        Params {
            raw,
            kind_is_uri: kind == ParamsIn::Uri,
        }
    }

    /// The parameters as received, starting at the first `;`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.into_iter().next().is_none()
    }

    /// First parameter named `name` (case-insensitive): `Some(None)` when it
    /// has no value, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        let mut it = self.into_iter();
        while let Some((n, v)) = it.next_raw() {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                return match v.map(ascii) {
                    None => Some(None),
                    Some(Some(v)) => Some(Some(v)),
                    // Not UTF-8: treated as absent, as iteration does.
                    Some(None) => continue,
                };
            }
        }
        None
    }

    /// Several parameters in one pass: `names[i]`'s first occurrence goes
    /// to slot `i` (as [`get`](Self::get) would return it). The registrar
    /// reads five parameters of every Contact; one pass instead of five
    /// matters when a 50-byte `+sip.instance` sits in front of them.
    pub fn lookup<const N: usize>(&self, names: [&str; N]) -> [Option<Option<&'a str>>; N] {
        let mut found = [None; N];
        let mut left = N;
        let mut it = self.into_iter();
        while left > 0 {
            let Some((n, v)) = it.next_raw() else {
                break;
            };
            let Some(slot) = names
                .iter()
                .position(|want| n.eq_ignore_ascii_case(want.as_bytes()))
            else {
                continue;
            };
            if found[slot].is_some() {
                continue;
            }
            match v.map(ascii) {
                None => found[slot] = Some(None),
                Some(Some(v)) => found[slot] = Some(Some(v)),
                Some(None) => continue,
            }
            left -= 1;
        }
        found
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = (&'a str, Option<&'a str>);
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        ParamIter {
            s: self.raw,
            i: 0,
            kind: if self.kind_is_uri {
                ParamsIn::Uri
            } else {
                ParamsIn::Header
            },
        }
    }
}

pub struct ParamIter<'a> {
    s: &'a [u8],
    i: usize,
    kind: ParamsIn,
}

impl<'a> ParamIter<'a> {
    /// The next `(name, value)` as bytes, quotes stripped; no UTF-8 check,
    /// so looking one parameter up costs no conversion of the others.
    fn next_raw(&mut self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let s = self.s;
        loop {
            let mut i = skip_ws(s, self.i);
            if s.get(i) != Some(&b';') {
                self.i = s.len();
                return None;
            }
            i = skip_ws(s, i + 1);
            let name_start = i;
            while i < s.len() && is_param_char(s[i], self.kind) {
                i += 1;
            }
            let name = &s[name_start..i];
            let mut j = skip_ws(s, i);
            let mut value = None;
            if s.get(j) == Some(&b'=') {
                j = skip_ws(s, j + 1);
                let end = scan_value(s, j, self.kind).unwrap_or(s.len());
                let v = &s[j..end];
                value = Some(if v.len() >= 2 && v[0] == b'"' {
                    &v[1..v.len() - 1]
                } else {
                    v
                });
                j = end;
            }
            self.i = j;
            if !name.is_empty() {
                return Some((name, value));
            }
        }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (name, value) = self.next_raw()?;
            match (ascii(name), value.map(ascii)) {
                (Some(n), None) => return Some((n, None)),
                (Some(n), Some(Some(v))) => return Some((n, Some(v))),
                _ => continue,
            }
        }
    }
}
