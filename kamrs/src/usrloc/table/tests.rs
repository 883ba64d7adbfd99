//! The table's own tests: listing AoRs, and rolling back a write-through
//! edit whose commit failed.

mod aors {
    use super::super::*;

    fn binding(contact: &str, expires_at: u64) -> Binding {
        Binding::for_test(contact, expires_at)
    }

    #[test]
    fn aors_lists_every_record_once() {
        let t = LocationTable::new();
        assert!(t.aors().is_empty());
        for i in 0..1000 {
            t.update(&format!("u{i}"), 0, |b| b.push(binding("sip:x@h", 100)));
        }
        t.update("p", 0, |b| b.push(binding("sip:p@h", PERMANENT)));
        assert!(t.remove("u7"));
        let mut aors: Vec<String> = t.aors().iter().map(|a| a.to_string()).collect();
        aors.sort();
        assert_eq!(aors.len(), 1000);
        assert!(aors.contains(&"p".to_owned()));
        assert!(!aors.contains(&"u7".to_owned()));
        aors.dedup();
        assert_eq!(aors.len(), 1000);
    }

    #[test]
    fn aors_does_not_block_updates_of_other_records_while_held() {
        // The returned names hold no lock: updating and looking up every
        // listed AoR while the list is alive must not deadlock.
        let t = LocationTable::new();
        for i in 0..100 {
            t.update(&format!("u{i}"), 0, |b| b.push(binding("sip:x@h", 100)));
        }
        let aors = t.aors();
        for a in &aors {
            t.update(a, 0, |b| b.push(binding("sip:y@h", 100)));
            assert_eq!(t.lookup(a, 0).map(|v| v.len()), Some(2));
        }
    }
}

mod undo {
    //! A write-through edit whose commit failed is rolled back
    //! ([`LocationTable::undo`]): in memory, in the counters and limits,
    //! and in the store (the inverse ops), unless the AoR changed again.

    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use super::super::*;
    use crate::usrloc::persist::{Commit, Store, StoreError, StoreMode, StoreOp};

    /// Records every op and fails every commit, like a locked database.
    struct Failing(Mutex<Vec<StoreOp>>, StoreMode);

    impl Store for Failing {
        fn submit(&self, ops: Vec<StoreOp>) -> Commit {
            self.0.lock().unwrap().extend(ops);
            Commit::ready(Err(StoreError::Write("locked".into())))
        }
        fn flush(&self) -> Commit {
            Commit::ready(Ok(()))
        }
        fn mode(&self) -> StoreMode {
            self.1
        }
        fn name(&self) -> &'static str {
            "failing"
        }
    }

    fn table(mode: StoreMode, limits: TableLimits) -> (LocationTable, Arc<Failing>) {
        let t = LocationTable::new().with_limits(limits);
        let s = Arc::new(Failing(Mutex::default(), mode));
        assert!(t.attach_store(s.clone()).is_ok());
        (t, s)
    }

    fn binding(ruid: &str, expires_at: u64, cseq: u32) -> Binding {
        let mut b = Binding::for_test("sip:a@h", expires_at).with_ruid(ruid);
        b.cseq = cseq;
        b.last_modified = u64::from(cseq);
        b
    }

    fn gauges(t: &LocationTable) -> (u64, u64, u64) {
        let s = t.stats();
        (
            s.users.load(Ordering::Relaxed),
            s.contacts.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed),
        )
    }

    fn last_op(s: &Failing) -> StoreOp {
        s.0.lock().unwrap().last().cloned().expect("an op")
    }

    #[test]
    fn a_new_binding_is_rolled_back_with_its_counters_and_limits() {
        let limits = TableLimits {
            max_bindings: 1,
            ..TableLimits::default()
        };
        let (t, s) = table(StoreMode::WriteThrough, limits);
        let add = |t: &LocationTable| {
            t.update_undoable("alice", 100, |b| {
                let new = binding("r1", 200, 1);
                t.admit("alice", b, Growth::add(&new))?;
                b.push(new);
                Ok::<(), TableFull>(())
            })
        };
        let (r, commit, undo) = add(&t);
        assert!(r.is_ok());
        assert!(commit.unwrap().refused().is_some());
        assert!(t.undo(undo.expect("write-through keeps an undo"), 101));
        assert!(t.lookup("alice", 101).is_none());
        assert!(t.aors().is_empty(), "the emptied record is gone");
        assert_eq!(gauges(&t), (0, 0, 0));
        assert_eq!(*t.reserved.lock().unwrap(), (0, 0));
        assert_eq!(
            last_op(&s),
            StoreOp::Delete {
                aor: "alice".into(),
                ruid: "r1".into()
            },
            "the failed upsert kept for retry is superseded"
        );
        assert_eq!(t.stats().rolled_back.load(Ordering::Relaxed), 1);
        // The slot it took is free again.
        let (r, _, _) = add(&t);
        assert!(r.is_ok(), "the limit leaked: {r:?}");
    }

    #[test]
    fn a_refresh_is_rolled_back_to_the_old_expiry_and_cseq() {
        let (t, s) = table(StoreMode::WriteThrough, TableLimits::default());
        t.update("bob", 100, |b| b.push(binding("r1", 200, 1)));
        t.update("bob", 100, |b| b.push(binding("r2", 900, 1)));
        let before = gauges(&t);
        let (_, commit, undo) = t.update_undoable("bob", 100, |b| b[0] = binding("r1", 4000, 2));
        assert!(commit.is_some());
        assert!(t.undo(undo.unwrap(), 100));
        let now = t.lookup("bob", 100).unwrap();
        assert_eq!(now, [binding("r1", 200, 1), binding("r2", 900, 1)]);
        assert_eq!(gauges(&t), before);
        assert_eq!(
            last_op(&s),
            StoreOp::Upsert {
                aor: "bob".into(),
                binding: binding("r1", 200, 1)
            }
        );
        // The old expiry is scheduled again.
        assert_eq!(t.purge_due(201), Some(900));
        assert_eq!(t.lookup("bob", 201).unwrap().len(), 1);
    }

    #[test]
    fn a_removal_is_rolled_back() {
        let (t, s) = table(StoreMode::WriteThrough, TableLimits::default());
        t.update("carol", 100, |b| b.push(binding("r1", 200, 1)));
        let before = gauges(&t);
        let (_, commit, undo) = t.update_undoable("carol", 100, |b| b.clear());
        assert!(commit.is_some());
        assert!(t.lookup("carol", 100).is_none());
        assert_eq!(gauges(&t), (0, 0, 0));
        assert!(t.undo(undo.unwrap(), 150));
        assert_eq!(t.lookup("carol", 150).unwrap(), [binding("r1", 200, 1)]);
        assert_eq!(gauges(&t), before);
        assert!(matches!(last_op(&s), StoreOp::Upsert { .. }));
        assert_eq!(t.purge_due(201), None, "and expires as before");
        assert_eq!(gauges(&t), (0, 0, 0));
    }

    #[test]
    fn a_binding_that_expired_meanwhile_is_not_restored() {
        let (t, _) = table(StoreMode::WriteThrough, TableLimits::default());
        t.update("dan", 100, |b| {
            b.push(binding("r1", 110, 1));
            b.push(binding("r2", 900, 1));
        });
        let (_, _, undo) = t.update_undoable("dan", 100, |b| b.clear());
        assert!(t.undo(undo.unwrap(), 120));
        assert_eq!(t.lookup("dan", 120).unwrap(), [binding("r2", 900, 1)]);
        assert_eq!(gauges(&t).1, 1);
    }

    #[test]
    fn a_rollback_is_skipped_when_the_aor_changed_again() {
        let (t, s) = table(StoreMode::WriteThrough, TableLimits::default());
        let (_, _, undo) = t.update_undoable("erin", 100, |b| b.push(binding("r1", 200, 1)));
        // A later REGISTER refreshed it before the first one's commit failed.
        t.update("erin", 100, |b| b[0] = binding("r1", 300, 2));
        let ops = s.0.lock().unwrap().len();
        assert!(!t.undo(undo.unwrap(), 100));
        assert_eq!(t.lookup("erin", 100).unwrap(), [binding("r1", 300, 2)]);
        assert_eq!(s.0.lock().unwrap().len(), ops, "nothing submitted");
        assert_eq!(t.stats().rolled_back.load(Ordering::Relaxed), 0);
        assert_eq!(t.stats().rollback_skipped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn only_write_through_keeps_an_undo() {
        let (t, _) = table(StoreMode::WriteBack, TableLimits::default());
        let (_, commit, undo) = t.update_undoable("fay", 100, |b| b.push(binding("r1", 200, 1)));
        assert!(commit.is_some() && undo.is_none());
        let t = LocationTable::new();
        let (_, commit, undo) = t.update_undoable("fay", 100, |b| b.push(binding("r1", 200, 1)));
        assert!(commit.is_none() && undo.is_none());
        // Nothing changed: nothing to undo.
        let (t, _) = table(StoreMode::WriteThrough, TableLimits::default());
        let (_, commit, undo) = t.update_undoable("fay", 100, |_| ());
        assert!(commit.is_none() && undo.is_none());
    }
}
