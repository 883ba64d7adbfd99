//! `[events] webhook` end to end: a real HTTP receiver on loopback gets
//! the location table's events as JSON arrays, in order, with the bearer
//! token; a failed POST is sent again; a receiver that hangs costs the
//! REGISTERs nothing, its queue stays bounded, what was dropped is counted
//! and told to the receiver once it answers again. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use kamrs_tests::ctl::{a_phones_life, register_many, stat, CtlKamrs};
use kamrs_tests::{udp_client, TempDir};
use serde_json::Value;

/// One POST the receiver got.
struct Post {
    path: String,
    headers: Vec<(String, String)>,
    events: Vec<Value>,
    /// The status it was answered with.
    answered: u16,
}

impl Post {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 receiver: answers each POST with what `status` holds
/// (0: never answer, hold the connection) and reports it on a channel.
struct Receiver {
    port: u16,
    posts: mpsc::Receiver<Post>,
    status: Arc<AtomicU32>,
}

impl Receiver {
    fn start(first_status: u32) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU32::new(first_status));
        let (tx, posts) = mpsc::channel();
        let shared = Arc::clone(&status);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                let status = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &tx, &status));
            }
        });
        Receiver {
            port,
            posts,
            status,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn next(&self, secs: u64) -> Option<Post> {
        self.posts.recv_timeout(Duration::from_secs(secs)).ok()
    }
}

/// Serves one connection, request after request, until it closes.
fn serve(stream: TcpStream, tx: &mpsc::Sender<Post>, status: &AtomicU32) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answered = status.load(Ordering::SeqCst);
        let events = serde_json::from_slice::<Vec<Value>>(&body).unwrap_or_else(|e| {
            panic!("not a JSON array ({e}): {}", String::from_utf8_lossy(&body))
        });
        let _ = tx.send(Post {
            path,
            headers,
            events,
            answered: answered as u16,
        });
        if answered == 0 {
            // Hang: read nothing more, answer nothing, until closed.
            let mut sink = [0u8; 1024];
            while reader.get_mut().read(&mut sink).unwrap_or(0) > 0 {}
            return;
        }
        let reply = format!("HTTP/1.1 {answered} X\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A token file in `dir`: (token, path).
fn token_file(dir: &TempDir) -> (String, String) {
    let token = "webhook-token-0123456789abcdef".to_owned();
    let path = dir.path().join("webhook.token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (token, path.display().to_string())
}

#[test]
fn events_are_posted_in_order_with_the_token_and_a_failed_post_is_sent_again() {
    let receiver = Receiver::start(503);
    let dir = TempDir::new("webhook");
    let (token, token_path) = token_file(&dir);
    let k = CtlKamrs::start(
        "min_expires = 1",
        &format!(
            "[events]\nwebhook = \"{}\"\nwebhook_token_file = \"{token_path}\"\n",
            receiver.url()
        ),
    );
    let (alice, contact) = a_phones_life(k.udp());
    // The first POST is answered 503; from then on 200.
    let first = receiver.next(10).expect("kamrs POSTs the first events");
    assert_eq!(first.answered, 503);
    receiver.status.store(200, Ordering::SeqCst);
    assert_eq!(first.path, "/hook");
    assert_eq!(
        first.header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(
        first
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        first.headers
    );
    let first_seq = first.events[0]["Seq"].clone();
    let mut by_seq = std::collections::BTreeMap::new();
    let mut retried = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while by_seq.len() < 5 {
        assert!(Instant::now() < deadline, "got only {by_seq:?}");
        let Some(post) = receiver.next(5) else {
            continue;
        };
        assert_eq!(post.answered, 200);
        if post.events[0]["Seq"] == first_seq {
            // The failed batch, sent again from its first event.
            retried = true;
        }
        for e in post.events {
            assert_eq!(e["AoR"], alice.as_str(), "{e}");
            assert_eq!(e["Contact"]["Address"], contact.as_str(), "{e}");
            by_seq.insert(
                e["Seq"].as_u64().unwrap(),
                e["Event"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert!(retried, "the batch answered 503 was not sent again");
    let events: Vec<&str> = by_seq.values().map(String::as_str).collect();
    assert_eq!(
        events,
        [
            "registered",
            "refreshed",
            "unregistered",
            "registered",
            "expired"
        ]
    );
    // The last 200 may still be on its way to kamrs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(&k, "events:webhook_sent") < 5 {
        assert!(Instant::now() < deadline, "the deliveries are not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stat(&k, "events:webhook_sent"), 5);
    assert_eq!(stat(&k, "events:webhook_failures"), 1);
    assert_eq!(stat(&k, "events:webhook_dropped"), 0);
    assert_eq!(stat(&k, "events:webhook_queued"), 0);
}

#[test]
fn a_hanging_receiver_costs_registrations_nothing_and_drops_are_counted_and_told() {
    let receiver = Receiver::start(0);
    let k = CtlKamrs::start(
        "",
        &format!(
            "[events]\nwebhook = \"{}\"\nwebhook_queue = 5\nwebhook_batch = 3\nwebhook_timeout = 1\n",
            receiver.url()
        ),
    );
    let sock = udp_client(k.udp());
    assert_eq!(register_many(&sock, "first", 0..1, 1, 600, 1), 1);
    let hung = receiver.next(10).expect("kamrs POSTs the first event");
    assert_eq!(hung.answered, 0);
    // Every REGISTER is answered while the receiver hangs.
    let answered = register_many(&sock, "hang", 0..50, 10, 600, 1);
    assert_eq!(answered, 50);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(&k, "events:webhook_dropped") < 46 {
        assert!(Instant::now() < deadline, "drops not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Exactly: 51 events through a queue of 5.
    assert_eq!(stat(&k, "events:webhook_dropped"), 46);
    assert_eq!(stat(&k, "events:webhook_queued"), 5);
    // The receiver answers again: the next batch starts by telling it.
    receiver.status.store(200, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(40);
    let told = loop {
        assert!(
            Instant::now() < deadline,
            "no batch after the receiver came back"
        );
        let Some(post) = receiver.next(5) else {
            continue;
        };
        if post.answered == 200 {
            break post;
        }
    };
    assert_eq!(told.events[0]["Event"], "lagged", "{:?}", told.events);
    assert_eq!(told.events[0]["Lost"], 46, "{:?}", told.events);
    assert_eq!(told.events.len(), 4, "the lag notice and a batch of 3");
    assert!(stat(&k, "events:webhook_failures") >= 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(&k, "events:webhook_queued") > 0 {
        assert!(Instant::now() < deadline, "the queue did not empty");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stat(&k, "events:webhook_sent"), 5);
}
