use super::write_q;

#[test]
fn q_is_the_shortest_decimal() {
    for q in 0..=1001u16 {
        let mut out = Vec::new();
        write_q(&mut out, q);
        let want = match q {
            0 => "0".to_owned(),
            1000.. => "1".to_owned(),
            _ => format!("0.{}", format!("{q:03}").trim_end_matches('0')),
        };
        assert_eq!(String::from_utf8(out).unwrap(), want, "q={q}");
    }
}
