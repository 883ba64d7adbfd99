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
    // One series per statistic, none per AoR.
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let mut stats = 0;
    stats::each(&state, |_, _, _, _| stats += 1);
    assert_eq!(series, stats, "{text}");
}
