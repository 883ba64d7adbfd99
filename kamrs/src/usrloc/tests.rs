use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::*;

fn binding(contact: &str, expires_at: u64) -> Binding {
    Binding::for_test(contact, expires_at)
}

fn counts(t: &LocationTable) -> (u64, u64, u64) {
    let s = t.stats();
    (
        s.users.load(Ordering::Relaxed),
        s.contacts.load(Ordering::Relaxed),
        s.expired.load(Ordering::Relaxed),
    )
}

#[test]
fn add_refresh_remove_keep_counters() {
    let t = LocationTable::new();
    t.update("alice", 100, |b| b.push(binding("sip:a@1", 200)));
    t.update("alice", 100, |b| b.push(binding("sip:a@2", 300)));
    t.update("bob", 100, |b| b.push(binding("sip:b@1", 200)));
    assert_eq!(counts(&t), (2, 3, 0));
    t.update("alice", 150, |b| b.retain(|x| x.contact() != "sip:a@1"));
    assert_eq!(counts(&t), (2, 2, 0));
    t.update("alice", 150, Vec::clear);
    assert_eq!(counts(&t), (1, 1, 0));
    assert!(t.lookup("alice", 150).is_none());
    assert!(t.remove("bob"));
    assert!(!t.remove("bob"));
    assert_eq!(counts(&t), (0, 0, 0));
    // A query on an unknown AoR leaves nothing behind.
    t.update("carol", 150, |b| assert!(b.is_empty()));
    assert_eq!(counts(&t), (0, 0, 0));
    assert!(t.lookup("carol", 150).is_none());
}

#[test]
fn expiry_follows_the_index() {
    let t = LocationTable::new();
    t.update("a", 0, |b| b.push(binding("sip:a@1", 10)));
    t.update("a", 0, |b| b.push(binding("sip:a@2", 20)));
    t.update("b", 0, |b| b.push(binding("sip:b@1", 15)));
    t.update("p", 0, |b| b.push(binding("sip:p@1", PERMANENT)));
    assert_eq!(t.purge_due(9), Some(10));
    assert_eq!(counts(&t), (3, 4, 0));
    assert_eq!(t.purge_due(10), Some(15));
    assert_eq!(counts(&t), (3, 3, 1));
    assert_eq!(t.lookup("a", 10).unwrap().len(), 1);
    // Refresh b later: its old deadline fires, finds nothing, reschedules.
    t.update("b", 12, |b| b[0].expires_at = 40);
    assert_eq!(t.purge_due(15), Some(20));
    assert_eq!(counts(&t), (3, 3, 1));
    assert_eq!(t.purge_due(25), Some(40));
    assert_eq!(counts(&t), (2, 2, 2));
    assert_eq!(t.purge_due(1000), None);
    assert_eq!(counts(&t), (1, 1, 3), "the permanent binding stays");
    assert!(t.lookup("p", u64::MAX - 1).is_some());
}

#[test]
fn an_earlier_deadline_is_scheduled_and_expired_bindings_are_invisible() {
    let t = LocationTable::new();
    t.update("a", 0, |b| b.push(binding("sip:a@1", 100)));
    t.update("a", 0, |b| b.push(binding("sip:a@2", 5)));
    assert_eq!(t.purge_due(0), Some(5));
    // Before the purger runs, lookups and updates already ignore it.
    assert_eq!(t.lookup("a", 6).unwrap().len(), 1);
    t.update("a", 6, |b| assert_eq!(b.len(), 1));
    assert_eq!(counts(&t), (1, 1, 1));
}

#[tokio::test]
async fn the_expiry_task_wakes_for_a_new_earlier_deadline() {
    let t = Arc::new(LocationTable::new());
    let task = tokio::spawn(t.clone().run_expiry());
    let now = unix_now();
    t.update("late", now, |b| b.push(binding("sip:l@1", now + 3600)));
    t.update("soon", now, |b| b.push(binding("sip:s@1", now + 1)));
    // Bounded wait: the binding must be purged within ~2 s of its deadline.
    let mut purged = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if t.stats().expired.load(Ordering::Relaxed) == 1 {
            purged = true;
            break;
        }
    }
    task.abort();
    assert!(purged, "the expiry task did not purge the due binding");
    assert_eq!(counts(&t), (1, 1, 1));
}

#[test]
fn concurrent_updates_keep_exact_counts() {
    let t = Arc::new(LocationTable::new());
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let aor = format!("u{}", i % 500);
                    let contact = format!("sip:{n}@{i}");
                    t.update(&aor, 0, |b| {
                        b.push(binding(&contact, 1000));
                        if b.len() > 3 {
                            b.remove(0);
                        }
                    });
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let (users, contacts, _) = counts(&t);
    assert_eq!(users, 500);
    let real: usize = (0..500)
        .map(|i| t.lookup(&format!("u{i}"), 0).map_or(0, |v| v.len()))
        .sum();
    assert_eq!(contacts as usize, real);
}

/// A store that records what it is told.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<crate::usrloc::persist::StoreOp>>);

impl crate::usrloc::persist::Store for Recorder {
    fn submit(&self, ops: Vec<crate::usrloc::persist::StoreOp>) -> crate::usrloc::persist::Commit {
        self.0.lock().unwrap().extend(ops);
        crate::usrloc::persist::Commit::ready(Ok(()))
    }
    fn flush(&self) -> crate::usrloc::persist::Commit {
        crate::usrloc::persist::Commit::ready(Ok(()))
    }
    fn mode(&self) -> crate::usrloc::persist::StoreMode {
        crate::usrloc::persist::StoreMode::WriteThrough
    }
    fn name(&self) -> &'static str {
        "recorder"
    }
}

fn ops(r: &Recorder) -> Vec<String> {
    use crate::usrloc::persist::StoreOp;
    r.0.lock()
        .unwrap()
        .drain(..)
        .map(|op| match op {
            StoreOp::Upsert { aor, binding } => {
                format!("upsert {aor} {} {}", binding.ruid(), binding.expires_at)
            }
            StoreOp::Delete { aor, ruid } => format!("delete {aor} {ruid}"),
        })
        .collect()
}

#[test]
fn the_store_hears_exactly_what_changed() {
    let t = LocationTable::new();
    let mut a = binding("sip:a@1", 100);
    a = a.with_ruid("ra");
    t.load("alice", a.clone(), 0);
    let rec = Arc::new(Recorder::default());
    assert!(t.attach_store(rec.clone()).is_ok());
    assert!(ops(&rec).is_empty(), "preloading is not journaled");

    let mut b = binding("sip:a@2", 200);
    b = b.with_ruid("rb");
    let (_, commit, _) = t.update_undoable("alice", 0, |v| v.push(b.clone()));
    assert!(commit.is_some());
    assert_eq!(ops(&rec), ["upsert alice rb 200"]);

    // A refresh of one binding upserts that one only.
    t.update("alice", 0, |v| {
        v[0].expires_at = 150;
        v[0].last_modified = 5;
    });
    assert_eq!(ops(&rec), ["upsert alice ra 150"]);

    // Nothing changed: nothing written, no commit to wait for.
    let (_, commit, _) = t.update_undoable("alice", 0, |_| ());
    assert!(commit.is_none());
    assert!(ops(&rec).is_empty());

    t.update("alice", 0, |v| v.retain(|x| x.ruid() != "ra"));
    assert_eq!(ops(&rec), ["delete alice ra"]);
    assert!(t.remove("alice"));
    assert_eq!(ops(&rec), ["delete alice rb"]);
}

#[test]
fn the_binding_limit_holds_exactly_under_concurrent_inserts() {
    let t = Arc::new(LocationTable::new().with_limits(TableLimits {
        max_bindings: 100,
        max_bytes: u64::MAX,
    }));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let mut ok = 0;
                for i in 0..200 {
                    let b = binding("sip:x@h", 1000);
                    let added = t.update(&format!("t{n}-{i}"), 0, |list| {
                        let g = Growth::add(&b);
                        t.admit(&format!("t{n}-{i}"), list, g)
                            .map(|()| list.push(b))
                    });
                    ok += usize::from(added.is_ok());
                }
                ok
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 100);
    assert_eq!(t.stats().contacts.load(Ordering::Relaxed), 100);
    assert_eq!(t.stats().full.load(Ordering::Relaxed), 700);
    // Refreshes (no growth) pass at the limit; removal makes room.
    assert!(t
        .admit("t0-0", &[binding("sip:x@h", 1000)], Growth::default())
        .is_ok());
    let victim = t.aors()[0].clone();
    assert!(t.remove(&victim));
    let b = binding("sip:y@h", 1000);
    let r = t.update("fresh", 0, |list| {
        t.admit("fresh", list, Growth::add(&b))
            .map(|()| list.push(b))
    });
    assert!(r.is_ok());
    let b = binding("sip:z@h", 1000);
    let r = t.update("fresh2", 0, |list| {
        t.admit("fresh2", list, Growth::add(&b))
            .map(|()| list.push(b))
    });
    assert_eq!(r.unwrap_err().limit, Limit::Bindings(100));
}

#[test]
fn a_binding_loaded_twice_is_kept_once() {
    // Redis SCAN may return a key twice (rehashing, resharding).
    let t = LocationTable::new();
    let a = binding("sip:a@1", 100).with_ruid("ra");
    let newer = binding("sip:a@2", 200).with_ruid("ra");
    t.load("alice", a, 0);
    t.load("alice", newer.clone(), 0);
    t.load("alice", binding("sip:a@3", 100).with_ruid("rb"), 0);
    let live = t.lookup("alice", 0).unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0], newer);
    assert_eq!(t.stats().contacts.load(Ordering::Relaxed), 2);
}
