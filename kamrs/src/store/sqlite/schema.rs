//! The schema (Kamailio's `location` table version 9) and opening the
//! file: the writer's connection with its pragmas, readers, the version check.

use super::*;

/// Kamailio's `location` table version this schema matches.
pub const LOCATION_VERSION: i64 = 9;

/// The schema: Kamailio's `location` table version 9 (same columns, types,
/// defaults and indexes), and the `version` table Kamailio checks.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
";

/// The indexes and the version row, created once the table is known to
/// have Kamailio's columns.
pub(super) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS location_account_contact_idx ON location (username, domain, contact);
CREATE INDEX IF NOT EXISTS location_expires_idx ON location (expires);
CREATE INDEX IF NOT EXISTS location_connection_idx ON location (server_id, connection_id);
INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('location', 9);
";

/// Every column of Kamailio's `location` table, version 9.
pub const COLUMNS: [&str; 23] = [
    "id",
    "ruid",
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "flags",
    "cflags",
    "user_agent",
    "socket",
    "methods",
    "instance",
    "reg_id",
    "server_id",
    "connection_id",
    "keepalive",
    "partition",
];

pub(super) const UPSERT: &str = "
INSERT INTO location (ruid, username, domain, contact, received, path, expires, q,
    callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance,
    reg_id, server_id, connection_id, keepalive, partition)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
    ?18, ?19, -1, 0, 0)
ON CONFLICT (ruid) DO UPDATE SET
    username = excluded.username, domain = excluded.domain, contact = excluded.contact,
    received = excluded.received, path = excluded.path, expires = excluded.expires,
    q = excluded.q, callid = excluded.callid, cseq = excluded.cseq,
    last_modified = excluded.last_modified, flags = excluded.flags,
    cflags = excluded.cflags, user_agent = excluded.user_agent, socket = excluded.socket,
    methods = excluded.methods, instance = excluded.instance, reg_id = excluded.reg_id,
    server_id = excluded.server_id";

pub(super) const DELETE: &str = "DELETE FROM location WHERE ruid = ?1";

/// Rows whose expiry has passed (permanent ones never do), a chunk at a
/// time.
pub(super) const CLEANUP: &str = "
DELETE FROM location WHERE id IN (
    SELECT id FROM location WHERE expires <= ?1 AND expires != '1970-01-01 00:00:00' LIMIT ?2)";

/// The columns a binding is read from, in [`binding_from_row`]'s order.
pub(super) const SELECT_BINDINGS: &str = "
SELECT username, domain, contact, received, path, expires, q, callid, cseq,
    last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, ruid,
    server_id
FROM location";
// ------------------------------------------------------------ connection

/// Opens the file for writing: WAL, `synchronous = FULL`, the busy
/// timeout, and the schema created or checked.
///
/// `synchronous = FULL` in WAL mode syncs the WAL at every commit, so a
/// committed transaction survives a power cut; NORMAL would only survive a
/// crash of kamrs. Write-through promises durability before the 200, so
/// FULL; write-back commits once per interval, where one fsync costs
/// nothing, so FULL too.
pub(super) fn open_writer(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Layout(format!(
            "cannot switch {} to WAL mode (journal_mode is {mode}); is it on a network file system?",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Keeps the -wal file from staying huge after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Index pages of a big table stay in memory (64 MiB, filled only as
    // the file grows): random inserts into the username and expires
    // indexes otherwise re-read pages at every batch. Measured: writing
    // 1M bindings took about half the time with it.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.execute_batch(SCHEMA)?;
    check_schema(&conn)?;
    conn.execute_batch(INDEXES)?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

/// Opens the file for reading (preload, counts) beside the writer.
pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Refuses a `location` table that is not Kamailio's version 9 layout.
pub(super) fn check_schema(conn: &Connection) -> Result<(), DbError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('location')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(DbError::Layout(format!(
            "its `location` table lacks the columns {} of Kamailio's location table version {LOCATION_VERSION}: use another file, or migrate it with Kamailio's kamdbctl",
            missing.join(", ")
        )));
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT table_version FROM version WHERE table_name = 'location'",
            [],
            |r| r.get(0),
        )
        .ok();
    match version {
        Some(v) if v != LOCATION_VERSION => Err(DbError::Layout(format!(
            "its `version` table says `location` is version {v}, kamrs writes version {LOCATION_VERSION}: use another file, or migrate it with Kamailio's kamdbctl"
        ))),
        _ => Ok(()),
    }
}
