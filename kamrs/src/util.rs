//! Small helpers more than one subsystem needs, kept in one place so the
//! copies cannot drift apart.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, ignoring poisoning: one thread's panic must not take every
/// later caller down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, ignoring poisoning (see [`lock`]).
pub fn lock_read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, ignoring poisoning (see [`lock`]).
pub fn lock_write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// `bytes` as lower-case hex, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Lower-case hex digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` to `out` as lower-case hex, two digits a byte.
pub fn push_hex(out: &mut impl Extend<u8>, bytes: &[u8]) {
    out.extend(bytes.iter().flat_map(|b| {
        [
            HEX_DIGITS[usize::from(b >> 4)],
            HEX_DIGITS[usize::from(b & 15)],
        ]
    }));
}

/// Appends `n` to `out` as lower-case hex without leading zeros (`0` for 0),
/// as `{:x}` writes it.
pub fn push_hex_u64(out: &mut impl Extend<u8>, n: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = HEX_DIGITS[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().copied());
}

#[cfg(test)]
mod tests;

/// Tokens shorter than this are refused: guessable over the network.
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads a bearer token from `path` (the config key `key` names it): one
/// line of at least [`MIN_TOKEN_LEN`] characters without spaces. Warns
/// when other users can read the file.
pub fn read_token(path: &Path, key: &str) -> Result<Arc<str>, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {key} {shown}: {e}"))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{key} {shown} must hold one token of at least {MIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 32 > {shown}`)"
        ));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!("{key} {shown} is readable by other users; `chmod 600 {shown}`");
        }
    }
    Ok(Arc::from(token))
}
