//! `;name[=value]` parameters, as found after a Via, after a name-addr or
//! addr-spec in From/To/Contact (header params), and inside URIs.

use super::scan::{ascii, class, eq_ignore_case, quoted_end, skip_ws, skip_ws_peek, span};

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
/// end) and returns the parameters and the index where the run ends, or
/// `None` when malformed. The spans of the first parameters are recorded on
/// the way, so that looking them up later does not parse them again.
// Inlined so the `Params` is built where the caller keeps it rather than
// returned and copied (memcpy was 5 % of a REGISTER).
#[inline(always)]
pub(crate) fn scan(s: &[u8], i: usize, kind: ParamsIn) -> Option<(Params<'_>, usize)> {
    let base = i;
    let mut i = i;
    let mut spans = [[0u8; 4]; SPANS];
    let mut recorded = 0usize;
    // Where parsing resumes for the parameters not recorded.
    let mut rest = None;
    // Names of the parameters not recorded, as a [`name_bits`] set.
    let mut unrecorded = 0u32;
    let done = |end: usize, spans, recorded: usize, rest: Option<usize>, unrecorded| {
        let params = Params {
            raw: s.get(base..end).unwrap_or_default(),
            kind_is_uri: kind == ParamsIn::Uri,
            spans,
            recorded: recorded as u8,
            rest: rest.map(|r: usize| r - base),
            unrecorded,
        };
        Some((params, end))
    };
    // White space, where allowed, then the byte there: one load serves
    // both the skip and the check that follows.
    let peek = |i: usize| {
        if kind == ParamsIn::Header {
            skip_ws_peek(s, i)
        } else {
            (i, s.get(i).copied())
        }
    };
    loop {
        let (at, c) = peek(i);
        i = at;
        let param_start = i;
        match c {
            None => return done(i, spans, recorded, rest, unrecorded),
            Some(b';') => i += 1,
            Some(b',') if kind == ParamsIn::Header => {
                return done(i, spans, recorded, rest, unrecorded)
            }
            Some(b'?' | b'>') if kind == ParamsIn::Uri => {
                return done(i, spans, recorded, rest, unrecorded)
            }
            Some(_) => return None,
        }
        if kind == ParamsIn::Header {
            i = skip_ws(s, i);
        }
        let name_start = i;
        i = span(s, i, param_class(kind));
        if i == name_start {
            // A trailing `;` with nothing after it: phones do send it; accept.
            if kind == ParamsIn::Header && skip_ws(s, i) == s.len() {
                return done(s.len(), spans, recorded, rest, unrecorded);
            }
            return None;
        }
        let name_end = i;
        let (j, c) = peek(i);
        // Value span without quotes; (0, 0) when there is no value.
        let mut value = (0, 0);
        if c == Some(b'=') {
            let (j, c) = peek(j + 1);
            i = scan_value(s, j, kind)?;
            value = if c == Some(b'"') {
                (j + 1 - base, i - 1 - base)
            } else {
                (j - base, i - base)
            };
        }
        if rest.is_none() {
            // Offsets are kept in a byte each; value starts are never 0
            // (a `;` and a name come first), so 0 can mean "no value".
            // The name ends before the value starts and each span ends
            // after it starts, so the larger end bounds all four offsets.
            let (n0, n1) = (name_start - base, name_end - base);
            let (v0, v1) = value;
            match spans.get_mut(recorded) {
                Some(slot) if n1.max(v1) <= usize::from(u8::MAX) => {
                    *slot = [n0 as u8, n1 as u8, v0 as u8, v1 as u8];
                    recorded += 1;
                }
                _ => {
                    rest = Some(param_start);
                    unrecorded |= name_bit(&s[name_start..name_end]);
                }
            }
        } else {
            unrecorded |= name_bit(&s[name_start..name_end]);
        }
    }
}

/// A parameter name as one bit of a 32-bit set, the same for names equal
/// ignoring ASCII case (`a.eq_ignore_ascii_case(b)` implies equal length
/// and equal `first | 0x20`). [`Params::lookup`] uses the set of the names
/// not recorded to skip parsing them again for a name that is absent.
#[inline(always)]
fn name_bit(name: &[u8]) -> u32 {
    let first = name.first().map_or(0, |&b| b | 0x20);
    1 << ((name.len() * 7 + usize::from(first)) & 31)
}

/// How many parameters [`scan`] records. Contacts carry four or five that
/// matter (expires, q, +sip.instance, reg-id, methods) and rarely more.
const SPANS: usize = 6;

#[inline(always)]
fn scan_value(s: &[u8], i: usize, kind: ParamsIn) -> Option<usize> {
    match s.get(i) {
        Some(b'"') if kind == ParamsIn::Header => quoted_end(s, i),
        Some(b'[') => {
            // IPv6 reference, e.g. received=[2001:db8::1] or maddr=[…].
            let close = memchr::memchr(b']', &s[i..])?;
            Some(i + close + 1)
        }
        _ => {
            let j = span(s, i, param_class(kind));
            // An empty value (`expires=`) is tolerated; its meaning is the
            // consumer's business.
            Some(j)
        }
    }
}

#[inline(always)]
fn param_class(kind: ParamsIn) -> u8 {
    match kind {
        ParamsIn::Header => class::PARAM_HDR,
        ParamsIn::Uri => class::PARAM_URI,
    }
}

/// A run of parameters already checked by [`scan`]. Iterating yields
/// `(name, value)` with quotes stripped from quoted values (escapes left as
/// they are).
#[derive(Clone, Copy, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
    kind_is_uri: bool,
    /// `[name start, name end, value start, value end]` in `raw` of the
    /// first `recorded` parameters (value start 0: no value), as [`scan`]
    /// found them.
    spans: [[u8; 4]; SPANS],
    recorded: u8,
    /// Where the parameters that were not recorded start in `raw`, if any
    /// were not (more than [`SPANS`], or beyond the first 255 bytes).
    rest: Option<usize>,
    /// [`name_bit`] of every parameter from `rest` on (in what would be
    /// padding: `Params` stays 64 bytes).
    unrecorded: u32,
}

impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(*self).finish()
    }
}

impl<'a> Params<'a> {
    fn kind(&self) -> ParamsIn {
        if self.kind_is_uri {
            ParamsIn::Uri
        } else {
            ParamsIn::Header
        }
    }

    /// The recorded parameters as `(name, value)` bytes, quotes stripped.
    fn recorded(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + '_ {
        let raw = self.raw;
        let part = move |a: u8, b: u8| raw.get(usize::from(a)..usize::from(b)).unwrap_or_default();
        self.spans
            .iter()
            .take(usize::from(self.recorded))
            .map(move |&[n0, n1, v0, v1]| (part(n0, n1), (v0 != 0).then(|| part(v0, v1))))
    }

    /// The parameters [`scan`] did not record, parsed now.
    fn unrecorded(&self) -> Option<ParamIter<'a>> {
        let i = self.rest?;
        Some(ParamIter {
            s: self.raw,
            i,
            kind: self.kind(),
        })
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
        let [found] = self.lookup([name]);
        found
    }

    /// Several parameters in one pass: `names[i]`'s first occurrence goes
    /// to slot `i` (as [`get`](Self::get) would return it). The registrar
    /// reads five parameters of every Contact; one pass over the spans
    /// [`scan`] recorded instead of five parses.
    pub fn lookup<const N: usize>(&self, names: [&str; N]) -> [Option<Option<&'a str>>; N] {
        let mut found = [None; N];
        let mut left = N;
        for (n, v) in self.recorded() {
            if left == 0 {
                break;
            }
            left -= usize::from(offer(&names, &mut found, n, v));
        }
        if left == 0 {
            return found;
        }
        if let Some(mut it) = self.unrecorded() {
            // Parse the parameters not recorded only when one of the names
            // not found yet may be among them.
            let maybe = names
                .iter()
                .zip(&found)
                .any(|(n, f)| f.is_none() && self.unrecorded & name_bit(n.as_bytes()) != 0);
            while maybe && left > 0 {
                let Some((n, v)) = it.next_raw() else {
                    break;
                };
                left -= usize::from(offer(&names, &mut found, n, v));
            }
        }
        found
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// One parameter for [`Params::lookup`]: fills its slot if it is wanted and
/// the first of its name; returns whether it did.
#[inline(always)]
fn offer<'a, const N: usize>(
    names: &[&str; N],
    found: &mut [Option<Option<&'a str>>; N],
    n: &[u8],
    v: Option<&'a [u8]>,
) -> bool {
    let Some(slot) = names
        .iter()
        .position(|want| eq_ignore_case(n, want.as_bytes()))
    else {
        return false;
    };
    let Some(slot) = found.get_mut(slot) else {
        return false;
    };
    if slot.is_some() {
        return false;
    }
    match v.map(ascii) {
        None => *slot = Some(None),
        Some(Some(v)) => *slot = Some(Some(v)),
        // Not UTF-8: treated as absent, as iteration does.
        Some(None) => return false,
    }
    true
}

impl<'a> IntoIterator for Params<'a> {
    type Item = (&'a str, Option<&'a str>);
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        ParamIter {
            s: self.raw,
            i: 0,
            kind: self.kind(),
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
            i = span(s, i, param_class(self.kind));
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

#[cfg(test)]
mod tests;
