//! Global bounds of the location table (README, Security).
//!
//! Without them, 500,000 new AoRs in 4 s were all accepted, and with every
//! string at its maximum a binding cost 18.6 KB: a table-filling attack
//! could take all of a machine's memory. Two limits now apply to every
//! edit that *grows* the table, whoever makes it (REGISTER and `ul.add`
//! both ask [`LocationTable::admit`](super::LocationTable::admit) before
//! they add): the number of bindings, and an estimate of their bytes
//! ([`Binding::footprint`] plus each AoR's key and record). An edit that
//! does not add a binding (a refresh, a removal) is refused only if it
//! would take the bytes 1/16 past their bound, so phones already
//! registered keep working at the limit. Bindings loaded
//! from the store at start and changes made by other nodes are counted but
//! not refused: they were acknowledged already, and dropping them would
//! lose registrations.
//!
//! The check and the change happen under the AoR's lock, not under one
//! lock for the whole table; so that REGISTERs for different AoRs handled
//! at the same instant cannot pass the check together, what `admit` lets
//! through is reserved (under a small lock taken only by edits that add)
//! until the edit has been counted. The limits therefore hold exactly.

use std::fmt;

use super::Binding;

/// The limits, from `max_bindings` and `max_table_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    pub max_bindings: u64,
    pub max_bytes: u64,
}

impl Default for TableLimits {
    /// Unbounded: for tools and tests; the daemon sets the configured ones.
    fn default() -> Self {
        TableLimits {
            max_bindings: u64::MAX,
            max_bytes: u64::MAX,
        }
    }
}

/// What an edit would add to the table: bindings and estimated bytes
/// (negative when it removes more than it adds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Growth {
    pub bindings: i64,
    pub bytes: i64,
}

impl Growth {
    /// One new binding.
    pub fn add(b: &Binding) -> Growth {
        Growth {
            bindings: 1,
            bytes: b.footprint() as i64,
        }
    }

    /// `new` in place of `old`.
    pub fn replace(old: &Binding, new: &Binding) -> Growth {
        Growth {
            bindings: 0,
            bytes: new.footprint() as i64 - old.footprint() as i64,
        }
    }
}

/// Which limit refused an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bindings(u64),
    Bytes(u64),
}

/// An edit refused because the table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull {
    pub limit: Limit,
    /// Seconds until the next binding expires (1 to 3600): when room is
    /// likely to appear, for `Retry-After`.
    pub retry_after: u64,
}

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Bindings(n) => write!(
                f,
                "the location table is full: it holds max_bindings = {n} bindings"
            )?,
            Limit::Bytes(n) => write!(
                f,
                "the location table is full: its bindings take max_table_bytes = {n} bytes"
            )?,
        }
        write!(
            f,
            "; existing bindings can still be refreshed or removed. Raise the limit in kamrs's config if this is legitimate load, or look for an AoR-filling attack (`kamrsctl ul.dump --brief`)"
        )
    }
}

/// Whether an edit growing the table by `growth` may go ahead, given
/// what the table holds (`bindings`, `bytes`) and its `limits`.
pub fn check(bindings: u64, bytes: u64, growth: Growth, limits: TableLimits) -> Option<Limit> {
    if growth.bindings > 0 && bindings.saturating_add(growth.bindings as u64) > limits.max_bindings
    {
        return Some(Limit::Bindings(limits.max_bindings));
    }
    // An edit that adds no binding (a refresh whose Contact, Path or
    // Call-ID grew by a few bytes after a NAT rebinding) may go up to
    // 1/16 over the byte bound: a registered phone must not lose its
    // binding because the table is full, and 1/16 is all that growing the
    // bindings already held can add.
    let max_bytes = if growth.bindings <= 0 {
        limits.max_bytes.saturating_add(limits.max_bytes / 16)
    } else {
        limits.max_bytes
    };
    if growth.bytes > 0 && bytes.saturating_add(growth.bytes as u64) > max_bytes {
        return Some(Limit::Bytes(limits.max_bytes));
    }
    None
}

#[cfg(test)]
mod tests;
