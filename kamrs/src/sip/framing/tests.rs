use super::*;

const MSG: &[u8] =
    b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

#[test]
fn frames() {
    let l = Limits::default();
    assert_eq!(
        next_stream_frame(MSG, &l),
        StreamFrame::Message { len: MSG.len() }
    );
    for cut in 0..MSG.len() {
        let f = next_stream_frame(&MSG[..cut], &l);
        assert!(
            matches!(f, StreamFrame::Incomplete | StreamFrame::Skip { .. }),
            "cut {cut}: {f:?}"
        );
    }
    assert_eq!(
        next_stream_frame(b"\r\n\r\nOPT", &l),
        StreamFrame::Ping { len: 4 }
    );
    assert_eq!(
        next_stream_frame(b"\r\nOPT", &l),
        StreamFrame::Skip { len: 2 }
    );
    assert_eq!(next_stream_frame(b"\r\n\r", &l), StreamFrame::Incomplete);
    assert_eq!(next_stream_frame(b"\r", &l), StreamFrame::Incomplete);
}

#[test]
fn content_length_is_mandatory_and_checked() {
    let l = Limits::default();
    let no_cl = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
    assert!(matches!(
        next_stream_frame(no_cl, &l),
        StreamFrame::Unframeable { error: ParseError::MissingContentLength, head_len } if head_len == no_cl.len()
    ));
    let bad = b"OPTIONS sip:x SIP/2.0\r\nl: x\r\n\r\n";
    assert!(matches!(
        next_stream_frame(bad, &l),
        StreamFrame::Unframeable {
            error: ParseError::BadContentLength,
            ..
        }
    ));
    let twice = b"OPTIONS sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n";
    assert!(matches!(
        next_stream_frame(twice, &l),
        StreamFrame::Unframeable { .. }
    ));
    // A folded line that looks like a Content-Length is not one.
    let fold = b"OPTIONS sip:x SIP/2.0\r\nX: a\r\n l: 9\r\nl: 0\r\n\r\n";
    assert_eq!(
        next_stream_frame(fold, &l),
        StreamFrame::Message { len: fold.len() }
    );
}

#[test]
fn limits_bound_the_buffer() {
    let l = Limits {
        max_message_size: 64,
        ..Limits::default()
    };
    assert_eq!(next_stream_frame(&[b'a'; 64], &l), StreamFrame::TooLarge);
    assert_eq!(next_stream_frame(&[b'a'; 63], &l), StreamFrame::Incomplete);
    // A header section that fits, announcing a body that does not:
    // answerable (513) from the headers, before any body byte arrives.
    let big = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 100\r\n\r\n";
    let too_large = StreamFrame::Unframeable {
        head_len: big.len(),
        error: ParseError::MessageTooLarge,
    };
    assert_eq!(next_stream_frame(big, &l), too_large);
    let huge = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 999999999\r\n\r\n";
    assert!(matches!(
        next_stream_frame(huge, &Limits::default()),
        StreamFrame::Unframeable {
            error: ParseError::MessageTooLarge,
            ..
        }
    ));
    // A header section over the limit is not answered from.
    let mut long_head = b"OPTIONS sip:x SIP/2.0\r\nX: ".to_vec();
    long_head.resize(80, b'a');
    long_head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(next_stream_frame(&long_head, &l), StreamFrame::TooLarge);
    // Exactly at the limit is still a message.
    let head = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 19\r\n\r\n";
    let mut exact = head.to_vec();
    exact.resize(64, b'b');
    assert_eq!(
        next_stream_frame(&exact, &l),
        StreamFrame::Message { len: 64 }
    );
}
