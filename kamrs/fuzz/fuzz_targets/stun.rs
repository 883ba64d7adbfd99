//! Arbitrary bytes as a STUN datagram on a SIP port: the handler must
//! return, and any answer must be a well-formed STUN message of the same
//! transaction whose length field matches what is sent.

#![no_main]

use kamrs::stun;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = std::net::SocketAddr::from(([192, 0, 2, 1], 5060));
    let mut out = Vec::new();
    if let Ok(stun::Outcome::Reply) = stun::handle(data, source, &mut out) {
        assert!(out.len() >= 20 && out.len() % 4 == 0);
        assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])) + 20, out.len());
        assert_eq!(&out[4..20], &data[4..20]);
    }
});
