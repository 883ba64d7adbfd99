//! Arbitrary bytes as a SIP response: the Call-ID scan that routes replies
//! to the keepalive engine must return without panicking, and what it
//! returns must be one bounded, printable piece of the input (it is logged
//! and checked as a token; nothing else may leak into it).

#![no_main]

use kamrs::sip::{response, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_size: 65_536,
        max_headers: 16,
        max_line_length: 256,
    };
    if let Some(value) = response::call_id(data, &limits) {
        assert!(!value.is_empty() && value.is_ascii());
        assert!(value.len() <= limits.max_line_length);
        assert!(!value.contains(['\r', '\n']));
        let start = value.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start + value.len() <= data.len());
    }
});
