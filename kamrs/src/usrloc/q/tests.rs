use super::*;

#[test]
fn q_numbers_round_trip_in_thousandths() {
    assert_eq!(q_to_number(None), -1.0);
    assert_eq!(q_to_number(Some(500)), 0.5);
    assert_eq!(q_to_number(Some(1000)), 1.0);
    assert_eq!(q_to_number(Some(0)), 0.0);
    for q in 0..=1000u16 {
        assert_eq!(q_from_number(q_to_number(Some(q))), Some(Some(q)), "{q}");
    }
    assert_eq!(q_from_number(-1.0), Some(None));
    assert_eq!(q_from_number(Q_UNSPECIFIED), Some(None));
    assert_eq!(q_from_number(0.7), Some(Some(700)));
    assert_eq!(q_from_number(0.0005), Some(Some(1)), "rounded");
    assert_eq!(q_from_number(1.5), None);
    assert_eq!(q_from_number(f64::NAN), None);
}
