use super::*;

#[test]
fn counts_must_rise() {
    let c = NonceCounts::default();
    assert_eq!(c.accept(1, 1, 0, 0, 300), Use::Fresh);
    assert_eq!(c.accept(1, 1, 0, 0, 300), Use::Replayed);
    assert_eq!(c.accept(1, 2, 0, 0, 300), Use::Fresh);
    assert_eq!(c.accept(1, 1, 0, 0, 300), Use::Replayed);
    assert_eq!(c.accept(2, 1, 0, 0, 300), Use::Fresh);
}

#[test]
fn bounded_and_eviction_never_reopens_a_replay() {
    let c = NonceCounts::with_capacity(16);
    for serial in 0..1000u64 {
        assert_eq!(c.accept(serial, 1, 0, 0, 300), Use::Fresh, "{serial}");
        assert!(c.len() <= 16);
    }
    assert!(c.evicted.load(Ordering::Relaxed) >= 1000 - 16);
    // Every forgotten nonce, replayed, is stale: never a first use.
    for serial in 0..1000u64 {
        let again = c.accept(serial, 1, 0, 0, 300);
        assert_ne!(again, Use::Fresh, "{serial}");
    }
    // A nonce issued after the watermark is still a first use.
    assert_eq!(c.accept(1000, 1, 0, 0, 300), Use::Fresh);
}

#[test]
fn expired_entries_go_before_live_ones() {
    let c = NonceCounts::with_capacity(4);
    for serial in 0..3 {
        assert_eq!(c.accept(serial, 1, 0, 0, 300), Use::Fresh);
    }
    assert_eq!(c.accept(10, 1, 500, 500, 300), Use::Fresh);
    // Full: the three expired ones are dropped, nothing live is
    // evicted, and the live one keeps its history.
    assert_eq!(c.accept(11, 1, 500, 500, 300), Use::Fresh);
    assert_eq!(c.evicted.load(Ordering::Relaxed), 0);
    assert_eq!(c.accept(10, 1, 500, 500, 300), Use::Replayed);
    assert_eq!(c.accept(11, 2, 500, 500, 300), Use::Fresh);
    assert_eq!(c.accept(2, 1, 0, 500, 300), Use::Forgotten);
}
