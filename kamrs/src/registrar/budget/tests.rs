use super::*;
use crate::usrloc::PERMANENT;

#[test]
fn the_amplification_bound_applies_only_without_authentication() {
    assert_eq!(udp_reply_limit(65_507, 142, false), 1420);
    assert_eq!(udp_reply_limit(65_507, 100, false), FLOOR);
    assert_eq!(udp_reply_limit(65_507, 20_000, false), 65_507);
    assert_eq!(udp_reply_limit(65_507, 142, true), 65_507);
    assert_eq!(udp_reply_limit(1300, 9_000, true), 1300);
}

#[test]
fn the_bound_covers_what_the_200_really_lists() {
    let b = |c: &str| Binding::for_test(c, PERMANENT);
    let current = vec![b("sip:a@192.0.2.1"), b("sip:b@192.0.2.2"), b("sip:c@h")];
    let changes = vec![
        Change::Remove { index: 1 },
        Change::Replace {
            index: 2,
            binding: b("sip:a-much-longer-contact-uri@192.0.2.3:5060;transport=tcp"),
        },
        Change::Add(b("sip:d@192.0.2.4")),
    ];
    let bound = ok_rest_bound(&current, &changes, false);
    let mut after = current.clone();
    crate::registrar::save::apply(&mut after, changes);
    let mut out = Vec::new();
    crate::registrar::reply::ok_rest(&mut out, 1000, &after, false);
    assert!(out.len() <= bound, "{} > {bound}", out.len());
    // Tight enough to be useful: within a few dozen bytes per Contact.
    assert!(
        bound - out.len() < 40 * after.len() + TAIL,
        "{bound} vs {}",
        out.len()
    );
    // Nothing removed: every binding counts.
    assert!(ok_rest_bound(&current, &[], false) > ok_rest_bound(&current[..1], &[], false));
}
