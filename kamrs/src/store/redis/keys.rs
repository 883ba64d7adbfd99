//! Key names: one key per binding, `kamrs:loc:{AOR}:RUID`, with the AoR
//! and ruid escaped so that any text round-trips and the hash tag stays
//! one Cluster slot.

use super::*;

/// Bytes escaped in key parts: `%` (the escape itself), the hash-tag braces,
/// the `:` separator, glob metacharacters (so a part can be used in a
/// `MATCH` pattern), and controls and spaces (readable `redis-cli` output).
pub(super) fn must_escape(b: u8) -> bool {
    matches!(
        b,
        b'%' | b'{' | b'}' | b':' | b'*' | b'?' | b'[' | b']' | b'\\'
    ) || b <= b' '
        || b == 0x7f
}

/// Percent-escapes `part` onto `out`. An empty part becomes `%` alone,
/// which no non-empty part produces (every escaped `%` is followed by two
/// hex digits), so the mapping stays one-to-one; it also keeps the hash
/// tag non-empty (Redis hashes the whole key when `{}` is empty).
pub(super) fn escape_into(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('%');
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = part.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if must_escape(b) {
            out.push_str(&part[start..i]);
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
            start = i + 1;
        }
    }
    out.push_str(&part[start..]);
}

/// Reverses [`escape_into`]; None for malformed input.
pub(super) fn unescape(part: &[u8]) -> Option<String> {
    if part == b"%" {
        return Some(String::new());
    }
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        if part[i] == b'%' {
            let hex = part.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(part[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key of binding `ruid` of `aor`: `kamrs:loc:{AOR}:RUID`, both parts
/// escaped so that no AoR can close the hash tag early or collide with
/// another.
pub fn binding_key(aor: &str, ruid: &str) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + aor.len() + ruid.len() + 4);
    key.push_str(KEY_PREFIX);
    key.push('{');
    escape_into(&mut key, aor);
    key.push_str("}:");
    escape_into(&mut key, ruid);
    key
}

/// The AoR of a binding key, or None if `key` is not one of ours.
pub fn aor_of_key(key: &[u8]) -> Option<String> {
    let rest = key
        .strip_prefix(KEY_PREFIX.as_bytes())?
        .strip_prefix(b"{")?;
    let end = rest.iter().position(|&b| b == b'}')?;
    if rest.get(end + 1) != Some(&b':') {
        return None;
    }
    unescape(&rest[..end])
}
