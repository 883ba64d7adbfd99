use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;

use super::test_server::RedisServer;
use super::*;
use crate::usrloc::{unix_now, Durability, Edit, LocationTable};

fn binding(ruid: &str, expires_at: u64) -> Binding {
    Binding::new(Parts {
        contact: "sip:alice@192.0.2.1:5060;transport=udp",
        expires_at,
        q: Some(500),
        call_id: "a84b4c76e66710@pc33",
        cseq: 314_159,
        user_agent: Some(Arc::from("Yealink SIP-T46S 66.86.0.15")),
        source: Some(Source {
            proto: Proto::Udp,
            remote: "192.0.2.1:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }),
        path: Some("<sip:p1.example.com;lr>,<sip:p2.example.com;lr>"),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
        reg_id: 2,
        methods: 0x1f,
        flags: 3,
        cflags: 64,
        ruid: ruid.into(),
        last_modified: 1_700_000_000,
        server_id: 7,
    })
}

#[test]
fn keys_keep_the_aor_in_one_hash_tag() {
    assert_eq!(
        binding_key("alice@example.com", "uloc-1-2"),
        "kamrs:loc:{alice@example.com}:uloc-1-2"
    );
    // Braces, colons, globs, spaces and % cannot break the scheme.
    let key = binding_key("a}b{c:d*e %f", "r:1}");
    assert_eq!(key, "kamrs:loc:{a%7Db%7Bc%3Ad%2Ae%20%25f}:r%3A1%7D");
    assert_eq!(key.matches('{').count(), 1);
    assert_eq!(key.matches('}').count(), 1);
    assert_eq!(aor_of_key(key.as_bytes()).as_deref(), Some("a}b{c:d*e %f"));
    // The empty AoR still has a non-empty tag.
    assert_eq!(binding_key("", ""), "kamrs:loc:{%}:%");
    assert_eq!(aor_of_key(b"kamrs:loc:{%}:%").as_deref(), Some(""));
    // Non-ASCII passes through as UTF-8.
    assert_eq!(binding_key("jürgen", "r"), "kamrs:loc:{jürgen}:r");
    assert_eq!(
        aor_of_key("kamrs:loc:{jürgen}:r".as_bytes()).as_deref(),
        Some("jürgen")
    );
    // Not ours, or malformed.
    for bad in [
        &b"other:{a}:r"[..],
        b"kamrs:loc:a:r",
        b"kamrs:loc:{a",
        b"kamrs:loc:{a}r",
        b"kamrs:loc:{%zz}:r",
        b"kamrs:loc:{%4}:r",
        b"kamrs:loc:{%FF}:r",
    ] {
        assert_eq!(aor_of_key(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

proptest! {
    #[test]
    fn key_escaping_round_trips_and_never_collides(a in ".*", b in ".*", r in "[a-z0-9:{}%-]*") {
        let ka = binding_key(&a, &r);
        prop_assert_eq!(aor_of_key(ka.as_bytes()), Some(a.clone()));
        // Exactly one hash tag, holding the escaped AoR only.
        let tag_start = ka.find('{').unwrap();
        let tag_end = ka.find('}').unwrap();
        prop_assert!(tag_end > tag_start + 1);
        prop_assert_eq!(ka.matches('{').count(), 1);
        prop_assert_eq!(ka.matches('}').count(), 1);
        if a != b {
            prop_assert_ne!(ka, binding_key(&b, &r));
        }
    }
}

#[test]
fn values_round_trip_every_field() {
    let v6 = Source {
        proto: Proto::Tcp,
        remote: SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            5070,
            0,
            0,
        )),
        local: "[::1]:5060".parse().unwrap(),
        conn: None,
    };
    let full = binding("r1", 1_700_003_600);
    let mut sparse = binding("r2", PERMANENT);
    sparse.q = None;
    sparse.user_agent = None;
    sparse.set_source(None);
    let sparse = Binding::new(Parts {
        path: None,
        instance: None,
        contact: "sip:ü@[2001:db8::1]",
        ..sparse.parts()
    });
    let mut tcp6 = binding("r3", 5);
    tcp6.set_source(Some(v6));
    tcp6.methods = u32::MAX;
    for b in [full, sparse, tcp6] {
        let op = StoreOp::Upsert {
            aor: Arc::from("alice@example.com"),
            binding: b.clone(),
        };
        let bytes = encode_op(&op).unwrap();
        assert_eq!(bytes[0], VALUE_V1);
        assert!(bytes.len() < 400, "compact: {} bytes", bytes.len());
        assert_eq!(
            decode_op(&bytes),
            Ok(Decoded::Upsert {
                aor: "alice@example.com".into(),
                binding: b
            })
        );
    }
    let del = StoreOp::Delete {
        aor: Arc::from("bob"),
        ruid: "r9".into(),
    };
    assert_eq!(
        decode_op(&encode_op(&del).unwrap()),
        Ok(Decoded::Delete {
            aor: "bob".into(),
            ruid: "r9".into()
        })
    );
}

#[test]
fn malformed_values_are_errors_not_panics() {
    let good = encode_op(&StoreOp::Upsert {
        aor: Arc::from("a"),
        binding: binding("r", 10),
    })
    .unwrap();
    assert!(decode_op(&[]).is_err());
    assert!(decode_op(&[2, 0x90]).unwrap_err().contains("version"));
    for cut in 1..good.len() {
        assert!(decode_op(&good[..cut]).is_err(), "truncated at {cut}");
    }
    // Garbage of every kind decodes to an error or to something, never a panic.
    let mut noisy = good.clone();
    for i in 1..noisy.len() {
        noisy[i] ^= 0x5a;
        let _ = decode_op(&noisy);
    }
    // A source with an unknown transport or a bad address is refused.
    let mut text = good.clone();
    // The MessagePack string "udp" (fixstr of 3), not the one inside
    // the contact.
    let at = text.windows(4).position(|w| w == b"\xa3udp").unwrap();
    text[at + 1..at + 4].copy_from_slice(b"xyz");
    assert!(decode_op(&text).unwrap_err().contains("transport"));
    // u64::MAX is not a deadline.
    let mut b = binding("r", 10);
    b.expires_at = PERMANENT - 1;
    let mut bytes = encode_op(&StoreOp::Upsert {
        aor: Arc::from("a"),
        binding: b,
    })
    .unwrap();
    let pos = bytes
        .windows(9)
        .position(|w| w == [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
        .unwrap();
    bytes[pos + 8] = 0xff;
    assert!(decode_op(&bytes).unwrap_err().contains("deadline"));
}

#[test]
fn feed_messages_round_trip_and_reject_garbage() {
    let a = encode_op(&StoreOp::Upsert {
        aor: Arc::from("a"),
        binding: binding("r1", 10),
    })
    .unwrap();
    let d = encode_op(&StoreOp::Delete {
        aor: Arc::from("a"),
        ruid: "r1".into(),
    })
    .unwrap();
    let msg = encode_feed("node-1", &[&a, &d]);
    let (node, ops) = decode_feed(&msg).unwrap();
    assert_eq!(node, "node-1");
    assert_eq!(ops, vec![&a[..], &d[..]]);
    let empty = encode_feed("n", &[]);
    assert!(decode_feed(&empty).unwrap().1.is_empty());
    assert!(decode_feed(&[]).is_err());
    assert!(decode_feed(&[9]).is_err());
    for cut in 1..msg.len() {
        assert!(decode_feed(&msg[..cut]).is_err(), "truncated at {cut}");
    }
    // A huge claimed count with no data is an error, not an allocation.
    let mut huge = vec![FEED_V1];
    rmp::encode::write_str(&mut huge, "n").unwrap();
    rmp::encode::write_array_len(&mut huge, u32::MAX).unwrap();
    assert!(decode_feed(&huge).is_err());
}

#[test]
fn cluster_nodes_output_gives_the_live_masters() {
    let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master,fail - 0 1426238316232 5 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
a1 [::1]:30006@31006 master - 0 0 6 connected
x :0@0 master,noaddr - 0 0 0 disconnected
garbage
";
    assert_eq!(
        parse_cluster_masters(text),
        [
            ("127.0.0.1".to_owned(), 30001),
            ("127.0.0.1".to_owned(), 30002),
            ("127.0.0.1".to_owned(), 30003),
            ("::1".to_owned(), 30006),
        ]
    );
}

#[test]
fn small_helpers() {
    assert!(version_at_least("7.0.15", (6, 2)));
    assert!(version_at_least("6.2.0", (6, 2)));
    assert!(!version_at_least("6.0.16", (6, 2)));
    assert!(!version_at_least("garbage", (6, 2)));
    assert_eq!(
        info_field("# Server\r\nredis_version:7.0.15\r\n", "redis_version"),
        Some("7.0.15")
    );
    assert_eq!(
        info_field("cluster_enabled:0\r\n", "cluster_enabled"),
        Some("0")
    );
    assert_eq!(info_field("x:1", "y"), None);
    assert_eq!(redact("redis://:secret@h:1/0"), "redis://***@h:1/0");
    assert_eq!(redact("redis://h:1"), "redis://h:1");
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    fill_random(&mut a);
    fill_random(&mut b);
    assert_ne!(a, b);
    let limiter = LogLimiter::default();
    assert_eq!(allow(&limiter), Some(0));
    assert_eq!(allow(&limiter), None);
    assert_eq!(allow(&limiter), None);
}

// ------------------------------------------------ against a real Redis

fn settings(url: &str, mode: StoreMode) -> Settings {
    Settings {
        url: url.to_owned(),
        mode,
        write_back_interval: Duration::from_millis(200),
        queue_size: 1000,
    }
}

/// A store and its table, preloaded and following, like main wires it.
async fn node(url: &str, mode: StoreMode) -> (Arc<RedisStore>, Arc<LocationTable>) {
    let store = Arc::new(RedisStore::open(settings(url, mode)).await.unwrap());
    let table = Arc::new(LocationTable::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    crate::usrloc::preload(&table, &dyn_store, unix_now())
        .await
        .unwrap();
    assert!(table.attach_store(dyn_store).is_ok());
    (store, table)
}

/// Edits `aor` as the registrar does, and waits for the commit.
async fn durably(
    table: &Arc<LocationTable>,
    aor: &str,
    f: impl FnOnce(&mut Vec<Binding>),
) -> Result<(), StoreError> {
    let edit = |bs: &mut Vec<Binding>| {
        f(bs);
        Ok::<_, ()>(Edit::new(()))
    };
    match table.update_durable(aor, unix_now(), edit) {
        Ok(((), Durability::Wait(confirm))) => confirm.outcome().await,
        Ok(((), other)) => panic!("a write-through change waits for its commit, got {other:?}"),
        Err(()) => unreachable!("the edit cannot fail"),
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Adds binding `ruid` to `aor` as the registrar would, and waits for
/// its commit.
async fn register(table: &Arc<LocationTable>, aor: &str, b: Binding) -> Result<(), StoreError> {
    durably(table, aor, |bs| bs.push(b)).await
}

fn ruids(table: &LocationTable, aor: &str) -> Vec<String> {
    let mut v: Vec<String> = table
        .lookup(aor, unix_now())
        .unwrap_or_default()
        .iter()
        .map(|b| b.ruid().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_bindings_through_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let (_sa, a) = node(&url, StoreMode::WriteThrough).await;
    let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
    let now = unix_now();
    register(&a, "alice", binding("r1", now + 60))
        .await
        .unwrap();
    register(&a, "alice", binding("r2", PERMANENT))
        .await
        .unwrap();
    eventually("alice on b", || ruids(&b, "alice") == ["r1", "r2"]).await;
    assert_eq!(
        b.lookup("alice", now)
            .unwrap()
            .iter()
            .find(|x| x.ruid() == "r1"),
        Some(&binding("r1", now + 60))
    );
    // Never echoed back: b wrote nothing, so Redis saw a's two SETs and
    // two PUBLISHes only (b applied a's messages without journaling).
    let mut raw = server.raw().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let calls = |name: &str| {
        info_field(&stats, &format!("cmdstat_{name}"))
            .and_then(|v| v.strip_prefix("calls="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    // Plus one `SET kamrs:epoch NX` per node at open.
    assert_eq!((calls("set"), calls("publish")), (2 + 2, 2), "{stats}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(binding_key("alice", "r1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "PTTL {pttl}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(binding_key("alice", "r2"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(pttl, -1, "permanent: no TTL");
    // A change on b reaches a.
    register(&b, "bob", binding("rb", now + 60)).await.unwrap();
    eventually("bob on a", || ruids(&a, "bob") == ["rb"]).await;
    // A third node started now preloads everything.
    let (sc, c) = node(&url, StoreMode::WriteThrough).await;
    assert_eq!(ruids(&c, "alice"), ["r1", "r2"]);
    assert_eq!(ruids(&c, "bob"), ["rb"]);
    let counts = sc.counts(unix_now()).await.unwrap();
    assert_eq!(
        counts,
        DbCounts {
            users: 2,
            contacts: 3,
            expired_contacts: 0
        }
    );
    // Removal (ul.rm) on a removes everywhere.
    assert!(a.remove("alice"));
    a.store().unwrap().flush().await.unwrap();
    eventually("alice gone on b and c", || {
        b.lookup("alice", unix_now()).is_none() && c.lookup("alice", unix_now()).is_none()
    })
    .await;
    let left: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("kamrs:loc:*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, [binding_key("bob", "rb").into_bytes()]);
    // A refresh replaces, a delete of one binding removes only it.
    register(&b, "bob", binding("rb2", now + 30)).await.unwrap();
    durably(&b, "bob", |bs| {
        bs.retain(|x| x.ruid() != "rb");
        bs[0].expires_at = now + 90;
        bs[0].last_modified += 1;
    })
    .await
    .unwrap();
    eventually("bob refreshed on a", || {
        a.lookup("bob", unix_now())
            .is_some_and(|v| v.len() == 1 && v[0].expires_at == now + 90)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_repairs_missed_changes_and_skips_bad_data() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let mut raw = server.raw().await;
    // Garbage next to a good value: preload keeps the good one.
    let good = encode_op(&StoreOp::Upsert {
        aor: Arc::from("carol"),
        binding: binding("rc", unix_now() + 60),
    })
    .unwrap();
    let _: () = redis::cmd("SET")
        .arg(binding_key("carol", "rc"))
        .arg(&good)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("kamrs:loc:{x}:y")
        .arg("not msgpack")
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("kamrs:loc:{x}:z")
        .arg(&[1u8, 0xc1][..])
        .query_async(&mut raw)
        .await
        .unwrap();
    let (sa, a) = node(&url, StoreMode::WriteThrough).await;
    assert_eq!(ruids(&a, "carol"), ["rc"]);
    assert_eq!(a.len(), 1);
    // Garbage on the feed is skipped, and the feed still works after.
    for junk in [
        &b"junk"[..],
        &[FEED_V1, 0xa1, b'n', 0x91, 0xc4, 0x01, 0xff][..],
        &[][..],
    ] {
        let _: () = redis::cmd("PUBLISH")
            .arg(FEED_CHANNEL)
            .arg(junk)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
    register(&b, "dave", binding("rd", unix_now() + 60))
        .await
        .unwrap();
    eventually("dave on a", || ruids(&a, "dave") == ["rd"]).await;
    // Changes a never heard of (written behind its back) are found by
    // a re-sync.
    let erin = encode_op(&StoreOp::Upsert {
        aor: Arc::from("erin"),
        binding: binding("re", unix_now() + 60),
    })
    .unwrap();
    let _: () = redis::cmd("SET")
        .arg(binding_key("erin", "re"))
        .arg(&erin)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(binding_key("carol", "rc"))
        .query_async(&mut raw)
        .await
        .unwrap();
    sa.shared.resync_wanted.notify_one();
    eventually("a re-synced", || {
        ruids(&a, "erin") == ["re"] && a.lookup("carol", unix_now()).is_none()
    })
    .await;
    assert_eq!(ruids(&a, "dave"), ["rd"]);
}

/// Redis emptied, and another node started meanwhile and wrote a new
/// `kamrs:epoch`: the marker is there again, but not the one this node
/// saw, so the loss is still noticed and the bindings written back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_epoch_written_by_another_node_still_counts_as_a_loss() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let mut raw = server.raw().await;
    let (sa, a) = node(&url, StoreMode::WriteThrough).await;
    register(&a, "hank", binding("rh", unix_now() + 60))
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    // What a node opening now on the empty Redis does.
    let _: () = redis::cmd("SET")
        .arg(EPOCH_KEY)
        .arg("a-later-node")
        .query_async(&mut raw)
        .await
        .unwrap();
    sa.shared.resync_wanted.notify_one();
    let key = binding_key("hank", "rh");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "hank was not written back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ruids(&a, "hank"), ["rh"]);
    // And it comes to know the marker it found, so the next re-sync is an
    // ordinary one. (A re-sync started before the test wrote that marker
    // may have written the node's own first; the one the test asked for
    // then replaces it.)
    eventually("the node remembers the marker it found", || {
        *lock(&sa.shared.epoch) == "a-later-node"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_commits_then_recovers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let port = server.port;
    let url = server.url();
    let (_sa, a) = node(&url, StoreMode::WriteThrough).await;
    let (_sb, b) = node(&url, StoreMode::WriteThrough).await;
    register(&a, "frank", binding("rf", unix_now() + 60))
        .await
        .unwrap();
    drop(server);
    let started = Instant::now();
    let err = register(&a, "frank", binding("rf2", unix_now() + 60))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Write(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    // Back, empty (no persistence): writes work again within the
    // backoff, and both tables re-sync to what Redis holds.
    let server = RedisServer::start_on(Some(port)).expect("restart");
    let deadline = Instant::now() + Duration::from_secs(10);
    // A new ruid each try, so every try is a change with a commit.
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match register(
            &a,
            "gina",
            binding(&format!("rg{attempt}"), unix_now() + 60),
        )
        .await
        {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("gina on b", || b.lookup("gina", unix_now()).is_some()).await;
    // Redis lost frank, but the nodes still held him: they write him
    // back (kamrs:epoch was gone) instead of forgetting him.
    let mut raw = server.raw().await;
    let key = binding_key("frank", "rf");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "frank was not written back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.lookup("frank", unix_now()).is_some());
    assert!(b.lookup("frank", unix_now()).is_some());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_back_batches_flushes_and_bounds_its_queue() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut s = settings(&server.url(), StoreMode::WriteBack);
    s.write_back_interval = Duration::from_secs(30);
    s.queue_size = 3;
    let store = Arc::new(RedisStore::open(s).await.unwrap());
    // What the table submits for a new binding of each AoR.
    let add = |aor: &str| {
        store.submit(vec![StoreOp::Upsert {
            aor: Arc::from(aor),
            binding: binding("r", unix_now() + 60),
        }])
    };
    let mut commits = Vec::new();
    for i in 0..3 {
        let c = add(&format!("u{i}"));
        assert!(c.refused().is_none());
        commits.push(c);
    }
    // Queue full: refused up front.
    assert_eq!(add("u9").refused(), Some(&StoreError::Overloaded));
    // Nothing written before the interval (30 s) or a flush: only the
    // epoch marker is there.
    let mut raw = server.raw().await;
    let n: usize = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(n, 1);
    tokio::time::timeout(Duration::from_secs(5), store.flush())
        .await
        .unwrap()
        .unwrap();
    for c in commits {
        c.await.unwrap();
    }
    let n: usize = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(n, 3 + 1);
    // The queue has room again.
    assert!(add("u10").refused().is_none());
    // Write-back with Redis down: the flush reports instead of hanging.
    drop(server);
    drop(add("u11"));
    let r = tokio::time::timeout(Duration::from_secs(10), store.flush())
        .await
        .unwrap();
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_what_it_cannot_use() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = RedisStore::open(settings(
        &format!("redis://127.0.0.1:{port}"),
        StoreMode::WriteThrough,
    ))
    .await
    .err()
    .unwrap();
    assert!(e.contains("unreachable"), "{e}");
    let e = RedisStore::open(settings(
        "rediss://:pw@127.0.0.1:1",
        StoreMode::WriteThrough,
    ))
    .await
    .err()
    .unwrap();
    assert!(e.contains("TLS") && !e.contains("pw"), "{e}");
    let e = RedisStore::open(settings("  ,", StoreMode::WriteThrough))
        .await
        .err()
        .unwrap();
    assert!(e.contains("no Redis URL"), "{e}");
    let Some(server) = RedisServer::start() else {
        return;
    };
    let two = format!("{},{}", server.url(), server.url());
    let e = RedisStore::open(settings(&two, StoreMode::WriteThrough))
        .await
        .err()
        .unwrap();
    assert!(e.contains("not a Redis Cluster"), "{e}");
}
