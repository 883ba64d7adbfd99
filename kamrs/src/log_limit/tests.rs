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
