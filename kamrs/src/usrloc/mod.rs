//! usrloc: the user location table (docs/design.md §4), Kamailio's storage half of
//! registration. It stores and expires bindings and counts them; it never
//! parses SIP; deciding *what* to store is the registrar's job.

mod aor;
mod binding;
mod limits;
mod q;
mod table;

pub use aor::{Aor, AorError, MAX_AOR_LEN};
pub use binding::{Binding, Parts, Ruid, Source, PERMANENT};
pub use limits::{Growth, Limit, TableFull, TableLimits};
pub use q::{q_from_number, q_to_number, Q_UNSPECIFIED};
pub use table::{unix_now, LocationTable, Undo, UsrlocStats};

#[cfg(test)]
mod tests;
