use super::LogLimiter;

#[test]
fn one_line_per_period_with_the_count_since() {
    let l = LogLimiter::new();
    assert_eq!(l.event(100, 10), Some(1));
    assert_eq!(l.event(101, 10), None);
    assert_eq!(l.event(109, 10), None);
    assert_eq!(l.event(110, 10), Some(3));
    assert_eq!(l.event(110, 10), None);
    assert_eq!(l.event(500, 10), Some(2));
}

#[test]
fn allow_counts_what_it_left_out_and_reset_starts_over() {
    let l = LogLimiter::new();
    assert_eq!(l.allow(100, 10), Some(0));
    assert_eq!(l.allow(101, 10), None);
    assert_eq!(l.allow(102, 10), None);
    assert_eq!(l.allow(110, 10), Some(2));
    l.reset();
    assert_eq!(l.allow(111, 10), Some(0));
}
