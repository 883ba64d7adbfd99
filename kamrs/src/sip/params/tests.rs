use super::*;

/// What `get` must return: the first occurrence found by iterating.
fn by_iteration<'a>(p: Params<'a>, name: &str) -> Option<Option<&'a str>> {
    p.into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[test]
fn recorded_spans_agree_with_iteration() {
    let long = format!(";x=\"{}\"", "y".repeat(300));
    for (s, kind) in [
        (
            " ; a = 1 ;b; c=\"q;,\" ;d=[::1];e=;f=6;g=7; h = 8 ;a=9",
            ParamsIn::Header,
        ),
        (&format!(";a=1{long};b=2;c"), ParamsIn::Header),
        (&format!("{long};a=1"), ParamsIn::Header),
        (";a=1;b;c=3;d=4;e=5;f=6;g=7;h", ParamsIn::Uri),
        ("", ParamsIn::Header),
        (";a=1 ;", ParamsIn::Header),
    ] {
        let (p, end) = scan(s.as_bytes(), 0, kind).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(end, s.len(), "{s}");
        for name in ["a", "b", "c", "d", "e", "f", "g", "h", "x", "z", "A"] {
            assert_eq!(p.get(name), by_iteration(p, name), "{name} in {s}");
        }
        let [h, a, x] = p.lookup(["h", "a", "x"]);
        assert_eq!((h, a, x), (p.get("h"), p.get("a"), p.get("x")), "{s}");
    }
}
