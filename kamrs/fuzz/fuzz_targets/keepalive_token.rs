//! Arbitrary bytes as the Call-ID of a reply to a keepalive ping: the
//! check must return, and accept nothing it did not make (a forged reply
//! must not keep a dead binding alive).

#![no_main]

use kamrs::keepalive::token::Tokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tokens = Tokens::new([42; 32]);
    let text = String::from_utf8_lossy(data);
    if let Some(ping) = tokens.verify(&text, u64::MAX / 2, u64::MAX) {
        // Only a Call-ID this process made verifies: made again from what
        // it says, it is the same text.
        assert_eq!(tokens.call_id(&ping.aor, &ping.ruid, ping.sent_us), text);
    }
});
