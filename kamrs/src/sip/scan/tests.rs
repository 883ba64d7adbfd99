use super::*;

#[test]
fn all_graphic_agrees_with_a_plain_check() {
    for len in 0..20 {
        for at in 0..len {
            for b in 0..=255u8 {
                let mut s = vec![b'a'; len];
                s[at] = b;
                assert_eq!(
                    all_graphic(&s),
                    s.iter().all(u8::is_ascii_graphic),
                    "{len} {at} {b}"
                );
            }
        }
    }
    assert!(all_graphic(b""));
}

#[test]
fn eq_ignore_case_agrees_with_std() {
    // Every pair of bytes at every position of every length up to 18,
    // against a filler that is itself a letter.
    let bytes: Vec<u8> = (0..=255u8).collect();
    for len in 0..19 {
        for at in 0..len {
            for &x in &bytes {
                for &y in [x, x ^ 0x20, x.to_ascii_uppercase(), b'k', b'K', 0xcb, 0xeb].iter() {
                    let mut a = vec![b'k'; len];
                    let mut b = vec![b'K'; len];
                    a[at] = x;
                    b[at] = y;
                    assert_eq!(
                        eq_ignore_case(&a, &b),
                        a.eq_ignore_ascii_case(&b),
                        "{a:?} {b:?}"
                    );
                }
            }
        }
    }
    assert!(!eq_ignore_case(b"abcd", b"abc"));
    assert!(eq_ignore_case(b"+SIP.Instance", b"+sip.instance"));
    assert!(!eq_ignore_case(b"expirez", b"expires"));
}

#[test]
fn lower8_is_to_ascii_lowercase_per_byte() {
    for b in 0..=255u8 {
        for filler in [0u8, b'A', b'z', 0x80, 0xff, b'@', b'['] {
            let mut w = [filler; 8];
            w[(b % 8) as usize] = b;
            let want = u64::from_le_bytes(w.map(|c| c.to_ascii_lowercase()));
            assert_eq!(lower8(u64::from_le_bytes(w)), want, "{w:?}");
        }
    }
}

#[test]
fn span_stops_at_the_first_byte_outside_the_class() {
    assert_eq!(span(b"abc;d", 0, class::TOKEN), 3);
    assert_eq!(span(b"abc;d", 4, class::TOKEN), 5);
    assert_eq!(span(b"abc", 3, class::TOKEN), 3);
    assert_eq!(span(b"abc", 7, class::TOKEN), 7);
    // Every length and stop position across the eight-byte steps.
    for len in 0..40 {
        for stop in 0..=len {
            let mut v = vec![b'a'; len];
            if stop < len {
                v[stop] = b';';
            }
            for from in 0..=len + 1 {
                let plain = (from..len).find(|&k| v[k] == b';').unwrap_or(len.max(from));
                assert_eq!(span(&v, from, class::TOKEN), plain, "{len} {stop} {from}");
            }
        }
    }
}

#[test]
fn find2_agrees_with_a_plain_search() {
    // Every length from 0 to 70 (chunks, tails, the overlapping last
    // chunk) and every position of the needles, plus none at all.
    for len in 0..70 {
        for at in 0..=len {
            for (a, b) in [(b'\n', b'\n'), (b'"', b'\\')] {
                let mut hay = vec![b'x'; len];
                if at < len {
                    hay[at] = b;
                }
                if at + 3 < len {
                    hay[at + 3] = a;
                }
                let want = hay.iter().position(|&x| x == a || x == b);
                assert_eq!(find2(a, b, &hay), want, "len {len} at {at}");
                assert_eq!(find1(a, &hay), hay.iter().position(|&x| x == a));
            }
        }
    }
}
