use super::*;

const L: TableLimits = TableLimits {
    max_bindings: 10,
    max_bytes: 1000,
};

fn g(bindings: i64, bytes: i64) -> Growth {
    Growth { bindings, bytes }
}

#[test]
fn only_growth_past_a_limit_is_refused() {
    assert_eq!(check(9, 0, g(1, 10), L), None);
    assert_eq!(check(10, 0, g(1, 10), L), Some(Limit::Bindings(10)));
    assert_eq!(check(9, 0, g(2, 10), L), Some(Limit::Bindings(10)));
    // Over the limits already: refreshes and removals still pass.
    assert_eq!(check(20, 5000, g(0, 0), L), None);
    assert_eq!(check(20, 5000, g(-1, -300), L), None);
    // Bytes: a new binding past the byte limit is refused...
    assert_eq!(check(5, 990, g(1, 11), L), Some(Limit::Bytes(1000)));
    assert_eq!(check(5, 990, g(1, 10), L), None);
    // ...a refresh that grows may use 1/16 more (1000 + 62), no more.
    assert_eq!(check(5, 1000, g(0, 40), L), None);
    assert_eq!(check(5, 1040, g(0, 22), L), None);
    assert_eq!(check(5, 1040, g(0, 23), L), Some(Limit::Bytes(1000)));
}

#[test]
fn the_refusal_says_which_limit_and_what_to_do() {
    let full = TableFull {
        limit: Limit::Bindings(50),
        retry_after: 7,
    };
    let text = full.to_string();
    assert!(text.contains("max_bindings = 50"), "{text}");
    assert!(text.contains("refreshed"), "{text}");
}
