use super::*;

#[test]
fn touch_changes_runtime_fields_only_where_asked() {
    let table = LocationTable::new();
    table.update("alice", 10, |b| {
        b.push(Binding::for_test("sip:a@192.0.2.1", 1000).with_ruid("r1"));
        b.push(Binding::for_test("sip:b@192.0.2.1", 1000).with_ruid("r2"));
    });
    assert_eq!(
        table.touch("alice", "r2", |b| {
            b.last_keepalive_us = 42;
            b.contact().to_owned()
        }),
        Some("sip:b@192.0.2.1".to_owned())
    );
    assert_eq!(table.touch("alice", "r3", |_| ()), None);
    assert_eq!(table.touch("bob", "r1", |_| ()), None);
    let seen = table.with_bindings("alice", |b| {
        b.iter().map(|b| b.last_keepalive_us).collect::<Vec<_>>()
    });
    assert_eq!(seen, Some(vec![0, 42]));
    assert_eq!(table.with_bindings("bob", |b| b.len()), None);
    assert_eq!(
        table
            .stats()
            .contacts
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}
