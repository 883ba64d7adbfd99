//! The AoR names a paged dump (`ul.dump_page`) walks through.
//!
//! Finding the `limit` smallest names after a cursor takes a pass over the
//! whole table, and a pass over a big table is mostly cache misses (each
//! name lives in its own allocation): 20 pages of 5,000 over 100,000 AoRs
//! cost 0.6 s of CPU that way. So the first page of a dump (cursor `""`)
//! takes every name once, sorts them, and keeps that list; the pages after
//! it are a binary search and a slice of it.
//!
//! Why this keeps paging's promise (an AoR present from a dump's first page
//! to its last is returned exactly once): a dump that starts with `""`
//! replaces the list with a newer one, and a newer list still holds every
//! AoR present since any earlier dump began. Bindings are read from the
//! table when a page is built, never from the list, so a page is as fresh
//! as before; an AoR removed since the list was taken is skipped there.
//!
//! The list is dropped when a dump's last page has been served, or, when a
//! client gives up half way, replaced by the next dump or dropped once it
//! is older than [`MAX_AGE`] (checked on the next `ul.dump_page`). A cursor
//! that the list cannot answer (none kept, too old) falls back to the pass
//! over the table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::usrloc::LocationTable;

/// Longest a list is used after it was taken. A dump of a million AoRs
/// through `kamrsctl` takes a few seconds; this leaves a slow reader a wide
/// margin, and bounds how stale a list a client that resumes from an old
/// cursor (without starting over at `""`) can be served from.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// The sorted names of the table when the latest dump began.
struct Names {
    sorted: Arc<[Arc<str>]>,
    taken: Instant,
}

/// The sorted names starting with `prefix` when the latest prefix search
/// (`ul.dump_prefix`) began.
struct Found {
    prefix: Box<str>,
    names: Names,
}

/// The lists kept between the pages of a dump and of a prefix search (at
/// most one of each: a web view's searches never take the list a
/// `kamrsctl ul.dump` is walking).
#[derive(Default)]
pub struct DumpNames {
    latest: Mutex<Option<Names>>,
    search: Mutex<Option<Found>>,
}

impl DumpNames {
    /// The names of one page: up to `limit` AoRs whose names sort
    /// (bytewise) after `cursor`, in order, and whether more may follow.
    pub fn page(&self, table: &LocationTable, cursor: &str, limit: usize) -> (Vec<Arc<str>>, bool) {
        self.page_at(table, cursor, limit, Instant::now())
    }

    fn page_at(
        &self,
        table: &LocationTable,
        cursor: &str,
        limit: usize,
        now: Instant,
    ) -> (Vec<Arc<str>>, bool) {
        let sorted = if cursor.is_empty() {
            let mut names = table.aors();
            names.sort_unstable();
            let sorted: Arc<[Arc<str>]> = names.into();
            *self.lock() = Some(Names {
                sorted: Arc::clone(&sorted),
                taken: now,
            });
            sorted
        } else {
            let mut latest = self.lock();
            match latest.as_ref() {
                Some(n) if now.saturating_duration_since(n.taken) <= MAX_AGE => {
                    Arc::clone(&n.sorted)
                }
                _ => {
                    *latest = None;
                    drop(latest);
                    let names = table.aors_after(cursor, limit);
                    // A full page may have more after it; a short one is
                    // the last.
                    let more = names.len() == limit;
                    return (names, more);
                }
            }
        };
        let from = sorted.partition_point(|n| &**n <= cursor);
        let to = from.saturating_add(limit).min(sorted.len());
        let names = sorted[from..to].to_vec();
        let more = to < sorted.len();
        if !more {
            // The dump is over: let go of the names (and of the AoRs removed
            // meanwhile that only the list still holds), unless another dump
            // has put a newer list in place already.
            let mut latest = self.lock();
            if latest
                .as_ref()
                .is_some_and(|n| Arc::ptr_eq(&n.sorted, &sorted))
            {
                *latest = None;
            }
        }
        (names, more)
    }

    /// The names of one page of a prefix search: up to `limit` AoRs whose
    /// names start with `prefix` and sort after `cursor`, in order, and
    /// whether more may follow.
    ///
    /// Like a dump, but the first page (cursor `""`) takes only the names
    /// with the prefix, in one pass over the table, and sorts those: a
    /// search costs a pass and a sort of its matches, never a sort of a
    /// million names. A later page whose list is gone (another search
    /// began, or [`MAX_AGE`] passed) takes a new one the same way: a newer
    /// list still holds every AoR present since the search began, so the
    /// promise of paging holds.
    pub fn prefix_page(
        &self,
        table: &LocationTable,
        prefix: &str,
        cursor: &str,
        limit: usize,
    ) -> (Vec<Arc<str>>, bool) {
        self.prefix_page_at(table, prefix, cursor, limit, Instant::now())
    }

    fn prefix_page_at(
        &self,
        table: &LocationTable,
        prefix: &str,
        cursor: &str,
        limit: usize,
        now: Instant,
    ) -> (Vec<Arc<str>>, bool) {
        let kept = if cursor.is_empty() {
            None
        } else {
            self.search_lock()
                .as_ref()
                .filter(|f| {
                    *f.prefix == *prefix && now.saturating_duration_since(f.names.taken) <= MAX_AGE
                })
                .map(|f| Arc::clone(&f.names.sorted))
        };
        let sorted = match kept {
            Some(s) => s,
            None => {
                let mut names = table.aors_with_prefix(prefix);
                names.sort_unstable();
                let sorted: Arc<[Arc<str>]> = names.into();
                *self.search_lock() = Some(Found {
                    prefix: prefix.into(),
                    names: Names {
                        sorted: Arc::clone(&sorted),
                        taken: now,
                    },
                });
                sorted
            }
        };
        let from = sorted.partition_point(|n| &**n <= cursor);
        let to = from.saturating_add(limit).min(sorted.len());
        let names = sorted[from..to].to_vec();
        let more = to < sorted.len();
        if !more {
            let mut search = self.search_lock();
            if search
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(&f.names.sorted, &sorted))
            {
                *search = None;
            }
        }
        (names, more)
    }

    fn search_lock(&self) -> std::sync::MutexGuard<'_, Option<Found>> {
        // Replaced whole, as `latest` is.
        crate::util::lock(&self.search)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Names>> {
        // The value is replaced whole, never left half-written: a panic
        // elsewhere while holding the lock cannot leave it inconsistent.
        crate::util::lock(&self.latest)
    }

    #[cfg(test)]
    fn kept(&self) -> Option<usize> {
        self.lock().as_ref().map(|n| n.sorted.len())
    }
}

#[cfg(test)]
mod tests;
