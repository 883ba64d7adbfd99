//! Reading the file back: the preload and the counts.

use super::*;

/// Rows per chunk handed from the reading thread to the loading one.
pub(super) const PRELOAD_CHUNK: usize = 4096;

/// Reads every row, sending the bindings in chunks (the table skips the
/// expired ones). Rows that cannot be read are skipped with a warning.
/// Stops early, without error, when nobody takes the chunks any more.
pub(super) fn read_rows(
    path: &Path,
    tx: &tokio::sync::mpsc::Sender<Result<Batch, StoreError>>,
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
                chunk.push((Arc::from(b.0), b.1));
                if chunk.len() == PRELOAD_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PRELOAD_CHUNK));
                    if tx.blocking_send(Ok(full)).is_err() {
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
        let _ = tx.blocking_send(Ok(chunk));
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
