//! The store side of the control API: `ul.db_users`,
//! `ul.db_contacts`, `ul.db_expired_contacts` and `core.info`, against the
//! real daemon with a SQLite store, and their answer without one.

use kamrs_tests::ctl::{register, CtlKamrs};
use kamrs_tests::{udp_client, udp_exchange, unique, TempDir};

#[test]
fn db_counts_and_core_info_with_sqlite() {
    let dir = TempDir::new("ctl-store");
    let db = dir.path().join("location.db");
    let k = CtlKamrs::start(
        &format!(
            "min_expires = 1\n[store]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            db.display()
        ),
        "",
    );
    let sock = udp_client(k.udp());
    let port = sock.local_addr().unwrap().port();
    for (user, n) in [("alice", 2), ("bob", 1)] {
        for i in 0..n {
            let contact = format!("sip:{user}@127.0.0.1:{}", 6000 + i);
            let r = udp_exchange(
                &sock,
                register(
                    user,
                    Some(&contact),
                    Some(600),
                    &format!("{}@db", unique()),
                    1,
                    port,
                    "test",
                ),
            );
            assert_eq!(r.status, 200, "{}", r.raw);
        }
    }
    // Write-through: every 200 above is already committed.
    assert_eq!(k.ctl_json(&["ul.db_users"]), 2);
    assert_eq!(k.ctl_json(&["ul.db_contacts"]), 3);
    assert_eq!(k.ctl_json(&["ul.db_expired_contacts"]), 0);
    let info = k.ctl_json(&["core.info"]);
    assert_eq!(info["store"], "sqlite", "{info}");
    assert_eq!(info["store_mode"], "write-through", "{info}");
    assert_eq!(info["auth"], "none", "{info}");
    assert!(
        info["version"].as_str().unwrap().starts_with("kamrs/"),
        "{info}"
    );
    // Kamailio clients call it with the table name.
    let raw = k.rpc("ul.db_contacts", serde_json::json!(["location"]));
    assert_eq!(raw["result"], 3, "{raw}");
}

#[test]
fn db_counts_without_a_store_say_how_to_get_one() {
    let k = CtlKamrs::start("", "");
    let run = k.ctl(&["ul.db_users"]);
    assert_eq!(run.code(), Some(4), "{run:?}");
    assert!(run.stderr.contains("[store] backend"), "{}", run.stderr);
    let info = k.ctl_json(&["core.info"]);
    assert_eq!(info["store"], "none", "{info}");
}
