//! The Redis store end to end: real `redis-server`s started by
//! the test on free loopback ports, several real kamrs daemons sharing
//! them, REGISTERs over UDP and `kamrsctl` against each daemon.
//!
//! Skipped with a printed reason when `redis-server` (or, for the cluster
//! test, `redis-cli`) is missing, except under CI (`CI=true`), where that
//! is a failure: `.ci/run` installs them. Every server a test starts is
//! killed by its pid when the test ends.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{register, stat, CtlKamrs, Watch};
use kamrs_tests::{have, udp_client, udp_exchange, unique, Response, TempDir};

/// How long a change made on one node may take to show on another.
const PROPAGATION: Duration = Duration::from_secs(2);

/// A TCP port free right now on 127.0.0.1 whose cluster-bus twin
/// (port + 10000) is free too.
fn free_port() -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

// ------------------------------------------------------------------ Redis

/// A `redis-server` child, killed by its pid on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16, extra: &[&str]) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while resp(port, &["PING"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command; panics on a connection or protocol error.
    fn cmd(&self, args: &[&str]) -> Resp {
        resp(self.port, args).unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Keys matching `pattern` (KEYS: fine for a test's few keys).
    fn keys(&self, pattern: &str) -> Vec<String> {
        match self.cmd(&["KEYS", pattern]) {
            Resp::Array(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
                    _ => None,
                })
                .collect(),
            other => panic!("KEYS: {other:?}"),
        }
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

/// Sends one command in RESP over a fresh TCP connection and reads the
/// reply: a client independent of kamrs's, for checking what is in Redis.
fn resp(port: u16, args: &[&str]) -> Result<Resp, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    read_resp(&mut BufReader::new(s))
}

fn read_resp(r: &mut impl BufRead) -> Result<Resp, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at_checked(1).ok_or("empty reply")?;
    let int = || {
        rest.parse::<i64>()
            .map_err(|_| format!("bad RESP line {line:?}"))
    };
    Ok(match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(int()?),
        "$" => match int()? {
            -1 => Resp::Bulk(None),
            n => {
                let mut buf = vec![0; usize::try_from(n).map_err(|_| "bad length")? + 2];
                r.read_exact(&mut buf).map_err(|e| e.to_string())?;
                buf.truncate(buf.len() - 2);
                Resp::Bulk(Some(buf))
            }
        },
        "*" => match int()? {
            -1 => Resp::Array(Vec::new()),
            n => (0..n)
                .map(|_| read_resp(r))
                .collect::<Result<_, _>>()
                .map(Resp::Array)?,
        },
        _ => return Err(format!("bad RESP line {line:?}")),
    })
}

// ---------------------------------------------------------------- kamrs

/// A kamrs daemon with `[store] backend = "redis"` at `url`.
fn node(url: &str, top_level: &str, store_keys: &str) -> CtlKamrs {
    CtlKamrs::start(
        top_level,
        &format!("[store]\nbackend = \"redis\"\nurl = \"{url}\"\n{store_keys}"),
    )
}

/// A phone: one UDP socket, one Call-ID per AoR, counting CSeq.
struct Phone {
    sock: UdpSocket,
    call_id: String,
    cseq: u32,
}

impl Phone {
    fn to(k: &CtlKamrs) -> Phone {
        Phone {
            sock: udp_client(k.udp()),
            call_id: format!("{}@redis-e2e", unique()),
            cseq: 0,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn contact(&self, aor: &str) -> String {
        format!("sip:{aor}@127.0.0.1:{}", self.port())
    }

    fn send(&mut self, aor: &str, contact: Option<&str>, expires: Option<u32>) -> Response {
        self.cseq += 1;
        let msg = register(
            aor,
            contact,
            expires,
            &self.call_id,
            self.cseq,
            self.port(),
            "redis-e2e",
        );
        udp_exchange(&self.sock, msg)
    }

    /// REGISTERs its contact for `aor` for `expires` s; asserts the 200.
    fn register(&mut self, aor: &str, expires: u32) {
        let contact = self.contact(aor);
        let r = self.send(aor, Some(&contact), Some(expires));
        assert_eq!(r.status, 200, "{}", r.raw);
    }

    /// The contact URIs of `aor` by a SIP query (REGISTER without Contact).
    fn query(&mut self, aor: &str) -> Vec<String> {
        let r = self.send(aor, None, None);
        assert_eq!(r.status, 200, "{}", r.raw);
        r.values("Contact")
            .iter()
            .filter_map(|c| {
                c.split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(uri, _)| uri.to_owned())
            })
            .collect()
    }
}

/// Polls `f` until it holds, for at most `limit`.
fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kamrsctl ul.lookup` of `aor` on `k`: the JSON, or None if not found.
fn ctl_lookup(k: &CtlKamrs, aor: &str) -> Option<String> {
    let run = k.ctl(&["--json", "ul.lookup", aor]);
    match run.code() {
        Some(0) => Some(run.stdout),
        Some(1) => None,
        _ => panic!("kamrsctl ul.lookup {aor}: {run:?}"),
    }
}

// ----------------------------------------------------------------- tests

#[test]
fn nodes_sharing_one_redis_see_each_others_bindings() {
    if !have("redis-server") {
        return;
    }
    let redis = RedisServer::start(free_port(), &[]);
    let url = redis.url();
    let a = node(&url, "", "");
    // b answers before writing (write-back), so its changes travel later.
    let b = node(
        &url,
        "",
        "mode = \"write-back\"\nwrite_back_interval = 100\n",
    );
    let (mut pa, mut pb) = (Phone::to(&a), Phone::to(&b));
    let alice = format!("alice{}", unique());
    let contact = pa.contact(&alice);

    // Registered on a: seen by a SIP query and by kamrsctl on b.
    pa.register(&alice, 3600);
    within(PROPAGATION, "alice on b by SIP query", || {
        pb.query(&alice) == [contact.clone()]
    });
    let json = ctl_lookup(&b, &alice).expect("ul.lookup on b finds alice");
    assert!(json.contains(&contact), "{json}");
    let key_pattern = format!("kamrs:loc:{{{alice}}}:*");
    let keys = redis.keys(&key_pattern);
    assert_eq!(keys.len(), 1);
    // Compact: a whole binding in a few hundred bytes.
    match redis.cmd(&["STRLEN", &keys[0]]) {
        Resp::Int(n) => {
            eprintln!("a binding stored in Redis: {n} bytes");
            assert!((100..400).contains(&n), "{n} bytes");
        }
        other => panic!("STRLEN: {other:?}"),
    }

    // Registered on b (write-back): seen on a.
    let bob = format!("bob{}", unique());
    let bob_contact = pb.contact(&bob);
    pb.register(&bob, 3600);
    within(PROPAGATION, "bob on a", || {
        pa.query(&bob) == [bob_contact.clone()]
    });

    // A node started later sees every live binding at once.
    let c = node(&url, "", "");
    let mut pc = Phone::to(&c);
    assert_eq!(pc.query(&alice), std::slice::from_ref(&contact));
    assert_eq!(pc.query(&bob), std::slice::from_ref(&bob_contact));
    assert!(ctl_lookup(&c, &bob).is_some());

    // Unregistered (expires=0) on b: gone on a and c.
    let r = pb.send(&alice, Some(&contact), Some(0));
    assert_eq!(r.status, 200, "{}", r.raw);
    within(PROPAGATION, "alice gone on a and c", || {
        pa.query(&alice).is_empty() && pc.query(&alice).is_empty()
    });
    assert!(ctl_lookup(&a, &alice).is_none());
    within(PROPAGATION, "alice gone from Redis", || {
        redis.keys(&key_pattern).is_empty()
    });

    // ul.rm on a: gone on b and c, and from Redis.
    b.ctl_ok(&["ul.rm", &bob]);
    within(PROPAGATION, "bob gone on a and c", || {
        ctl_lookup(&a, &bob).is_none() && pc.query(&bob).is_empty()
    });
    within(PROPAGATION, "bob gone from Redis", || {
        redis.keys(&format!("kamrs:loc:{{{bob}}}:*")).is_empty()
    });
    assert!(pb.query(&bob).is_empty());
    // Nothing of anyone's echoed back or left over.
    assert!(
        redis.keys("kamrs:loc:*").is_empty(),
        "{:?}",
        redis.keys("*")
    );
}

/// The next event of `aor` that `w` reports within `secs`, skipping others.
fn next_event_of(w: &Watch, aor: &str, secs: u64) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(e) = w.next(1) {
            if e["AoR"] == aor {
                return Some(e);
            }
        }
    }
    None
}

#[test]
fn another_nodes_changes_are_remote_events() {
    if !have("redis-server") {
        return;
    }
    let redis = RedisServer::start(free_port(), &[]);
    let url = redis.url();
    let a = node(&url, "", "");
    let b = node(&url, "", "");
    let w = Watch::start(&b);
    let mut pa = Phone::to(&a);
    let roamer = format!("roamer{}", unique());
    let contact = pa.contact(&roamer);
    // Refreshed on a until b's watcher reports it: then the watcher is
    // subscribed (its start races the first REGISTER).
    let mut first = None;
    for _ in 0..20 {
        pa.register(&roamer, 600);
        first = next_event_of(&w, &roamer, 1);
        if first.is_some() {
            break;
        }
    }
    let first = first.expect("b's ul.watch reports a's registration within 20 s");
    assert_eq!(first["Event"], "remote", "{first}");
    assert_eq!(first["Contact"]["Address"], contact.as_str(), "{first}");
    assert!(
        first["Contact"]["Expires"]
            .as_u64()
            .is_some_and(|e| e > 500),
        "{first}"
    );
    // Unregistered on a: a remote removal on b, with Expires 0, after
    // the remote refreshes still on their way.
    let r = pa.send(&roamer, Some(&contact), Some(0));
    assert_eq!(r.status, 200, "{}", r.raw);
    // (A removal shows the binding as it was: its last refresh's CSeq.)
    let gone = loop {
        let e = next_event_of(&w, &roamer, 10).expect("b reports the removal");
        assert_eq!(e["Event"], "remote", "{e}");
        if e["Contact"]["Expires"] == 0 {
            break e;
        }
    };
    assert_eq!(gone["Contact"]["Address"], contact.as_str(), "{gone}");
    assert_eq!(gone["Contact"]["Expires"], 0, "{gone}");
    assert!(ctl_lookup(&b, &roamer).is_none());
    // A change made on b itself is b's own event, not a remote one.
    let mut pb = Phone::to(&b);
    pb.register(&roamer, 600);
    let own = next_event_of(&w, &roamer, 10).expect("b reports its own registration");
    assert_eq!(own["Event"], "registered", "{own}");
}

#[test]
fn redis_ttl_removes_bindings_even_when_every_node_was_killed() {
    if !have("redis-server") {
        return;
    }
    let redis = RedisServer::start(free_port(), &[]);
    let url = redis.url();
    let a = node(&url, "min_expires = 1", "");
    let b = node(&url, "min_expires = 1", "");
    let mut pa = Phone::to(&a);
    let short = format!("short{}", unique());
    let long = format!("long{}", unique());
    pa.register(&short, 2);
    pa.register(&long, 3600);
    let short_keys = format!("kamrs:loc:{{{short}}}:*");
    let keys = redis.keys(&short_keys);
    assert_eq!(keys.len(), 1, "{:?}", redis.keys("*"));
    match redis.cmd(&["PTTL", &keys[0]]) {
        Resp::Int(ms) => assert!(ms > 0 && ms <= 2000, "PTTL {ms}"),
        other => panic!("PTTL: {other:?}"),
    }
    // Every node dies without a word.
    let mut a = a;
    let mut b = b;
    a.kamrs.signal(libc::SIGKILL);
    b.kamrs.signal(libc::SIGKILL);
    assert!(a.kamrs.wait_exit(Duration::from_secs(5)).is_some());
    assert!(b.kamrs.wait_exit(Duration::from_secs(5)).is_some());
    // Redis drops the short one by itself; the long one stays.
    within(
        Duration::from_secs(5),
        "short binding expired in Redis",
        || redis.keys(&short_keys).is_empty(),
    );
    assert_eq!(redis.keys(&format!("kamrs:loc:{{{long}}}:*")).len(), 1);
    // A node started now has the long one and not the short one.
    let c = node(&url, "min_expires = 1", "");
    let mut pc = Phone::to(&c);
    assert_eq!(pc.query(&long).len(), 1);
    assert!(pc.query(&short).is_empty());
}

#[test]
fn write_through_answers_500_while_redis_is_down_and_recovers() {
    if !have("redis-server") {
        return;
    }
    let port = free_port();
    let redis = RedisServer::start(port, &[]);
    let url = redis.url();
    let a = node(&url, "", "");
    let b = node(&url, "", "");
    let (mut pa, mut pb) = (Phone::to(&a), Phone::to(&b));
    let before = format!("before{}", unique());
    pa.register(&before, 3600);

    redis.stop();
    let down = format!("down{}", unique());
    let contact = pa.contact(&down);
    let r = pa.send(&down, Some(&contact), Some(3600));
    assert_eq!(r.status, 500, "{}", r.raw);
    // Lookups still work from memory meanwhile.
    assert_eq!(pb.query(&before).len(), 1);
    let log = a
        .kamrs
        .log_when(|l| l.contains("redis store: writing to") && l.contains("REGISTERs get 500"));
    assert!(
        log.contains("redis store: writing to") && log.contains("REGISTERs get 500"),
        "no clear Redis error logged:\n{log}"
    );

    // Back (empty: no persistence): REGISTERs get 200 again, and the other
    // node hears of them.
    let redis = RedisServer::start(port, &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = pa.send(&down, Some(&contact), Some(3600));
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 500, "{}", r.raw);
        assert!(Instant::now() < deadline, "no 200 after Redis came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    within(PROPAGATION * 3, "the new binding on b", || {
        pb.query(&down) == [contact.clone()]
    });
    assert_eq!(redis.keys(&format!("kamrs:loc:{{{down}}}:*")).len(), 1);
    let log = a.kamrs.log_when(|l| l.contains("works again"));
    assert!(log.contains("works again"), "recovery not logged:\n{log}");
}

/// A Redis without persistence that restarts comes back empty. The nodes
/// must not copy that empty set into their tables (every phone would be
/// unreachable until it re-registers): they notice the loss by the
/// missing `kamrs:epoch` key and write back what they hold.
#[test]
fn bindings_are_written_back_when_redis_restarts_empty() {
    if !have("redis-server") {
        return;
    }
    let port = free_port();
    let redis = RedisServer::start(port, &[]);
    let url = redis.url();
    let a = node(&url, "", "");
    let b = node(&url, "", "");
    let (mut pa, mut pb) = (Phone::to(&a), Phone::to(&b));
    let aors: Vec<String> = (0..5).map(|i| format!("kept{i}x{}", unique())).collect();
    for aor in &aors {
        pa.register(aor, 3600);
    }
    within(PROPAGATION, "b sees a's bindings", || {
        aors.iter().all(|x| pb.query(x).len() == 1)
    });
    assert_eq!(redis.keys("kamrs:epoch").len(), 1, "no epoch key at start");

    redis.stop();
    let redis = RedisServer::start(port, &[]);
    within(
        Duration::from_secs(20),
        "the bindings back in Redis",
        || {
            aors.iter()
                .all(|x| redis.keys(&format!("kamrs:loc:{{{x}}}:*")).len() == 1)
                && redis.keys("kamrs:epoch").len() == 1
        },
    );
    // Neither node forgot them meanwhile or afterwards.
    for x in &aors {
        assert_eq!(pa.query(x).len(), 1, "a lost {x}");
        assert_eq!(pb.query(x).len(), 1, "b lost {x}");
    }
    // The log writer writes in batches: the line may come a moment later.
    let logged = |log: &str| log.contains("lost its data") && log.contains("appendonly yes");
    let log = || format!("{}{}", a.kamrs.stderr(), b.kamrs.stderr());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logged(&log()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = log();
    assert!(logged(&log), "the loss is not logged loudly:\n{log}");
}

/// Three masters on loopback ports, `redis-cli --cluster create`.
struct Cluster {
    nodes: Vec<RedisServer>,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = TempDir::new("redis-cluster");
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("nodes-{port}.conf"));
            nodes.push(RedisServer::start(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf.display().to_string(),
                    "--cluster-node-timeout",
                    "5000",
                    "--dir",
                    &dir.path().display().to_string(),
                ],
            ));
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { nodes, _dir: dir };
        within(
            Duration::from_secs(20),
            "cluster_state:ok on every node",
            || {
                cluster.nodes.iter().all(|n| {
                    matches!(n.cmd(&["CLUSTER", "INFO"]), Resp::Bulk(Some(b))
                    if String::from_utf8_lossy(&b).contains("cluster_state:ok"))
                })
            },
        );
        cluster
    }

    /// The seed list kamrs gets: two of the three nodes (it finds the
    /// third itself).
    fn url(&self) -> String {
        format!("{},{}", self.nodes[0].url(), self.nodes[1].url())
    }

    fn keys_per_node(&self, pattern: &str) -> Vec<usize> {
        self.nodes.iter().map(|n| n.keys(pattern).len()).collect()
    }
}

#[test]
fn nodes_share_a_redis_cluster() {
    if !have("redis-server") || !have("redis-cli") {
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.url();
    let a = node(&url, "", "");
    let b = node(&url, "", "");
    assert!(
        a.kamrs
            .log_when(|l| l.contains("redis store: cluster"))
            .contains("redis store: cluster"),
        "kamrs did not see a cluster:\n{}",
        a.kamrs.stderr()
    );
    let (mut pa, mut pb) = (Phone::to(&a), Phone::to(&b));
    let prefix = format!("cl{}x", unique());
    let aors: Vec<String> = (0..30).map(|i| format!("{prefix}{i}")).collect();
    for aor in &aors {
        pa.register(aor, 3600);
    }
    // Spread over the masters by hash slot, each AoR whole on one node.
    let per_node = cluster.keys_per_node(&format!("kamrs:loc:{{{prefix}*"));
    assert_eq!(per_node.iter().sum::<usize>(), aors.len(), "{per_node:?}");
    assert!(
        per_node.iter().filter(|&&n| n > 0).count() >= 2,
        "{per_node:?}"
    );
    for aor in &aors {
        let contact = pa.contact(aor);
        within(PROPAGATION, "binding on b", || {
            pb.query(aor) == [contact.clone()]
        });
    }
    // A late node reads every master.
    let c = node(&url, "", "");
    let mut pc = Phone::to(&c);
    for aor in &aors {
        assert_eq!(pc.query(aor).len(), 1, "{aor} on c");
    }
    // ul.rm on b removes everywhere.
    b.ctl_ok(&["ul.rm", &aors[0]]);
    within(PROPAGATION, "removed on a and c", || {
        pa.query(&aors[0]).is_empty() && pc.query(&aors[0]).is_empty()
    });
    // kamrsctl works against any node and sees the same table.
    let json = ctl_lookup(&c, &aors[1]).expect("ul.lookup on c");
    assert!(json.contains(&pa.contact(&aors[1])), "{json}");
    assert_eq!(
        cluster
            .keys_per_node(&format!("kamrs:loc:{{{prefix}*"))
            .iter()
            .sum::<usize>(),
        aors.len() - 1
    );
}

/// Nodes sharing Redis each ping only the bindings they received
/// (`server_id`): the other node has the binding too, and could reach it
/// from its own UDP socket, but must leave it to the node holding its flow,
/// or every phone would be pinged once per node.
#[test]
fn only_the_node_holding_a_binding_pings_it() {
    if !have("redis-server") {
        return;
    }
    let redis = RedisServer::start(free_port(), &[]);
    let url = redis.url();
    let keepalive = |id: u32| format!("ka_mode = 1\nka_interval = 1\nserver_id = {id}");
    let a = node(&url, &keepalive(1), "");
    let b = node(&url, &keepalive(2), "");
    let mut phone = Phone::to(&a);
    let alice = format!("alice{}", unique());
    phone.register(&alice, 3600);
    within(PROPAGATION, "alice on b, marked as a's", || {
        ctl_lookup(&b, &alice).is_some_and(|j| {
            let v: serde_json::Value = serde_json::from_str(&j).unwrap();
            v["Contacts"][0]["Contact"]["Server-Id"] == 1
        })
    });

    // Three pings from a, each from a's SIP socket; by then b has had as
    // many rounds with the binding in its table.
    phone
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pings = 0;
    let mut buf = [0u8; 4096];
    while pings < 3 {
        assert!(
            Instant::now() < deadline,
            "only {pings} pings from a in 10 s"
        );
        let Ok((n, from)) = phone.sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("OPTIONS ") {
            assert_eq!(from, a.udp(), "a ping from another node: {text}");
            pings += 1;
        }
    }
    assert!(stat(&a, "usrloc:ka_sent") >= 3);
    assert_eq!(stat(&b, "usrloc:ka_sent"), 0);
    assert_eq!(stat(&b, "usrloc:ka_unsent"), 0);
}
