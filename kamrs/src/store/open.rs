//! Choosing and starting the store named by `[store]`, and filling the
//! table from it at start-up. `main` calls [`open`], then [`preload`], then
//! `LocationTable::attach_store`, all before it announces `ready`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{redis, sqlite, Store, StoreError};
use crate::usrloc::LocationTable;

/// A store that cannot be started. The text is what the daemon prints
/// before exiting with code 1: it names the store, what failed and, where
/// known, what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the {backend} location store: {message}")]
pub struct OpenError {
    pub backend: &'static str,
    pub message: String,
}

impl OpenError {
    pub fn new(backend: &'static str, message: impl Into<String>) -> OpenError {
        OpenError {
            backend,
            message: message.into(),
        }
    }
}

/// Which store to start, with its settings (`config.rs` maps `[store]`
/// onto this).
#[derive(Debug, Clone)]
pub enum Backend {
    /// Memory only (Kamailio db_mode 0).
    None,
    Sqlite(sqlite::Settings),
    Redis(redis::Settings),
}

/// Opens the store `backend` names: `None` for [`Backend::None`] (memory
/// only). Runs before the transports serve; a store that cannot be opened
/// must stop start-up.
pub async fn open(backend: Backend) -> Result<Option<Arc<dyn Store>>, OpenError> {
    match backend {
        Backend::None => Ok(None),
        Backend::Sqlite(settings) => {
            // Opening creates or checks the schema: file I/O, off the
            // runtime's threads.
            let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(settings))
                .await
                .map_err(|e| OpenError::new("sqlite", format!("the open task failed: {e}")))?
                .map_err(|e| OpenError::new("sqlite", e.to_string()))?;
            Ok(Some(Arc::new(store) as Arc<dyn Store>))
        }
        // Connects and checks the server (or cluster); `preload` then
        // subscribes to the other nodes' changes and reads every binding.
        Backend::Redis(settings) => {
            let store = redis::RedisStore::open(settings)
                .await
                .map_err(|e| OpenError::new("redis", e))?;
            Ok(Some(Arc::new(store) as Arc<dyn Store>))
        }
    }
}

/// What [`preload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preloaded {
    /// Bindings the store handed over (some may have expired since).
    pub read: u64,
    /// Bindings in the table afterwards.
    pub bindings: u64,
    /// AoRs in the table afterwards.
    pub aors: usize,
    pub millis: u128,
}

/// Fills `table` with the bindings `store` holds that are still live at
/// `now`, without journaling them back, and logs how many and how long it
/// took. Call before [`LocationTable::attach_store`].
pub async fn preload(
    store: &Arc<dyn Store>,
    table: &Arc<LocationTable>,
    now: u64,
) -> Result<Preloaded, StoreError> {
    let started = Instant::now();
    let read = store.load_into(Arc::clone(table), now).await?;
    let done = Preloaded {
        read,
        bindings: table.stats().contacts.load(Ordering::Relaxed),
        aors: table.len(),
        millis: started.elapsed().as_millis(),
    };
    // Bindings read but not kept: they expired between the store's read
    // and the table's load.
    let expired = done.read.saturating_sub(done.bindings);
    let expired = if expired == 0 {
        String::new()
    } else {
        format!(
            " ({expired} of the {} read had expired meanwhile)",
            done.read
        )
    };
    tracing::info!(
        "preloaded {} bindings of {} AoRs from the {} store in {} ms{expired}",
        done.bindings,
        done.aors,
        store.name(),
        done.millis,
    );
    Ok(done)
}
