use super::*;
use crate::rpc::api::tests::state;

#[test]
fn every_statistic_is_a_series_with_its_type() {
    let state = Arc::new(state());
    let text = render(&state).unwrap();
    assert!(
        text.contains("# TYPE kamrs_usrloc_location_contacts gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("\nkamrs_usrloc_location_contacts 0\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE kamrs_core_rcv_requests_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("\nkamrs_core_rcv_requests_total 0\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP kamrs_core_rcv_requests_total "),
        "{text}"
    );
    // HELP says what the series means, and its JSON-RPC name.
    assert!(
        text.contains(
            "\n# HELP kamrs_sl_sent_replies_total Replies kamrs sent, any status \
             (stats.get_statistics sl:sent_replies)\n"
        ),
        "{text}"
    );
    assert!(!text.contains("kamrs statistic "), "{text}");
    // One series per statistic, none per AoR; the replies by code are
    // one labelled series, the histograms apart.
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("kamrs_registrar_register_duration"))
        .count();
    let mut stats = 0;
    stats::each(&state, |group, name, _, _, _| {
        if !stats::is_reply_code(group, name) {
            stats += 1;
        }
    });
    assert_eq!(series, stats, "{text}");
}

#[test]
fn replies_by_code_are_labels_and_durations_are_histograms() {
    let state = Arc::new(state());
    let replies = &state.core.stats.replies;
    replies.count(b"SIP/2.0 200 OK\r\n");
    replies.count(b"SIP/2.0 200 OK\r\n");
    replies.count(b"SIP/2.0 401 Unauthorized\r\n");
    state
        .core
        .registrar
        .stats()
        .handling
        .observe(std::time::Duration::from_micros(700));
    let text = render(&state).unwrap();
    assert!(
        text.contains("# TYPE kamrs_sl_replies_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("\nkamrs_sl_replies_total{code=\"200\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("\nkamrs_sl_replies_total{code=\"401\"} 1\n"),
        "{text}"
    );
    // Codes never sent have no series; the flat sl:NNN_replies are not
    // repeated beside the label.
    assert!(!text.contains("code=\"500\""), "{text}");
    assert!(!text.contains("kamrs_sl_200_replies"), "{text}");
    let h = "kamrs_registrar_register_duration_seconds";
    assert!(text.contains(&format!("# TYPE {h} histogram\n")), "{text}");
    assert!(
        text.contains(&format!("\n{h}_bucket{{le=\"0.0005\"}} 0\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\n{h}_bucket{{le=\"0.001\"}} 1\n")),
        "{text}"
    );
    assert!(text.contains(&format!("\n{h}_count 1\n")), "{text}");
    // Off: no keepalive histogram, no store histogram.
    assert!(!text.contains("kamrs_keepalive_roundtrip"), "{text}");
    assert!(!text.contains("kamrs_usrloc_store_commit"), "{text}");
    // The statistics agree with the label.
    let lines = stats::get(&state, &["sl:".to_owned()]).unwrap();
    assert!(
        lines.contains(&"sl:200_replies = 2".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"sl:401_replies = 1".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"sl:4xx_replies = 0".to_owned()),
        "{lines:?}"
    );
    replies.count(b"SIP/2.0 420 Bad Extension\r\n");
    let lines = stats::get(&state, &["sl:4xx_replies".to_owned()]).unwrap();
    assert_eq!(lines, ["sl:4xx_replies = 1"]);
    stats::reset(&state, &["sl:200_replies".to_owned()]).unwrap();
    assert_eq!(replies.get(200), 0);
    assert_eq!(replies.get(401), 1);
    stats::reset(&state, &["sl:4xx_replies".to_owned()]).unwrap();
    assert_eq!(replies.get(420), 0);
    assert_eq!(replies.get(401), 1, "401 has a statistic of its own");
}
