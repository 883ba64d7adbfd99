use kamrs_tests::ua::{request, Phone};
use kamrs_tests::{unique, Kamrs};
use std::time::Duration;
const PROXY: &str = "[route]\nmode = \"proxy\"\n";

#[test]
fn amplification() {
    let k = Kamrs::start(PROXY);
    {
        let mut bob = Phone::tcp(k.tcp());
        for i in 0..16 {
            let st = bob.register("bob", Some(&format!("<sip:bob@{};n={i}>", k.udp())), "");
            eprintln!("reg {i}: {st}");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut alice = Phone::udp(k.udp());
    alice.send(&request(
        "INVITE",
        "sip:bob@example.com",
        &alice,
        "<sip:alice@example.com>;tag=a1",
        "<sip:bob@example.com>",
        &unique(),
        1,
        "",
    ));
    let mut got = vec![];
    while let Some(m) = alice.recv(Duration::from_secs(3)) {
        got.push(m.lines().next().unwrap().to_owned());
        if got.len() > 5 {
            break;
        }
    }
    eprintln!("alice got {got:?}");
    for s in [
        "tm:created",
        "tm:refused",
        "tm:current",
        "core:fwd_requests",
    ] {
        eprintln!("{s} = {}", k.stat(s));
    }
}
