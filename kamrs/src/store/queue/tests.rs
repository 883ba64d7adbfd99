use std::sync::atomic::{AtomicUsize, Ordering};

use super::try_reserve;

#[test]
fn a_batch_is_refused_when_it_would_pass_the_cap() {
    let queued = AtomicUsize::new(0);
    assert!(try_reserve(&queued, 3, 5));
    // 3 + 3 > 5: refused although the queue is not full, and not counted.
    assert!(!try_reserve(&queued, 3, 5));
    assert_eq!(queued.load(Ordering::Relaxed), 3);
    // Exactly up to the cap is fine; then nothing more fits.
    assert!(try_reserve(&queued, 2, 5));
    assert!(!try_reserve(&queued, 1, 5));
    assert_eq!(queued.load(Ordering::Relaxed), 5);
    // A batch larger than the cap never fits.
    assert!(!try_reserve(&AtomicUsize::new(0), 6, 5));
}
