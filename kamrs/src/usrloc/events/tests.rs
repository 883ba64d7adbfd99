use super::*;
use crate::usrloc::{LocationTable, Parts};

fn binding(ruid: &str, contact: &str, call_id: &str, expires_at: u64) -> Binding {
    let b = Binding::for_test(contact, expires_at).with_ruid(ruid);
    Binding::new(Parts {
        call_id,
        ..b.parts()
    })
}

fn causes(origin: Origin, before: &[Binding], after: &[Binding]) -> Vec<(Cause, String)> {
    diff(origin, before, after)
        .into_iter()
        .map(|(c, b, gone)| {
            // Gone is what the cause says, or for the causes that may add
            // or remove, whether the binding is still there.
            let still_there = after.iter().any(|a| a.ruid() == b.ruid());
            assert_eq!(gone, !still_there, "{c:?}");
            if !matches!(c, Cause::Remote | Cause::RolledBack) {
                assert_eq!(gone, c.removes(), "{c:?}");
            }
            (c, b.ruid().to_string())
        })
        .collect()
}

#[test]
fn a_registrar_edit_is_told_binding_by_binding() {
    let before = [
        binding("kept", "sip:a@192.0.2.1", "c1", 100),
        binding("renewed", "sip:b@192.0.2.2", "c2", 100),
        binding("moved", "sip:c@192.0.2.3", "c3", 100),
        binding("restarted", "sip:d@192.0.2.4", "c4", 100),
        binding("gone", "sip:e@192.0.2.5", "c5", 100),
    ];
    let after = [
        before[0].clone(),
        binding("renewed", "sip:b@192.0.2.2", "c2", 200),
        binding("moved", "sip:c@192.0.2.3:40000", "c3", 200),
        binding("restarted", "sip:d@192.0.2.4", "new", 200),
        binding("new", "sip:f@192.0.2.6", "c6", 200),
    ];
    assert_eq!(
        causes(Origin::Registrar, &before, &after),
        [
            (Cause::Refreshed, "renewed".into()),
            (Cause::Replaced, "moved".into()),
            (Cause::Registered, "restarted".into()),
            (Cause::Registered, "new".into()),
            (Cause::Unregistered, "gone".into()),
        ]
    );
}

#[test]
fn removals_carry_the_cause_of_who_removed() {
    let before = [binding("x", "sip:x@192.0.2.1", "c", 100)];
    for (origin, cause) in [
        (Origin::Rpc, Cause::Removed),
        (Origin::Keepalive, Cause::KeepaliveTimeout),
        (Origin::ConnectionLost, Cause::ConnectionLost),
        (Origin::Remote, Cause::Remote),
        (Origin::Rollback, Cause::RolledBack),
    ] {
        assert_eq!(causes(origin, &before, &[]), [(cause, "x".into())]);
    }
    assert!(causes(Origin::Quiet, &before, &[]).is_empty());
    // Another node's upsert is remote too, and not gone.
    let renewed = [binding("x", "sip:x@192.0.2.1", "c", 200)];
    assert_eq!(
        causes(Origin::Remote, &before, &renewed),
        [(Cause::Remote, "x".into())]
    );
}

#[tokio::test]
async fn listeners_hear_every_change_and_expiry() {
    let t = LocationTable::new();
    assert!(!t.events().active());
    let mut listener = t.events().listen(None);
    let rx = &mut listener.rx;
    t.update_as("alice", 10, Origin::Registrar, |b| {
        b.push(binding("r1", "sip:alice@192.0.2.1", "c", 20))
    });
    let e = rx.recv().await.unwrap();
    assert_eq!((e.cause, &*e.aor, e.seq), (Cause::Registered, "alice", 1));
    assert_eq!(e.binding.contact(), "sip:alice@192.0.2.1");
    // An edit that changes nothing says nothing; expiry says expired.
    t.update("alice", 11, |_| {});
    t.purge_due(25);
    let e = rx.recv().await.unwrap();
    assert_eq!((e.cause, e.seq), (Cause::Expired, 2));
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_listener_too_far_behind_is_told_how_much_it_lost() {
    let t = LocationTable::new();
    let mut listener = t.events().listen(None);
    let rx = &mut listener.rx;
    let n = CAPACITY + 10;
    for i in 0..n {
        t.update(&format!("u{i}"), 10, |b| {
            b.push(binding("r", "sip:u@192.0.2.1", "c", 1000))
        });
    }
    match rx.recv().await {
        Err(broadcast::error::RecvError::Lagged(lost)) => assert_eq!(lost, 10),
        other => panic!("expected a lag, got {other:?}"),
    }
    // The ring kept the newest; nothing the registrar did waited.
    assert_eq!(rx.recv().await.unwrap().seq, 11);
    assert_eq!(t.len(), n);
}

#[tokio::test]
async fn an_aor_nobody_listens_to_makes_no_events() {
    let t = LocationTable::new();
    let mut alice = t.events().listen(Some("alice"));
    assert!(t.events().wants("alice"));
    assert!(!t.events().wants("bob"), "only alice is listened to");
    t.update_as("bob", 10, Origin::Registrar, |b| {
        b.push(binding("b1", "sip:bob@192.0.2.2", "c", 20))
    });
    t.update_as("alice", 10, Origin::Registrar, |b| {
        b.push(binding("a1", "sip:alice@192.0.2.1", "c", 20))
    });
    // Bob's edit built no event: alice's is the first of all.
    let e = alice.rx.recv().await.unwrap();
    assert_eq!((&*e.aor, e.seq), ("alice", 1));
    assert!(alice.wants(&e));
    // A second listener of every event sees bob's too.
    let all = t.events().listen(None);
    assert!(t.events().wants("bob"));
    drop(all);
    assert!(!t.events().wants("bob"));
    drop(alice);
    assert!(
        !t.events().wants("alice"),
        "a dropped listener withdraws its interest"
    );
    // Two listeners of one AoR: it stays wanted until both are gone.
    let one = t.events().listen(Some("carol"));
    let two = t.events().listen(Some("carol"));
    drop(one);
    assert!(t.events().wants("carol"));
    drop(two);
    assert!(!t.events().wants("carol"));
}
