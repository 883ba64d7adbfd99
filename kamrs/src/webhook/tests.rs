use super::*;
use crate::usrloc::{Binding, Cause};

#[test]
fn webhook_urls_are_http_with_a_host() {
    let t = Target::parse("http://127.0.0.1:8080/kamrs/events?node=a").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
    assert_eq!(t.authority, "127.0.0.1:8080");
    assert_eq!(t.path_and_query, "/kamrs/events?node=a");
    let t = Target::parse("http://hooks.example.com").unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.path_and_query.as_str()),
        ("hooks.example.com", 80, "/")
    );
    let t = Target::parse("http://[::1]:9000/e").unwrap();
    assert_eq!(
        (t.host.as_str(), t.authority.as_str()),
        ("::1", "[::1]:9000")
    );
    assert_eq!(t.to_string(), "http://[::1]:9000/e");
    // A key in the query is used, never logged.
    let t = Target::parse("http://127.0.0.1:8080/e?key=s3cret").unwrap();
    assert_eq!(t.path_and_query, "/e?key=s3cret");
    assert_eq!(t.to_string(), "http://127.0.0.1:8080/e?…");
    for (bad, says) in [
        ("https://hooks.example.com/", "https"),
        ("ftp://x/", "not an http"),
        ("hooks.example.com/x", "URL"),
        ("http://user:pw@hooks.example.com/", "webhook_token_file"),
        ("http:///x", "URL"),
        ("not a url", "URL"),
        ("http://127.0.0.1:80800/", "not a port"),
        ("http://127.0.0.1:0/", "not a port"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

fn shared(queue: usize, batch: usize) -> Shared {
    Shared {
        settings: Settings {
            target: Target::parse("http://127.0.0.1:9/").unwrap(),
            token: None,
            batch,
            queue,
            timeout: Duration::from_secs(1),
            nat_bit: 0,
        },
        queue: Mutex::new(Queue::default()),
        wake: Notify::new(),
        stats: Arc::new(CoreStats::default()),
        fail_log: LogLimiter::new(),
    }
}

fn event(seq: u64) -> Arc<Event> {
    Arc::new(Event {
        seq,
        at_us: 1_000_000 * seq,
        cause: Cause::Registered,
        aor: Arc::from("alice"),
        binding: Binding::for_test(&format!("sip:alice@192.0.2.1:{}", 5000 + seq), u64::MAX - 1),
        gone: false,
        rendered: Default::default(),
    })
}

#[test]
fn a_full_queue_drops_the_oldest_and_says_so_in_the_next_batch() {
    let s = shared(3, 2);
    for seq in 1..=5 {
        push(&s, event(seq));
    }
    assert_eq!(s.stats().dropped.load(Ordering::Relaxed), 2);
    assert_eq!(s.stats().queued.load(Ordering::Relaxed), 3);
    let b = take(&s).unwrap();
    assert_eq!(b.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(b.lost, 2);
    let json: serde_json::Value = serde_json::from_slice(&body(&b, 0)).unwrap();
    assert_eq!(json[0], serde_json::json!({"Event": "lagged", "Lost": 2}));
    assert_eq!(json[1]["Event"], "registered");
    assert_eq!(json[1]["Seq"], 3);
    assert_eq!(json[1]["AoR"], "alice");
    assert_eq!(json[2]["Contact"]["Address"], "sip:alice@192.0.2.1:5004");
    assert_eq!(json.as_array().unwrap().len(), 3);
    // Still queued until delivered; a failure would send the same again.
    assert_eq!(take(&s).unwrap().events.len(), 2);
    delivered(&s, &b);
    let rest = take(&s).unwrap();
    assert_eq!(rest.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [5]);
    assert_eq!(rest.lost, 0, "the drops were told once");
    delivered(&s, &rest);
    assert!(take(&s).is_none());
    assert_eq!(s.stats().queued.load(Ordering::Relaxed), 0);
}

#[test]
fn events_dropped_while_a_batch_was_out_are_not_lost_twice() {
    let s = shared(2, 2);
    push(&s, event(1));
    push(&s, event(2));
    let b = take(&s).unwrap();
    // While it is out, two more arrive and push its events out.
    push(&s, event(3));
    push(&s, event(4));
    delivered(&s, &b);
    let next = take(&s).unwrap();
    assert_eq!(
        next.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4]
    );
    // 1 and 2 were dropped from the queue but delivered anyway; the
    // receiver is told of the two drops (it can see from Seq that it has
    // them): better told too much than too little.
    assert_eq!(next.lost, 2);
}

#[test]
fn only_busy_and_timeout_client_errors_are_retried() {
    assert!(retried(http::StatusCode::TOO_MANY_REQUESTS));
    assert!(retried(http::StatusCode::REQUEST_TIMEOUT));
    assert!(!retried(http::StatusCode::BAD_REQUEST));
    assert!(!retried(http::StatusCode::UNAUTHORIZED));
}
