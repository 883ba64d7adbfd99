//! Choosing and starting the store named by `[store]`. `main` calls
//! [`open`], then `usrloc::preload` (which fills the table from it), then
//! `LocationTable::attach_store`, all before it announces `ready`.

use std::sync::Arc;

use super::{redis, sqlite, Store};

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
