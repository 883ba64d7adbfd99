use super::*;
use crate::usrloc::Binding;

fn add(t: &LocationTable, aor: &str) {
    t.update(aor, 0, |b| b.push(Binding::for_test("sip:c@h", 1_000)));
}

fn table(names: &[&str]) -> LocationTable {
    let t = LocationTable::new();
    for n in names {
        add(&t, n);
    }
    t
}

fn strs(v: &[Arc<str>]) -> Vec<&str> {
    v.iter().map(|s| &**s).collect()
}

#[test]
fn pages_come_from_the_list_taken_at_the_first() {
    let t = table(&["c", "a", "e", "b", "d"]);
    let d = DumpNames::default();
    let (p1, more) = d.page(&t, "", 2);
    assert_eq!((strs(&p1), more), (vec!["a", "b"], true));
    assert_eq!(d.kept(), Some(5));
    // Added after the dump began: not in this dump's list.
    add(&t, "bb");
    let (p2, more) = d.page(&t, "b", 2);
    assert_eq!((strs(&p2), more), (vec!["c", "d"], true));
    let (p3, more) = d.page(&t, "d", 2);
    assert_eq!((strs(&p3), more), (vec!["e"], false));
    // The last page let go of the list.
    assert_eq!(d.kept(), None);
}

#[test]
fn a_page_ending_exactly_at_the_end_says_no_more() {
    let t = table(&["a", "b"]);
    let d = DumpNames::default();
    let (p, more) = d.page(&t, "", 2);
    assert_eq!((strs(&p), more), (vec!["a", "b"], false));
    assert_eq!(d.kept(), None);
}

#[test]
fn without_a_fresh_list_a_cursor_is_answered_from_the_table() {
    let t = table(&["a", "b", "c"]);
    let d = DumpNames::default();
    // No list at all.
    let (p, more) = d.page(&t, "a", 1);
    assert_eq!((strs(&p), more), (vec!["b"], true));
    // A list too old to trust: the table, which now has "ab" too.
    let start = Instant::now();
    d.page_at(&t, "", 1, start);
    add(&t, "ab");
    let late = start + MAX_AGE + Duration::from_secs(1);
    let (p, _) = d.page_at(&t, "a", 1, late);
    assert_eq!(strs(&p), vec!["ab"]);
    assert_eq!(d.kept(), None);
}

#[test]
fn a_newer_dump_replaces_the_list_and_the_older_dump_still_completes() {
    let t = table(&["a", "b", "c"]);
    let d = DumpNames::default();
    let (p, _) = d.page(&t, "", 1);
    assert_eq!(strs(&p), vec!["a"]);
    add(&t, "bb");
    // Another client starts: its list has "bb".
    let (q, _) = d.page(&t, "", 10);
    assert_eq!(strs(&q), vec!["a", "b", "bb", "c"]);
    // That single page ended its dump and dropped the list; the first
    // client goes on from the table and still sees every name once.
    let (p, _) = d.page(&t, "a", 10);
    assert_eq!(strs(&p), vec!["b", "bb", "c"]);
}
