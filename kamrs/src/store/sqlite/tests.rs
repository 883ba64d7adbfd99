use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::usrloc::LocationTable;

/// A directory removed on drop, holding the database of one test.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("kamrs-sqlite-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn db(&self) -> PathBuf {
        self.0.join("location.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(path: &Path, mode: StoreMode) -> Settings {
    Settings {
        path: path.to_owned(),
        mode,
        write_back_interval: Duration::from_millis(200),
        queue_size: 100_000,
    }
}

fn open(path: &Path, mode: StoreMode) -> SqliteStore {
    SqliteStore::open(settings(path, mode)).unwrap()
}

fn binding(ruid: &str, expires_at: u64) -> Binding {
    Binding::new(Parts {
        contact: &format!("sip:{ruid}@192.0.2.7:5060"),
        expires_at,
        q: None,
        call_id: &format!("{ruid}@phone"),
        cseq: 7,
        user_agent: Some(Arc::from("Yealink SIP-T46S 66.86.0.15")),
        source: Some(Source {
            proto: Proto::Udp,
            remote: "192.0.2.7:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }),
        path: None,
        instance: None,
        reg_id: 0,
        methods: u32::MAX,
        flags: 0,
        cflags: 0,
        ruid: ruid.into(),
        last_modified: 1_700_000_000,
        server_id: 7,
    })
}

fn upsert(aor: &str, b: Binding) -> StoreOp {
    StoreOp::Upsert {
        aor: Arc::from(aor),
        binding: b,
    }
}

fn delete(aor: &str, ruid: &str) -> StoreOp {
    StoreOp::Delete {
        aor: Arc::from(aor),
        ruid: ruid.into(),
    }
}

fn far() -> u64 {
    unix_now() + 3600
}

/// ruids in the file, sorted, read by a separate connection.
fn ruids(path: &Path) -> Vec<String> {
    let c = Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT ruid FROM location ORDER BY ruid")
        .unwrap();
    let v = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    v
}

/// Another process's write lock: `BEGIN IMMEDIATE` on our own connection
/// (in WAL mode the same as EXCLUSIVE for writers), held until dropped.
struct WriteLock(Connection);

impl WriteLock {
    fn take(path: &Path) -> WriteLock {
        let c = Connection::open(path).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(c)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

/// Reads the file into `table` as the preload does (rows read on one
/// thread, taken by the table on another), from sync and async tests.
fn load(path: &Path, table: &LocationTable, now: u64) -> Result<u64, StoreError> {
    std::thread::scope(|scope| {
        let taker = scope.spawn(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let reader = scope.spawn(move || read_rows(path, &tx));
            let mut n = 0u64;
            while let Some(batch) = rx.blocking_recv() {
                for (aor, b) in batch? {
                    n += 1;
                    table.load(&aor, b, now);
                }
            }
            reader.join().expect("the reader does not panic")?;
            Ok(n)
        });
        taker.join().expect("the taker does not panic")
    })
}

fn table_of(store: &SqliteStore, now: u64) -> Arc<LocationTable> {
    let table = Arc::new(LocationTable::new());
    let path = store.path().to_owned();
    load(&path, &table, now).unwrap();
    table
}

// ------------------------------------------------------------------ time

#[test]
fn times_are_utc_text_and_round_trip() {
    assert_eq!(format_time(0), "1970-01-01 00:00:00");
    assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
    assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20");
    assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59:59");
    for t in [
        0,
        59,
        86_399,
        86_400,
        951_782_399,
        1_700_000_000,
        4_102_444_800,
        253_402_300_799,
    ] {
        assert_eq!(parse_time(&format_time(t)), Some(t), "{t}");
    }
    let mut t = 12_345u64;
    for _ in 0..10_000 {
        t = t
            .wrapping_mul(6_364_136_223_846_793)
            .wrapping_add(1_442_695)
            % 4_000_000_000;
        assert_eq!(parse_time(&format_time(t)), Some(t), "{t}");
    }
    assert_eq!(parse_time("2023-11-14T22:13:20"), Some(1_700_000_000));
    assert_eq!(parse_time("2023-11-14 22:13:20.123"), Some(1_700_000_000));
    assert_eq!(parse_time("2023-11-14 22:13:20Z"), Some(1_700_000_000));
    for bad in [
        "",
        "2023-11-14",
        "2023-13-14 22:13:20",
        "2023-11-14 24:13:20",
        "2023/11/14 22:13:20",
        "2023-11-14 22:13:20 junk",
        "+023-11-14 22:13:20",
        "1969-12-31 23:59:59",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

// ----------------------------------------------------------- row mapping

#[test]
fn row_columns_follow_kamailio() {
    let mut b = binding("r1", 1_700_003_600);
    b.q = Some(500);
    let row = Row9::of("alice@example.com", &b);
    assert_eq!(row.username, "alice");
    assert_eq!(row.domain.as_deref(), Some("example.com"));
    assert_eq!(row.expires, "2023-11-14 23:13:20");
    assert_eq!(row.last_modified, "2023-11-14 22:13:20");
    assert_eq!(row.q, 0.5);
    assert_eq!(row.received.as_deref(), Some("sip:192.0.2.7:5060"));
    assert_eq!(row.socket.as_deref(), Some("udp:127.0.0.1:5060"));
    assert_eq!(row.methods, 4_294_967_295);

    let mut b = binding("r2", PERMANENT);
    b.set_source(Some(Source {
        proto: Proto::Tcp,
        remote: "[2001:db8::7]:5070".parse().unwrap(),
        local: "[::1]:5060".parse().unwrap(),
        conn: None,
    }));
    let row = Row9::of("bob", &b);
    assert_eq!(row.username, "bob");
    assert_eq!(row.domain, None);
    assert_eq!(row.expires, PERMANENT_TEXT);
    assert_eq!(row.q, -1.0);
    assert_eq!(
        row.received.as_deref(),
        Some("sip:[2001:db8::7]:5070;transport=tcp")
    );
    assert_eq!(row.socket.as_deref(), Some("tcp:[::1]:5060"));
    b.set_source(None);
    let row = Row9::of("bob", &b);
    assert_eq!((row.received, row.socket), (None, None));
}

#[tokio::test]
async fn bindings_round_trip_through_the_file() {
    let dir = Dir::new("roundtrip");
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let now = unix_now();
    let v4 = binding("r-v4", now + 600);
    let mut v6 = binding("r-v6", now + 900);
    v6.set_source(Some(Source {
        proto: Proto::Tcp,
        remote: "[2001:db8::7]:49152".parse().unwrap(),
        local: "[::1]:5060".parse().unwrap(),
        conn: None,
    }));
    v6.q = Some(0);
    let mut v6 = Binding::new(Parts {
        path: Some("<sip:edge1;lr>,<sip:edge2;lr>"),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
        ..v6.parts()
    });
    v6.reg_id = 2;
    v6.methods = 0x1f;
    v6.flags = 3;
    v6.cflags = 0x8000_0001;
    v6.cseq = u32::MAX;
    let mut perm = binding("r-perm", PERMANENT);
    perm.q = Some(1000);
    perm.set_source(None);
    perm.user_agent = None;
    let mut half = binding("r-half", now + 60);
    half.q = Some(333);
    let ops = vec![
        upsert("alice@example.com", v4.clone()),
        upsert("alice@example.com", v6.clone()),
        upsert("bob", perm.clone()),
        upsert("carol@a@b", half.clone()),
    ];
    store.submit(ops).await.unwrap();
    let table = table_of(&store, now);
    let mut alice = table.lookup("alice@example.com", now).unwrap();
    alice.sort_by_key(|b| b.ruid().to_string());
    assert_eq!(alice, [v4, v6]);
    assert_eq!(table.lookup("bob", now).unwrap(), [perm]);
    assert_eq!(table.lookup("carol@a@b", now).unwrap(), [half]);
    // The same file read with plain SQL, as an admin would.
    let c = Connection::open(dir.db()).unwrap();
    let (user, domain, q, expires, received, socket): (
        String,
        Option<String>,
        f64,
        String,
        Option<String>,
        Option<String>,
    ) = c
        .query_row(
            "SELECT username, domain, q, expires, received, socket FROM location WHERE ruid = 'r-v6'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(user, "alice");
    assert_eq!(domain.as_deref(), Some("example.com"));
    assert_eq!(q, 0.0);
    assert_eq!(expires, format_time(now + 900));
    assert_eq!(
        received.as_deref(),
        Some("sip:[2001:db8::7]:49152;transport=tcp")
    );
    assert_eq!(socket.as_deref(), Some("tcp:[::1]:5060"));
    let (q, expires, domain): (f64, String, Option<String>) = c
        .query_row(
            "SELECT q, expires, domain FROM location WHERE ruid = 'r-perm'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (q, expires.as_str(), domain),
        (1.0, "1970-01-01 00:00:00", None)
    );
}

#[tokio::test]
async fn upsert_updates_in_place_and_delete_removes() {
    let dir = Dir::new("upsert");
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let now = unix_now();
    store
        .submit(vec![
            upsert("a", binding("r1", far())),
            upsert("a", binding("r2", far())),
        ])
        .await
        .unwrap();
    let id_before: i64 = Connection::open(dir.db())
        .unwrap()
        .query_row("SELECT id FROM location WHERE ruid = 'r1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut refreshed = binding("r1", now + 7200);
    refreshed.cseq = 8;
    store
        .submit(vec![upsert("a", refreshed.clone()), delete("a", "r2")])
        .await
        .unwrap();
    assert_eq!(ruids(&dir.db()), ["r1"]);
    let c = Connection::open(dir.db()).unwrap();
    let (id, cseq): (i64, i64) = c
        .query_row("SELECT id, cseq FROM location WHERE ruid = 'r1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((id, cseq), (id_before, 8));
    assert_eq!(table_of(&store, now).lookup("a", now).unwrap(), [refreshed]);
}

#[tokio::test]
async fn odd_rows_are_skipped_and_the_rest_loaded() {
    let dir = Dir::new("odd");
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let now = unix_now();
    store
        .submit(vec![upsert("good", binding("ok", far()))])
        .await
        .unwrap();
    let c = Connection::open(dir.db()).unwrap();
    let future = format_time(far());
    for (ruid, expires, contact, q, cseq) in [
        ("bad-expires", "tomorrow".to_owned(), "sip:x@h", 1.0, 1i64),
        ("bad-contact", future.clone(), "", 1.0, 1),
        ("bad-q", future.clone(), "sip:x@h", 7.0, 1),
        ("bad-cseq", future.clone(), "sip:x@h", 1.0, -5),
        ("expired", format_time(now - 10), "sip:x@h", 1.0, 1),
    ] {
        c.execute(
            "INSERT INTO location (ruid, username, contact, expires, q, cseq, last_modified) VALUES (?1, 'odd', ?2, ?3, ?4, ?5, 'garbage')",
            params![ruid, contact, expires, q, cseq],
        )
        .unwrap();
    }
    // A Kamailio-written row: no received/socket, NULL methods, integer
    // time stamps, and a hand-made one with a blob contact.
    c.execute(
        "INSERT INTO location (ruid, username, domain, contact, expires, q, last_modified, methods, socket) VALUES ('kam', 'k', 'd', 'sip:k@h', ?1, -1, 0, NULL, 'sctp:1.2.3.4:5')",
        params![i64::try_from(far()).unwrap()],
    )
    .unwrap();
    c.execute(
        "INSERT INTO location (ruid, username, contact, expires) VALUES ('blob', 'b', x'00ff', ?1)",
        params![future],
    )
    .unwrap();
    let table = Arc::new(LocationTable::new());
    let loaded = load(&dir.db(), &table, now).unwrap();
    // good, kam and the expired row are read; the table keeps the live ones.
    assert_eq!(loaded, 3);
    assert_eq!(table.len(), 2);
    let kam = table.lookup("k@d", now).unwrap();
    assert_eq!(kam[0].methods, u32::MAX);
    assert_eq!(kam[0].q, None);
    assert_eq!(kam[0].source(), None);
    assert!(table.lookup("odd", now).is_none());
}

#[test]
fn received_and_socket_parse_back() {
    assert_eq!(
        parse_received("sip:192.0.2.1:5060"),
        Some(("192.0.2.1:5060".parse().unwrap(), Proto::Udp))
    );
    assert_eq!(
        parse_received("sip:[2001:db8::1]:5061;transport=TCP"),
        Some(("[2001:db8::1]:5061".parse().unwrap(), Proto::Tcp))
    );
    assert_eq!(parse_received("sip:host.example.com:5060"), None);
    assert_eq!(
        parse_received("sip:192.0.2.1:5061;transport=tls"),
        Some(("192.0.2.1:5061".parse().unwrap(), Proto::Tls))
    );
    assert_eq!(
        parse_received("sip:192.0.2.1:443;transport=ws"),
        Some(("192.0.2.1:443".parse().unwrap(), Proto::Ws))
    );
    assert_eq!(parse_received("sip:192.0.2.1:5060;transport=sctp"), None);
    assert_eq!(
        parse_socket("tcp:[::1]:5060"),
        Some((Proto::Tcp, "[::1]:5060".parse().unwrap()))
    );
    assert_eq!(parse_socket("udp:1.2.3.4"), None);
    assert_eq!(u32_column(-1), Some(u32::MAX));
    assert_eq!(u32_column(4_294_967_295), Some(u32::MAX));
    assert_eq!(u32_column(4_294_967_296), None);
    assert_eq!(u32_column(-3_000_000_000), None);
}

// ---------------------------------------------------------- the schema

#[test]
fn schema_has_kamailio_columns_and_version_9() {
    let dir = Dir::new("schema");
    drop(open(&dir.db(), StoreMode::WriteThrough));
    let c = Connection::open(dir.db()).unwrap();
    let mut st = c
        .prepare("SELECT name FROM pragma_table_info('location') ORDER BY cid")
        .unwrap();
    let cols: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(cols, COLUMNS);
    let v: i64 = c
        .query_row(
            "SELECT table_version FROM version WHERE table_name = 'location'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, 9);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let idx: i64 = c
        .query_row(
            "SELECT count(*) FROM pragma_index_list('location') WHERE \"unique\" = 1 AND name IN (SELECT name FROM pragma_index_list('location'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(idx >= 1, "a unique index (on ruid)");
    // Opening again keeps the data and the schema.
    drop(open(&dir.db(), StoreMode::WriteBack));
}

#[test]
fn a_foreign_location_table_is_refused_with_the_reason() {
    let dir = Dir::new("foreign");
    let c = Connection::open(dir.db()).unwrap();
    c.execute_batch("CREATE TABLE location (id INTEGER PRIMARY KEY, username TEXT, contact TEXT)")
        .unwrap();
    drop(c);
    let e = SqliteStore::open(settings(&dir.db(), StoreMode::WriteThrough))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ruid") && e.contains("version 9"), "{e}");

    let dir = Dir::new("version8");
    drop(open(&dir.db(), StoreMode::WriteThrough));
    let c = Connection::open(dir.db()).unwrap();
    c.execute_batch("UPDATE version SET table_version = 8 WHERE table_name = 'location'")
        .unwrap();
    drop(c);
    let e = SqliteStore::open(settings(&dir.db(), StoreMode::WriteThrough))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("version 8"), "{e}");

    let dir = Dir::new("notdb");
    std::fs::write(dir.db(), vec![b'x'; 4096]).unwrap();
    let e = SqliteStore::open(settings(&dir.db(), StoreMode::WriteThrough))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("location.db") && e.contains("not an SQLite database"),
        "{e}"
    );

    let e = SqliteStore::open(settings(
        Path::new("/nonexistent-kamrs-dir/location.db"),
        StoreMode::WriteThrough,
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("/nonexistent-kamrs-dir") && e.contains("does not exist"),
        "{e}"
    );
}

// --------------------------------------------------------- group commit

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_ops_are_written_in_few_transactions() {
    let dir = Dir::new("group");
    let store = Arc::new(open(&dir.db(), StoreMode::WriteThrough));
    // Hold the lock so everything below queues behind the first batch.
    let lock = WriteLock::take(&dir.db());
    let mut commits = Vec::new();
    for i in 0..1000 {
        commits.push(store.submit(vec![upsert("a", binding(&format!("r{i:04}"), far()))]));
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(lock);
    for c in commits {
        c.await.unwrap();
    }
    let tx = store.stats().transactions.load(Ordering::Relaxed);
    assert!(tx <= 3, "1000 queued commits took {tx} transactions");
    assert_eq!(store.stats().ops.load(Ordering::Relaxed), 1000);
    assert_eq!(ruids(&dir.db()).len(), 1000);

    // Unforced: many tasks submitting at once share transactions too.
    let before = store.stats().transactions.load(Ordering::Relaxed);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut waiting = Vec::new();
            for i in 0..250 {
                waiting.push(store.submit(vec![upsert("b", binding(&format!("t{t}-{i}"), far()))]));
            }
            for c in waiting {
                c.await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tx = store.stats().transactions.load(Ordering::Relaxed) - before;
    assert!(tx < 200, "2000 concurrent commits took {tx} transactions");
    assert_eq!(ruids(&dir.db()).len(), 3000);
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let dir = Dir::new("full");
    let store = SqliteStore::open(Settings {
        queue_size: 10,
        ..settings(&dir.db(), StoreMode::WriteThrough)
    })
    .unwrap();
    let lock = WriteLock::take(&dir.db());
    let mut accepted = Vec::new();
    for i in 0..10 {
        let c = store.submit(vec![upsert("a", binding(&format!("r{i}"), far()))]);
        assert!(c.refused().is_none());
        accepted.push(c);
    }
    let started = Instant::now();
    let c = store.submit(vec![upsert("a", binding("one-too-many", far()))]);
    assert_eq!(c.refused(), Some(&StoreError::Overloaded));
    assert_eq!(c.await, Err(StoreError::Overloaded));
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(store.stats().refused.load(Ordering::Relaxed), 1);
    drop(lock);
    for c in accepted {
        // The first batch may have failed on the lock; its ops are kept
        // and written with the next.
        let _ = c.await;
    }
    store.flush().await.unwrap();
    assert_eq!(ruids(&dir.db()).len(), 10);
    // Room again.
    store
        .submit(vec![upsert("a", binding("later", far()))])
        .await
        .unwrap();
}

// -------------------------------------------------- failure and recovery

#[tokio::test]
async fn a_failed_write_errs_its_commits_and_is_retried() {
    let dir = Dir::new("busy");
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let lock = WriteLock::take(&dir.db());
    let started = Instant::now();
    let err = store
        .submit(vec![
            upsert("a", binding("r1", far())),
            upsert("a", binding("gone", far())),
        ])
        .await
        .unwrap_err();
    assert!(started.elapsed() >= BUSY_TIMEOUT / 2, "waited for the lock");
    let StoreError::Write(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("location.db"), "names the file: {msg}");
    assert!(msg.contains("lock"), "says what to do: {msg}");
    assert_eq!(store.stats().failures.load(Ordering::Relaxed), 1);
    // Superseded while failing: the kept ops are deduplicated by ruid.
    let err = store.submit(vec![delete("a", "gone")]).await;
    assert!(err.is_err());
    drop(lock);
    store
        .submit(vec![upsert("a", binding("r2", far()))])
        .await
        .unwrap();
    assert_eq!(ruids(&dir.db()), ["r1", "r2"]);
    assert_eq!(store.shared.pending.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn kept_ops_are_retried_without_new_traffic() {
    let dir = Dir::new("retry");
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let lock = WriteLock::take(&dir.db());
    assert!(store
        .submit(vec![upsert("a", binding("r1", far()))])
        .await
        .is_err());
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ruids(&dir.db()).is_empty() {
        assert!(Instant::now() < deadline, "kept op never retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ruids(&dir.db()), ["r1"]);
}

// ------------------------------------------------------------ write-back

#[tokio::test]
async fn write_back_commits_within_the_interval_or_on_flush() {
    let dir = Dir::new("wb");
    let store = open(&dir.db(), StoreMode::WriteBack);
    let started = Instant::now();
    let commit = store.submit(vec![upsert("a", binding("r1", far()))]);
    assert!(ruids(&dir.db()).is_empty(), "not written at once");
    commit.await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(ruids(&dir.db()), ["r1"]);
    // A flush does not wait for the interval.
    let started = Instant::now();
    drop(store.submit(vec![upsert("a", binding("r2", far()))]));
    store.flush().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(150));
    assert_eq!(ruids(&dir.db()), ["r1", "r2"]);
    // Nothing queued: a flush resolves at once.
    store.flush().await.unwrap();
}

#[tokio::test]
async fn write_back_keeps_changes_while_locked_and_writes_them_later() {
    let dir = Dir::new("wblock");
    let store = open(&dir.db(), StoreMode::WriteBack);
    let lock = WriteLock::take(&dir.db());
    for i in 0..5 {
        drop(store.submit(vec![upsert("a", binding(&format!("r{i}"), far()))]));
    }
    assert!(
        store.flush().await.is_err(),
        "the lock makes the flush fail"
    );
    drop(lock);
    store.flush().await.unwrap();
    assert_eq!(ruids(&dir.db()).len(), 5);
}

#[test]
fn dropping_the_store_writes_what_is_queued() {
    let dir = Dir::new("drop");
    let store = SqliteStore::open(Settings {
        write_back_interval: Duration::from_secs(3600),
        ..settings(&dir.db(), StoreMode::WriteBack)
    })
    .unwrap();
    drop(store.submit(vec![upsert("a", binding("r1", far()))]));
    drop(store);
    assert_eq!(ruids(&dir.db()), ["r1"]);
}

// ------------------------------------------------------ cleanup, counts

#[tokio::test]
async fn expired_rows_are_cleaned_and_counted() {
    let dir = Dir::new("cleanup");
    let now = unix_now();
    {
        let store = open(&dir.db(), StoreMode::WriteThrough);
        store
            .submit(vec![
                upsert("a@d", binding("live1", now + 600)),
                upsert("a@d", binding("live2", now + 600)),
                upsert("b", binding("perm", PERMANENT)),
            ])
            .await
            .unwrap();
    }
    // Rows that expired while no kamrs ran.
    let c = Connection::open(dir.db()).unwrap();
    for (ruid, ago) in [("old1", 5), ("old2", 50)] {
        let row = Row9::of("c", &binding(ruid, now - ago));
        c.execute(
            "INSERT INTO location (ruid, username, contact, expires) VALUES (?1, ?2, ?3, ?4)",
            params![row.ruid, row.username, row.contact, row.expires],
        )
        .unwrap();
    }
    drop(c);
    {
        let counts = counts(&dir.db(), now).unwrap();
        assert_eq!(
            counts,
            DbCounts {
                users: 2,
                contacts: 3,
                expired_contacts: 2
            }
        );
    }
    // Reopening cleans up at once.
    let store = open(&dir.db(), StoreMode::WriteThrough);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ruids(&dir.db()).len() != 3 || store.stats().cleaned.load(Ordering::Relaxed) != 2 {
        assert!(Instant::now() < deadline, "expired rows not cleaned");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ruids(&dir.db()), ["live1", "live2", "perm"]);
    assert_eq!(store.stats().cleaned.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn preload_goes_through_the_store_trait() {
    let dir = Dir::new("preload");
    let store: Arc<dyn Store> = Arc::new(open(&dir.db(), StoreMode::WriteThrough));
    let now = unix_now();
    store
        .submit(vec![
            upsert("a", binding("r1", now + 60)),
            upsert("b", binding("r2", PERMANENT)),
        ])
        .await
        .unwrap();
    let table = Arc::new(LocationTable::new());
    let done = crate::usrloc::preload(&table, &store, now).await.unwrap();
    assert_eq!((done.read, done.bindings, done.aors), (2, 2, 2));
    let counts = store.counts(now).await.unwrap();
    assert_eq!(
        (counts.users, counts.contacts, counts.expired_contacts),
        (2, 2, 0)
    );
    // Preloading does not journal: nothing was queued by it.
    assert!(table.store().is_none());
}

/// 1,000,000 bindings written through the store, then preloaded; must
/// take under 5 s in a release build:
/// `cargo test --release -p kamrs preload_a_million -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run in release (see the doc comment)"]
async fn preload_a_million() {
    const N: usize = 1_000_000;
    let dir = Dir::new("million");
    // KAMRS_MILLION_DB=/path keeps the generated file (and reuses it when
    // it exists), for profiling the preload alone.
    let path = std::env::var_os("KAMRS_MILLION_DB").map_or_else(|| dir.db(), PathBuf::from);
    let reuse = path.exists();
    let store = SqliteStore::open(Settings {
        queue_size: N,
        ..settings(&path, StoreMode::WriteThrough)
    })
    .unwrap();
    let now = unix_now();
    let started = Instant::now();
    let mut last = None;
    for i in (0..N).filter(|_| !reuse) {
        let b = binding(&format!("uloc-{i:08x}"), now + 600 + (i % 3000) as u64);
        let contact = format!(
            "sip:u{i}@10.{}.{}.{}:5060",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        );
        let b = Binding::new(Parts {
            contact: &contact,
            ..b.parts()
        });
        last = Some(store.submit(vec![upsert(&format!("user{i}@example.com"), b)]));
    }
    if let Some(c) = last {
        c.await.unwrap();
    }
    store.flush().await.unwrap();
    eprintln!("wrote {N} bindings in {:?}", started.elapsed());
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("file size {} MiB", size >> 20);

    if std::env::var_os("KAMRS_PRELOAD_SPLIT").is_some() {
        let started = Instant::now();
        let conn = open_reader(&path).unwrap();
        let mut stmt = conn.prepare(SELECT_BINDINGS).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut agents = HashMap::new();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            n += binding_from_row(row, &mut agents).is_ok() as usize;
        }
        eprintln!("scan+map {n} rows: {:?}", started.elapsed());
        drop(rows);
        let started = Instant::now();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let _: Option<String> = row.get(0).ok();
        }
        eprintln!("scan only: {:?}", started.elapsed());
    }
    let table = Arc::new(LocationTable::new());
    let store: Arc<dyn Store> = Arc::new(store);
    let started = Instant::now();
    let done = crate::usrloc::preload(&table, &store, now).await.unwrap();
    let took = started.elapsed();
    eprintln!(
        "preloaded {} bindings of {} AoRs in {took:?}",
        done.bindings, done.aors
    );
    assert_eq!((done.read, done.bindings), (N as u64, N as u64));
    assert_eq!(table.len(), N);
    if !cfg!(debug_assertions) {
        assert!(took < Duration::from_secs(5), "preload took {took:?}");
    }
}

/// The table's share of [`preload_a_million`]: 1,000,000 `table.load`s
/// without SQLite (`cargo test --release -p kamrs --lib table_load_alone --
/// --ignored --nocapture`).
#[test]
#[ignore = "measurement, run in release"]
fn table_load_alone() {
    let now = unix_now();
    let bs: Vec<(String, Binding)> = (0..1_000_000usize)
        .map(|i| {
            let b = binding(&format!("uloc-{i:08x}"), now + 600 + (i % 3000) as u64);
            (format!("user{i}@example.com"), b)
        })
        .collect();
    let table = LocationTable::new();
    let started = Instant::now();
    for (aor, b) in bs {
        table.load(&aor, b, now);
    }
    eprintln!("table.load x1M: {:?}", started.elapsed());
    std::mem::forget(table);
}
