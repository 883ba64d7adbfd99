use super::*;

#[test]
fn controls_and_quotes_are_escaped() {
    assert_eq!(escaped("alice"), "alice");
    assert_eq!(escaped("a\"b\\c"), "a\\\"b\\\\c");
    assert_eq!(
        escaped("x\r\nauth failure: \u{1b}[2J\u{9b}"),
        "x\\r\\nauth failure: \\u{1b}[2J\\u{9b}"
    );
    assert_eq!(escaped("Zoë"), "Zoë");
}

#[test]
fn long_user_names_are_cut_at_a_character() {
    assert_eq!(user_field(&"a".repeat(64)), "a".repeat(64));
    assert_eq!(user_field(&"a".repeat(65)), format!("{}…", "a".repeat(64)));
    assert_eq!(user_field(&"a".repeat(100_000)).len(), 64 + '…'.len_utf8());
    // 63 bytes, then a 2-byte 'ë' that does not fit: cut before it.
    let cut = user_field(&format!("{}ëë", "a".repeat(63)));
    assert_eq!(cut, format!("{}…", "a".repeat(63)));
    // Never inside an escape.
    let cut = user_field(&format!("{}\n", "a".repeat(63)));
    assert_eq!(cut, format!("{}…", "a".repeat(63)));
}

#[test]
fn the_limiter_caps_lines_per_second_and_reports_the_rest() {
    let l = Limiter::new(3);
    let admitted: Vec<_> = (0..5).map(|_| l.admit(10)).collect();
    assert_eq!(
        admitted,
        [(true, 0), (true, 0), (true, 0), (false, 0), (false, 0)]
    );
    // The next second: lines again, and the 2 left out reported once.
    assert_eq!(l.admit(11), (true, 2));
    assert_eq!(l.admit(11), (true, 0));
    assert_eq!(l.admit(11), (true, 0));
    assert_eq!(l.admit(11), (false, 0));
    // A gap: still reported (once), then a fresh budget.
    assert_eq!(l.admit(20), (true, 1));
    assert_eq!(l.admit(20), (true, 0));
    let logged = std::cell::Cell::new(0);
    for _ in 0..10 {
        l.log(30, || logged.set(logged.get() + 1));
    }
    assert_eq!(logged.get(), 3);
}
