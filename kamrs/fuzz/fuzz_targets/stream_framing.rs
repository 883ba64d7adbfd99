//! Arbitrary bytes as a TCP stream, cut into frames the way the TCP
//! transport does until more bytes would be needed or the connection must
//! close. Every frame must make progress and stay inside the buffer.

#![no_main]

use kamrs::sip::framing::{next_stream_frame, StreamFrame};
use kamrs::sip::{parse_message, Limits, ParseError};
use libfuzzer_sys::fuzz_target;

fn frames(data: &[u8], limits: &Limits) {
    let mut rest = data;
    loop {
        match next_stream_frame(rest, limits) {
            StreamFrame::Message { len } => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "message len {len} of {}",
                    rest.len()
                );
                assert!(
                    len <= limits.max_message_size,
                    "message len {len} over the limit"
                );
                let _ = parse_message(&rest[..len], limits);
                rest = &rest[len..];
            }
            StreamFrame::Ping { len } | StreamFrame::Skip { len } => {
                assert!(
                    len > 0 && len <= rest.len(),
                    "keep-alive len {len} of {}",
                    rest.len()
                );
                rest = &rest[len..];
            }
            StreamFrame::Unframeable { head_len, error } => {
                assert!(
                    head_len > 0 && head_len <= rest.len(),
                    "head_len {head_len} of {}",
                    rest.len()
                );
                // 513 is only for a header section that fits but announces
                // more than the limit; the reply is built from that head.
                if error == ParseError::MessageTooLarge {
                    assert!(head_len <= limits.max_message_size, "513 for a head over the limit");
                    let _ = kamrs::sip::salvage_for_reply(&rest[..head_len], limits);
                }
                break;
            }
            StreamFrame::Incomplete | StreamFrame::TooLarge => break,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    frames(data, &Limits::default());
    // Small limits too, so TooLarge and the limit edges are reached.
    frames(
        data,
        &Limits {
            max_message_size: 300,
            max_headers: 8,
            max_line_length: 120,
        },
    );
});
