//! Reading the file back: the preload and the counts.

use super::*;

/// Reads every row into `table` (which skips the expired ones). Rows that
/// cannot be read are skipped with a warning.
pub(super) fn load(path: &Path, table: &LocationTable, now: u64) -> Result<u64, StoreError> {
    // Two stages on two threads: SQLite reads and maps rows to bindings
    // while the table takes the previous chunk, so the preload takes about
    // as long as the slower of the two instead of their sum.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(String, Binding)>>(8);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("kamrs-preload".into())
            .spawn_scoped(scope, move || read_rows(path, &tx))
            .map_err(|e| StoreError::Read(format!("cannot start the preload thread: {e}")))?;
        let mut loaded = 0u64;
        for chunk in rx {
            for (aor, binding) in chunk {
                table.load(&aor, binding, now);
                loaded += 1;
            }
        }
        reader
            .join()
            .map_err(|_| StoreError::Read("the preload thread panicked".into()))??;
        Ok(loaded)
    })
}

/// Rows per chunk handed from the reading thread to the loading one.
pub(super) const PRELOAD_CHUNK: usize = 4096;

/// Reads every row, sending the bindings in chunks. Rows that cannot be
/// read are skipped with a warning.
pub(super) fn read_rows(
    path: &Path,
    tx: &std::sync::mpsc::SyncSender<Vec<(String, Binding)>>,
) -> Result<(), StoreError> {
    let read_err = |e: rusqlite::Error| {
        StoreError::Read(format!(
            "{}: {}",
            path.display(),
            describe(&DbError::Sqlite(e))
        ))
    };
    let conn = open_reader(path).map_err(read_err)?;
    // Table order (rowid): reading in expiry order through the index was
    // measured slower, the random row lookups cost more than they save.
    let mut stmt = conn.prepare(SELECT_BINDINGS).map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    let mut agents = HashMap::new();
    let mut skipped = 0u64;
    let mut chunk = Vec::with_capacity(PRELOAD_CHUNK);
    while let Some(row) = rows.next().map_err(read_err)? {
        match binding_from_row(row, &mut agents) {
            Ok(b) => {
                chunk.push(b);
                if chunk.len() == PRELOAD_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PRELOAD_CHUNK));
                    if tx.send(full).is_err() {
                        return Ok(());
                    }
                }
            }
            Err(why) => {
                skipped += 1;
                if skipped <= 10 {
                    let id: Option<String> = row.get(17).ok();
                    tracing::warn!(
                        path = %path.display(),
                        ruid = id.as_deref().unwrap_or("?"),
                        "skipping a location row that cannot be read: {why}"
                    );
                }
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(chunk);
    }
    if skipped > 10 {
        tracing::warn!(
            path = %path.display(),
            "skipped {skipped} location rows that cannot be read in all"
        );
    }
    Ok(())
}

pub(super) fn counts(path: &Path, now: u64) -> Result<DbCounts, StoreError> {
    let read_err = |e: rusqlite::Error| {
        StoreError::Read(format!(
            "{}: {}",
            path.display(),
            describe(&DbError::Sqlite(e))
        ))
    };
    let conn = open_reader(path).map_err(read_err)?;
    let now = format_time(now);
    let live = "(expires > ?1 OR expires = '1970-01-01 00:00:00')";
    let count = |sql: &str| -> Result<u64, StoreError> {
        conn.query_row(sql, params![now], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(read_err)
    };
    Ok(DbCounts {
        users: count(&format!(
            "SELECT count(*) FROM (SELECT DISTINCT username, domain FROM location WHERE {live})"
        ))?,
        contacts: count(&format!("SELECT count(*) FROM location WHERE {live}"))?,
        expired_contacts: count(&format!("SELECT count(*) FROM location WHERE NOT {live}"))?,
    })
}
