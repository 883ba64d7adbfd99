//! Memory of the location table per binding, counted by a global allocator
//! that tracks live heap bytes. 100,000 realistic bindings (Yealink-style
//! REGISTERs with +sip.instance and a User-Agent) go through the real
//! registrar; the heap growth divided by the binding count is the cost of a
//! binding, index and map overhead included. Prints the figure the README
//! quotes and fails if it regresses past a bound a little above it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use kamrs::peer::{Peer, Proto};
use kamrs::registrar::{Registrar, Settings};
use kamrs::sip::{parse_message, Limits, Message};
use kamrs::usrloc::LocationTable;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BINDINGS: usize = 100_000;

fn register(i: usize) -> String {
    let ip = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
    format!(
        "REGISTER sip:pbx.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ip}:5062;branch=z9hG4bK{i}x;rport\r\n\
         From: \"User {i}\" <sip:{i}@pbx.example.com>;tag={i}t\r\n\
         To: \"User {i}\" <sip:{i}@pbx.example.com>\r\n\
         Call-ID: {i:010}-1820633437@{ip}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{i}@{ip}:5062>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-{i:012x}>\";reg-id=1\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: Yealink SIP-T46U 108.86.0.45\r\n\
         Expires: 3600\r\n\
         Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, MESSAGE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn bytes_per_binding_at_100k() {
    let peer = Peer {
        proto: Proto::Udp,
        remote: "10.0.0.1:5062".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        conn: None,
    };
    let table = Arc::new(LocationTable::new());
    let registrar = Registrar::new(Settings::default(), table.clone());
    let mut out = Vec::with_capacity(2048);
    // Warm up thread-locals and lazily built state before measuring.
    let warm = register(BINDINGS + 1);
    if let Ok(Message::Request(req)) = parse_message(warm.as_bytes(), &Limits::default()) {
        registrar.handle(&req, &peer, &mut out);
    }
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..BINDINGS {
        let text = register(i);
        let Ok(Message::Request(req)) = parse_message(text.as_bytes(), &Limits::default()) else {
            panic!("request {i} parses");
        };
        registrar.handle(&req, &peer, &mut out);
        assert!(
            out.starts_with(b"SIP/2.0 200 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(
        table.stats().contacts.load(Ordering::Relaxed) as usize,
        BINDINGS + 1
    );
    let per_binding = (after - before) as f64 / BINDINGS as f64;
    println!("location table: {per_binding:.0} bytes per binding at {BINDINGS} bindings (heap, allocator-counted)");
    // Regression guard: measured 356 before bindings kept their
    // server_id and keepalive answers, 372 after, 357 once the
    // Path/instance flags moved into the string offsets (issue 20's goal
    // is 300 of PSS in the bench's shorter REGISTERs, allocator slack
    // included); the margin absorbs run-to-run growth timing.
    assert!(per_binding < 370.0, "{per_binding:.0} bytes per binding");
}
