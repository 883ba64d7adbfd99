//! What `update_durable` tells its caller, for each store mode and
//! outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::usrloc::persist::{Store, StoreOp};

/// Records what it is told; refuses up front or fails commits on demand.
struct Probe {
    mode: StoreMode,
    ops: Mutex<Vec<StoreOp>>,
    refuse: AtomicBool,
    fail: AtomicBool,
}

impl Probe {
    fn new(mode: StoreMode) -> Arc<Probe> {
        Arc::new(Probe {
            mode,
            ops: Mutex::default(),
            refuse: AtomicBool::new(false),
            fail: AtomicBool::new(false),
        })
    }

    fn taken(&self) -> usize {
        self.ops.lock().unwrap().drain(..).count()
    }
}

impl Store for Probe {
    fn submit(&self, ops: Vec<StoreOp>) -> Commit {
        if self.refuse.load(Ordering::Relaxed) {
            return Commit::ready(Err(StoreError::Overloaded));
        }
        self.ops.lock().unwrap().extend(ops);
        if self.fail.load(Ordering::Relaxed) {
            let (done, commit) = Commit::pending();
            // Decided later, like a real write.
            tokio::spawn(async move { done.send(Err(StoreError::Write("locked".into()))) });
            return commit;
        }
        Commit::ready(Ok(()))
    }
    fn flush(&self) -> Commit {
        Commit::ready(Ok(()))
    }
    fn mode(&self) -> StoreMode {
        self.mode
    }
    fn name(&self) -> &'static str {
        "probe"
    }
}

fn table(mode: Option<StoreMode>) -> (Arc<LocationTable>, Option<Arc<Probe>>) {
    let t = Arc::new(LocationTable::new());
    let probe = mode.map(|m| {
        let p = Probe::new(m);
        assert!(t.attach_store(p.clone()).is_ok());
        p
    });
    (t, probe)
}

fn add(ruid: &str) -> impl FnOnce(&mut Vec<Binding>) -> Result<Edit<()>, ()> + '_ {
    move |b| {
        b.push(Binding::for_test("sip:a@h", unix_now() + 3600).with_ruid(ruid));
        Ok(Edit::new(()))
    }
}

fn unchanged(repeats: bool) -> impl FnOnce(&mut Vec<Binding>) -> Result<Edit<()>, ()> {
    move |_| Ok(Edit { value: (), repeats })
}

#[test]
fn without_a_store_everything_is_done_at_once() {
    let (t, _) = table(None);
    let ((), d) = t.update_durable("a", 0, add("r1")).unwrap();
    assert!(matches!(d, Durability::Done));
    let ((), d) = t.update_durable("a", 0, unchanged(true)).unwrap();
    assert!(matches!(d, Durability::Done));
}

#[test]
fn an_error_of_the_edit_is_returned_as_is() {
    let (t, p) = table(Some(StoreMode::WriteThrough));
    let r = t.update_durable("a", 0, |_| Err::<Edit<()>, _>("no"));
    assert_eq!(r.unwrap_err(), "no");
    assert_eq!(p.unwrap().taken(), 0);
}

#[tokio::test]
async fn write_back_is_done_unless_the_store_refuses() {
    let (t, p) = table(Some(StoreMode::WriteBack));
    let p = p.unwrap();
    let ((), d) = t.update_durable("a", 0, add("r1")).unwrap();
    assert!(matches!(d, Durability::Done));
    assert_eq!(p.taken(), 1);
    // A repeat is not written again: write-back vouches for nothing.
    let ((), d) = t.update_durable("a", 0, unchanged(true)).unwrap();
    assert!(matches!(d, Durability::Done));
    assert_eq!(p.taken(), 0);
    p.refuse.store(true, Ordering::Relaxed);
    let ((), d) = t.update_durable("a", 0, add("r2")).unwrap();
    assert!(
        matches!(d, Durability::Refused(StoreError::Overloaded)),
        "{d:?}"
    );
    // The change stays in memory.
    assert_eq!(t.lookup("a", 0).unwrap().len(), 2);
}

#[tokio::test]
async fn write_through_waits_and_a_failure_rolls_back() {
    let (t, p) = table(Some(StoreMode::WriteThrough));
    let p = p.unwrap();
    let ((), d) = t.update_durable("a", 0, add("r1")).unwrap();
    let Durability::Wait(c) = d else {
        panic!("write-through waits, got {d:?}")
    };
    assert!(c.outcome().await.is_ok());
    assert_eq!(t.lookup("a", 0).unwrap().len(), 1);
    p.fail.store(true, Ordering::Relaxed);
    let ((), d) = t.update_durable("a", 0, add("r2")).unwrap();
    let Durability::Wait(c) = d else {
        panic!("write-through waits, got {d:?}")
    };
    assert_eq!(
        t.lookup("a", 0).unwrap().len(),
        2,
        "applied before the commit"
    );
    assert!(c.outcome().await.is_err());
    assert_eq!(t.lookup("a", 0).unwrap().len(), 1, "rolled back");
    assert_eq!(t.stats().rolled_back.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn write_through_rewrites_for_a_repeat_only() {
    let (t, p) = table(Some(StoreMode::WriteThrough));
    let p = p.unwrap();
    let ((), d) = t.update_durable("a", 0, add("r1")).unwrap();
    assert!(matches!(d, Durability::Wait(_)));
    assert_eq!(p.taken(), 1);
    // Nothing changed and nothing repeated (a query): answered at once.
    let ((), d) = t.update_durable("a", 0, unchanged(false)).unwrap();
    assert!(matches!(d, Durability::Done));
    assert_eq!(p.taken(), 0);
    // A retransmission: the AoR is written again and its answer waits;
    // its failure undoes nothing.
    p.fail.store(true, Ordering::Relaxed);
    let ((), d) = t.update_durable("a", 0, unchanged(true)).unwrap();
    let Durability::Wait(c) = d else {
        panic!("a repeat waits, got {d:?}")
    };
    assert_eq!(p.taken(), 1);
    assert!(c.outcome().await.is_err());
    assert_eq!(t.lookup("a", 0).unwrap().len(), 1);
    // A repeat of an AoR with no bindings has nothing to write.
    let ((), d) = t.update_durable("nobody", 0, unchanged(true)).unwrap();
    assert!(matches!(d, Durability::Done));
}
