use super::*;
use std::collections::hash_map::RandomState;

fn names(n: usize) -> Vec<Arc<str>> {
    (0..n)
        .map(|i| Arc::from(format!("user{i}@example.com")))
        .collect()
}

#[test]
fn pings_spread_evenly_over_the_interval() {
    let interval = 30;
    let ticks = ticks(interval);
    let per_sec = (Duration::from_secs(1).as_millis() / TICK.as_millis()) as usize;
    assert_eq!(ticks, 30 * per_sec);
    let n = 30_000;
    let mut round = Round::plan(names(n), ticks, true, &RandomState::new());
    let mut per_second = vec![0usize; interval as usize];
    let mut from = 0;
    let mut total = 0;
    while let Some((tick, due)) = round.next_due(from) {
        assert!(tick >= from);
        from = tick + 1;
        per_second[tick / per_sec] += due.len();
        total += due.len();
    }
    assert_eq!(total, n);
    let mean = n / interval as usize;
    let max = per_second.iter().copied().max().unwrap();
    let min = per_second.iter().copied().min().unwrap();
    // Binomial spread: ±3σ is about ±5 % here.
    assert!(
        max < mean * 115 / 100 && min > mean * 85 / 100,
        "{per_second:?}"
    );
}

#[test]
fn without_randomize_all_at_once_and_an_aor_keeps_its_slot() {
    let mut round = Round::plan(names(100), 300, false, &RandomState::new());
    let (tick, due) = round.next_due(0).unwrap();
    assert_eq!((tick, due.len()), (0, 100));
    assert!(round.next_due(0).is_none());
    let hasher = RandomState::new();
    let slot_of = |name: &str| {
        let mut r = Round::plan(vec![Arc::from(name)], 300, true, &hasher);
        r.next_due(0).unwrap().0
    };
    assert_eq!(slot_of("alice"), slot_of("alice"));
    assert_eq!(ticks(0), 1);
}
