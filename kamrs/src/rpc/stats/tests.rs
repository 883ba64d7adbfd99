use super::*;
use crate::rpc::api::tests::state;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn selectors_follow_kamailio() {
    let s = state();
    let all = get(&s, &names(&["all"])).unwrap();
    assert_eq!(all.len(), super::all().count());
    assert!(
        all.contains(&"usrloc:registered_users = 0".to_owned()),
        "{all:?}"
    );
    let usrloc = get(&s, &names(&["usrloc:"])).unwrap();
    assert_eq!(
        usrloc,
        [
            "usrloc:registered_users = 0",
            "usrloc:location_users = 0",
            "usrloc:location_contacts = 0",
            "usrloc:location_expires = 0",
            "usrloc:table_bytes = 0",
            "usrloc:table_full = 0",
            "usrloc:rolled_back = 0",
            "usrloc:rollback_skipped = 0",
            "usrloc:flows = 0",
            "usrloc:ka_sent = 0",
            "usrloc:ka_answered = 0",
            "usrloc:ka_timeouts = 0",
            "usrloc:ka_unsent = 0",
            "usrloc:ka_ignored = 0",
            "usrloc:max_bindings = 18446744073709551615",
            "usrloc:max_table_bytes = 18446744073709551615"
        ]
    );
    let two = get(
        &s,
        &names(&["registrar:accepted_regs", "rejected_regs", "nope:x"]),
    )
    .unwrap();
    assert_eq!(
        two,
        ["registrar:accepted_regs = 0", "registrar:rejected_regs = 0"]
    );
    let e = get(&s, &names(&["nope:", "bogus"])).unwrap_err();
    assert_eq!(e.code(), 404);
    assert!(e.message().contains("`nope:`, `bogus`"), "{}", e.message());
    // Each statistic once, however many selectors pick it.
    assert_eq!(
        get(&s, &names(&["all", "usrloc:"])).unwrap().len(),
        super::all().count()
    );
}

#[test]
fn pike_and_auth_groups() {
    let off = state();
    assert_eq!(
        get(&off, &names(&["pike:"])).unwrap(),
        [
            "pike:dropped_requests = 0",
            "pike:blocked_sources = 0",
            "pike:evicted = 0",
            "pike:untracked_requests = 0",
            "pike:tracked_sources = 0",
            "pike:max_tracked = 0"
        ]
    );
    reset(&off, &names(&["all"])).unwrap();
    assert_eq!(get(&off, &names(&["auth:"])).unwrap().len(), 11);

    let s = crate::rpc::api::tests::state_with_pike(2);
    let pike = s.core.pike.as_ref().unwrap();
    let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..5 {
        pike.allow(ip);
    }
    assert_eq!(
        get(&s, &names(&["pike:"])).unwrap()[..2],
        ["pike:dropped_requests = 3", "pike:blocked_sources = 1"]
    );
    reset(&s, &names(&["pike:dropped_requests"])).unwrap();
    assert_eq!(
        get(&s, &names(&["pike:"])).unwrap()[..2],
        ["pike:dropped_requests = 0", "pike:blocked_sources = 1"]
    );
    assert_eq!(
        get(&s, &names(&["pike:tracked_sources"])).unwrap(),
        ["pike:tracked_sources = 1"]
    );
}

#[test]
fn reset_zeroes_counters_not_gauges_or_settings() {
    let s = state();
    s.core
        .registrar
        .stats()
        .accepted
        .store(7, Ordering::Relaxed);
    s.table().stats().users.store(3, Ordering::Relaxed);
    reset(&s, &names(&["all"])).unwrap();
    let v = get(
        &s,
        &names(&[
            "registrar:accepted_regs",
            "usrloc:registered_users",
            "registrar:max_expires",
        ]),
    )
    .unwrap();
    assert_eq!(
        v,
        [
            "registrar:max_expires = 3600",
            "registrar:accepted_regs = 0",
            "usrloc:registered_users = 3"
        ]
    );
    s.table().stats().users.store(0, Ordering::Relaxed);
}

#[test]
fn every_statistic_says_what_it_means_and_no_two_alike() {
    let mut seen = std::collections::HashMap::new();
    for st in all() {
        let full = format!("{}:{}", st.group, st.name);
        let help = st.help.trim();
        assert!(!help.is_empty(), "{full} has no help");
        // Not just the name again, in any spelling.
        let words = |s: &str| s.to_lowercase().replace(['_', ':'], " ");
        for name in [st.name, full.as_str()] {
            assert_ne!(words(help), words(name), "{full}: help is its name");
        }
        // One line that the Prometheus text format takes as is.
        assert!(
            !st.help.contains(['\\', '\n', '\r']),
            "{full}: backslash or line break in its help"
        );
        assert!(st.help.len() <= 150, "{full}: help over 150 bytes");
        if let Some(other) = seen.insert(st.help, full.clone()) {
            panic!("{full} and {other} share the help {:?}", st.help);
        }
    }
}
