//! Persistence backends of the location table (docs/design.md §7): memory
//! only, SQLite (`sqlite/`) or Redis (`redis/`), each a folder with one
//! file per job, sharing one queue-limit rule (`queue.rs`). They implement
//! usrloc's [`Store`] interface (`usrloc/persist.rs`): the table tells them
//! every change as ops and gets a [`Commit`] back; they hand stored
//! bindings and other nodes' changes back over channels and never edit
//! the table themselves.

pub mod open;
mod queue;
pub mod redis;
pub mod sqlite;

pub use crate::usrloc::persist::{
    Batch, Commit, DbCounts, Loading, Remote, Store, StoreError, StoreFuture, StoreMode, StoreOp,
};
pub use open::{open, Backend, OpenError};
