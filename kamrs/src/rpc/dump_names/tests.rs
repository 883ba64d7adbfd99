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

#[test]
fn prefix_pages_walk_the_matches_in_order() {
    let t = table(&["bob", "al", "alice", "alfred", "alan", "albert", "zed"]);
    let d = DumpNames::default();
    let (p1, more) = d.prefix_page(&t, "al", "", 2);
    assert_eq!((strs(&p1), more), (vec!["al", "alan"], true));
    // Added after the search began: not in this search's list; the
    // dump's list is not touched.
    add(&t, "alb");
    assert_eq!(d.kept(), None);
    let (p2, more) = d.prefix_page(&t, "al", "alan", 2);
    assert_eq!((strs(&p2), more), (vec!["albert", "alfred"], true));
    let (p3, more) = d.prefix_page(&t, "al", "alfred", 2);
    assert_eq!((strs(&p3), more), (vec!["alice"], false));
    // The last page let go of the list.
    assert!(d.search_lock().is_none());
    // No match, and the empty prefix (everything).
    assert_eq!(d.prefix_page(&t, "x", "", 5), (vec![], false));
    let (all, more) = d.prefix_page(&t, "", "", 100);
    assert_eq!(all.len(), 8);
    assert!(!more);
}

#[test]
fn a_prefix_search_and_a_dump_keep_their_own_lists() {
    let t = table(&["a1", "a2", "b1", "b2"]);
    let d = DumpNames::default();
    let (p, _) = d.page(&t, "", 1);
    assert_eq!(strs(&p), vec!["a1"]);
    let (p, _) = d.prefix_page(&t, "b", "", 1);
    assert_eq!(strs(&p), vec!["b1"]);
    // The dump goes on from its own list.
    assert_eq!(d.kept(), Some(4));
    let (p, _) = d.page(&t, "a1", 1);
    assert_eq!(strs(&p), vec!["a2"]);
}

#[test]
fn a_prefix_page_without_its_list_takes_a_new_one() {
    let t = table(&["a1", "a2", "a3"]);
    let d = DumpNames::default();
    let start = Instant::now();
    d.prefix_page_at(&t, "a", "", 1, start);
    add(&t, "a15");
    // Too old: a new list, which has the AoR added since.
    let late = start + MAX_AGE + Duration::from_secs(1);
    let (p, more) = d.prefix_page_at(&t, "a", "a1", 1, late);
    assert_eq!((strs(&p), more), (vec!["a15"], true));
    // Another prefix's list does not answer this one's cursor.
    d.prefix_page_at(&t, "b", "", 1, late);
    let (p, _) = d.prefix_page_at(&t, "a", "a15", 5, late);
    assert_eq!(strs(&p), vec!["a2", "a3"]);
}

/// How long a search and a page take at a million AoRs (run with
/// `cargo test --release -p kamrs prefix_search_at_a_million -- --ignored
/// --nocapture`; docs/ctl.md quotes it).
#[test]
#[ignore]
fn prefix_search_at_a_million() {
    let t = LocationTable::new();
    for i in 0..1_000_000 {
        add(&t, &format!("user{i:07}"));
    }
    let d = DumpNames::default();
    let time = |what: &str, f: &dyn Fn()| {
        let start = Instant::now();
        f();
        println!("{what}: {:?}", start.elapsed());
    };
    time("first page of all (sort of 1M)", &|| {
        d.page(&t, "", 50);
    });
    time("a later page", &|| {
        d.page(&t, "user0500000", 50);
    });
    time("prefix search user01 (100k matches)", &|| {
        d.prefix_page(&t, "user01", "", 50);
    });
    time("prefix search user0123 (1k matches)", &|| {
        d.prefix_page(&t, "user0123", "", 50);
    });
    time("a later prefix page", &|| {
        d.prefix_page(&t, "user0123", "user0123500", 50);
    });
}
