use super::*;

const DATA: Duration = Duration::from_secs(20);
const READ: Duration = Duration::from_secs(5);

#[test]
fn silent_connection_has_the_data_deadline() {
    let t0 = Instant::now();
    let d = ReadDeadline::new(t0, DATA, READ);
    assert_eq!(d.next(), Some((t0 + DATA, Late::NoMessage)));
}

#[test]
fn dripped_bytes_do_not_push_the_message_deadline_back() {
    let t0 = Instant::now();
    let mut d = ReadDeadline::new(t0, DATA, READ);
    // First byte at t0+1 s, more bytes at +2 s, +3 s: same message.
    d.framed(t0 + Duration::from_secs(1), 0, false, 1);
    d.framed(t0 + Duration::from_secs(2), 0, false, 2);
    d.framed(t0 + Duration::from_secs(3), 0, false, 3);
    assert_eq!(d.next(), Some((t0 + Duration::from_secs(6), Late::Message)));
}

#[test]
fn a_whole_message_clears_both_and_the_next_one_starts_its_own_clock() {
    let t0 = Instant::now();
    let mut d = ReadDeadline::new(t0, DATA, READ);
    d.framed(t0 + Duration::from_secs(1), 0, false, 10);
    // The message completes at +4 s with nothing after it.
    d.framed(t0 + Duration::from_secs(4), 1, true, 0);
    assert_eq!(d.next(), None, "an idle connection has only the idle timer");
    // The next one arrives together with the end of another.
    d.framed(t0 + Duration::from_secs(30), 0, false, 7);
    d.framed(t0 + Duration::from_secs(32), 1, true, 9);
    assert_eq!(
        d.next(),
        Some((t0 + Duration::from_secs(37), Late::Message))
    );
}

#[test]
fn keep_alives_are_not_a_first_message() {
    let t0 = Instant::now();
    let mut d = ReadDeadline::new(t0, DATA, READ);
    // CRLF pings consumed, nothing left: still no message.
    d.framed(t0 + Duration::from_secs(1), 0, true, 0);
    assert_eq!(d.next(), Some((t0 + DATA, Late::NoMessage)));
    // A message started at +18 s is still bound by the data deadline.
    d.framed(t0 + Duration::from_secs(18), 0, false, 3);
    assert_eq!(d.next(), Some((t0 + DATA, Late::NoMessage)));
}
