//! usrloc: the user location table (docs/design.md §4), Kamailio's storage
//! half of registration. It stores and expires bindings and counts them;
//! it never parses SIP; deciding *what* to store is the registrar's job.
//!
//! It is also the only module that knows a store exists: `persist.rs` is
//! the interface a backend (`crate::store`) implements, `durable.rs`
//! decides when an answer may be given for a change, and `remote.rs`
//! applies what a store hands back (its bindings at start-up, other
//! nodes' changes).

mod aor;
mod binding;
mod durable;
pub mod events;
mod flows;
mod limits;
pub mod persist;
mod q;
mod remote;
mod runtime;
mod table;

pub use aor::{Aor, AorError, MAX_AOR_LEN};
pub use binding::{Binding, Parts, Ruid, Source, PERMANENT};
pub use durable::{Confirm, Durability, Edit};
pub use events::{Cause, Event, Events, Listener, Origin};
pub use limits::{Growth, Limit, TableFull, TableLimits};
pub use persist::{Store, StoreError, StoreMode};
pub use q::{q_from_number, q_to_number, Q_UNSPECIFIED};
pub use remote::{follow, preload, Preloaded};
pub use table::{unix_now, LocationTable, Undo, UsrlocStats};

#[cfg(test)]
mod tests;
