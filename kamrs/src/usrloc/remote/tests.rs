//! Changes from other nodes (`apply_remote_*`): applied, counted,
//! expired like local ones, and never journaled back to the store.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::*;
use crate::usrloc::persist::{Commit, Store, StoreMode, StoreOp};
use crate::usrloc::PERMANENT;

fn binding(ruid: &str, contact: &str, expires_at: u64) -> Binding {
    Binding::for_test(contact, expires_at).with_ruid(ruid)
}

/// Records every op submitted to it.
#[derive(Default)]
struct Journal(Mutex<Vec<StoreOp>>);

impl Store for Journal {
    fn submit(&self, ops: Vec<StoreOp>) -> Commit {
        self.0.lock().unwrap().extend(ops);
        Commit::ready(Ok(()))
    }
    fn flush(&self) -> Commit {
        Commit::ready(Ok(()))
    }
    fn mode(&self) -> StoreMode {
        StoreMode::WriteThrough
    }
    fn name(&self) -> &'static str {
        "journal"
    }
}

fn table_with_journal() -> (LocationTable, Arc<Journal>) {
    let t = LocationTable::new();
    let j = Arc::new(Journal::default());
    assert!(t.attach_store(j.clone()).is_ok());
    (t, j)
}

fn counts(t: &LocationTable) -> (u64, u64) {
    (
        t.stats().users.load(Ordering::Relaxed),
        t.stats().contacts.load(Ordering::Relaxed),
    )
}

fn contacts(t: &LocationTable, aor: &str, now: u64) -> Vec<String> {
    t.lookup(aor, now)
        .unwrap_or_default()
        .iter()
        .map(|b| b.contact().to_string())
        .collect()
}

#[test]
fn remote_upsert_adds_replaces_and_is_not_journaled() {
    let (t, j) = table_with_journal();
    assert!(t.apply_remote_upsert("alice", binding("r1", "sip:a@1", 200), 100));
    assert!(t.apply_remote_upsert("alice", binding("r2", "sip:a@2", 300), 100));
    assert_eq!(counts(&t), (1, 2));
    // Same ruid: replaced in place, not added.
    assert!(t.apply_remote_upsert("alice", binding("r1", "sip:a@1b", 250), 100));
    assert_eq!(contacts(&t, "alice", 100), ["sip:a@1b", "sip:a@2"]);
    assert_eq!(counts(&t), (1, 2));
    // The very same binding again changes nothing.
    assert!(!t.apply_remote_upsert("alice", binding("r1", "sip:a@1b", 250), 100));
    assert!(
        j.0.lock().unwrap().is_empty(),
        "remote changes must not be journaled"
    );
    // A local edit still is.
    t.update("alice", 100, |b| b.retain(|x| x.ruid() != "r2"));
    assert_eq!(j.0.lock().unwrap().len(), 1);
}

#[test]
fn remote_upsert_of_an_expired_binding_removes_the_old_copy() {
    let (t, j) = table_with_journal();
    t.apply_remote_upsert("bob", binding("r1", "sip:b@1", 200), 100);
    assert!(!t.apply_remote_upsert("carol", binding("r9", "sip:c@1", 50), 100));
    assert!(t.lookup("carol", 100).is_none());
    assert!(t.apply_remote_upsert("bob", binding("r1", "sip:b@1", 90), 100));
    assert!(t.lookup("bob", 100).is_none());
    assert_eq!(counts(&t), (0, 0));
    assert!(j.0.lock().unwrap().is_empty());
}

#[test]
fn remote_delete_removes_by_ruid_only() {
    let (t, j) = table_with_journal();
    t.apply_remote_upsert("dave", binding("r1", "sip:d@1", 200), 100);
    t.apply_remote_upsert("dave", binding("r2", "sip:d@2", 200), 100);
    assert!(!t.apply_remote_delete("dave", "nope", 100));
    assert!(!t.apply_remote_delete("nobody", "r1", 100));
    assert!(t.apply_remote_delete("dave", "r1", 100));
    assert_eq!(contacts(&t, "dave", 100), ["sip:d@2"]);
    assert!(t.apply_remote_delete("dave", "r2", 100));
    assert!(t.lookup("dave", 100).is_none());
    assert_eq!(counts(&t), (0, 0));
    assert!(t.aors().is_empty(), "the emptied record is gone");
    assert!(j.0.lock().unwrap().is_empty());
}

#[test]
fn remote_bindings_expire_like_local_ones() {
    let t = LocationTable::new();
    t.apply_remote_upsert("erin", binding("r1", "sip:e@1", 110), 100);
    t.apply_remote_upsert("erin", binding("r2", "sip:e@2", PERMANENT), 100);
    assert_eq!(t.purge_due(105), Some(110));
    assert_eq!(t.purge_due(111), None);
    assert_eq!(contacts(&t, "erin", 111), ["sip:e@2"]);
    assert_eq!(t.stats().expired.load(Ordering::Relaxed), 1);
}

#[test]
fn remote_replace_syncs_a_record_unless_told_not_to() {
    let (t, j) = table_with_journal();
    t.apply_remote_upsert("fay", binding("r1", "sip:f@1", 200), 100);
    t.apply_remote_upsert("fay", binding("r2", "sip:f@2", 200), 100);
    // Refused: nothing changes.
    assert!(!t.apply_remote_replace("fay", vec![], 100, || false));
    assert_eq!(contacts(&t, "fay", 100), ["sip:f@1", "sip:f@2"]);
    // r1 changed, r2 gone, r3 new, r4 already expired.
    let new = vec![
        binding("r3", "sip:f@3", 300),
        binding("r1", "sip:f@1x", 300),
        binding("r4", "sip:f@4", 50),
    ];
    assert!(t.apply_remote_replace("fay", new.clone(), 100, || true));
    assert_eq!(contacts(&t, "fay", 100), ["sip:f@1x", "sip:f@3"]);
    assert_eq!(counts(&t), (1, 2));
    // The same state again is no change.
    assert!(!t.apply_remote_replace("fay", new, 100, || true));
    // Emptying removes the record; an unknown AoR with nothing stays absent.
    assert!(t.apply_remote_replace("fay", vec![], 100, || true));
    assert!(!t.apply_remote_replace("ghost", vec![], 100, || panic!("not asked")));
    assert!(t.aors().is_empty());
    assert_eq!(counts(&t), (0, 0));
    // A new AoR from a re-sync.
    assert!(t.apply_remote_replace("gil", vec![binding("g", "sip:g@1", 200)], 100, || true));
    assert_eq!(counts(&t), (1, 1));
    assert!(j.0.lock().unwrap().is_empty());
}

#[test]
fn a_resync_keeps_the_connection_of_a_binding_it_leaves_as_it_was() {
    use crate::peer::{ConnId, Peer, Proto};
    let t = LocationTable::new();
    let conn = ConnId::next();
    let peer = Peer {
        proto: Proto::Tcp,
        remote: "192.0.2.1:40000".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: Some(conn),
    };
    let mut here = binding("r1", "sip:a@1", 200);
    here.set_source(Some(peer));
    t.update("alice", 100, |b| b.push(here.clone()));
    assert!(t.flow_in_use(conn));
    // What Redis holds: the same binding, without the connection.
    let mut stored = here.clone();
    stored.set_source(Some(Peer { conn: None, ..peer }));
    assert!(
        !t.apply_remote_replace("alice", vec![stored.clone()], 100, || true),
        "no change"
    );
    assert!(!t.apply_remote_upsert("alice", stored, 100));
    assert!(t.flow_in_use(conn), "still carried by its connection");
    assert_eq!(t.lookup("alice", 100).unwrap()[0].conn(), Some(conn));
}
