use super::*;

#[test]
fn queue_shares_add_up_and_are_given_back() {
    let stats = Arc::new(CoreStats::default());
    let mut a = QueueShare::new(&stats);
    let mut b = QueueShare::new(&stats);
    a.set(600);
    b.set(500);
    assert_eq!(CoreStats::get(&stats.tcp_queued), 1100);
    assert!(a.total_within(1101) && !a.total_within(1100));
    a.set(100);
    assert_eq!(CoreStats::get(&stats.tcp_queued), 600);
    drop(b);
    assert_eq!(CoreStats::get(&stats.tcp_queued), 100);
    // A reset of the gauge in between never makes it wrap.
    stats.tcp_queued.store(0, Ordering::Relaxed);
    drop(a);
    assert_eq!(CoreStats::get(&stats.tcp_queued), 0);
}
