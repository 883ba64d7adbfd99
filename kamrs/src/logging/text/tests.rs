use super::*;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().expect("capture").clone())
            .expect("utf-8")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug)]
struct Outer(Inner);
#[derive(Debug)]
struct Inner;
impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("store unreachable")
    }
}
impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Inner {}

/// The events both formats must print alike: what kamrs logs (strings
/// from the network among them), numbers, Display and Debug values,
/// errors, raw identifiers.
fn log_samples() {
    let source: std::net::SocketAddr = "192.0.2.7:5062".parse().expect("addr");
    tracing::info!(
        aor = "alice",
        contact = "sip:alice@192.0.2.7:5062",
        source = %source,
        transport = "udp",
        expires = 3600u64,
        status = 200,
        "{}",
        "registered"
    );
    tracing::warn!(
        user = "a\"b\\c\nd\u{1b}[31m é",
        source = %source,
        "auth failure"
    );
    tracing::error!(delta = -5i64, ok = true, ratio = 0.5f64, list = ?[1, 2], "numbers");
    tracing::debug!(r#type = "x", "raw name");
    let e = Outer(Inner);
    tracing::warn!(
        error = &e as &(dyn std::error::Error + 'static),
        "commit failed"
    );
    let plain = Inner;
    tracing::warn!(
        error = &plain as &(dyn std::error::Error + 'static),
        "no sources"
    );
    tracing::info!("no fields at all");
    tracing::trace!(only = 1u64);
}

fn capture(plain: bool) -> Vec<String> {
    let out = Captured::default();
    let sink = out.clone();
    let builder = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone());
    if plain {
        let subscriber = builder.event_format(PlainText::new()).finish();
        tracing::subscriber::with_default(subscriber, log_samples);
    } else {
        tracing::subscriber::with_default(builder.finish(), log_samples);
    }
    out.lines()
}

/// `2026-12-04T18:08:16.664182Z ` is 28 characters.
fn without_time(line: &str) -> &str {
    line.get(28..).unwrap_or("")
}

#[test]
fn lines_read_as_tracing_subscriber_would_print_them_but_for_the_time() {
    let ours = capture(true);
    let theirs = capture(false);
    assert_eq!(ours.len(), 8, "{ours:#?}");
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.as_bytes()[27], b' ', "{a}");
        assert!(a.ends_with(without_time(a)));
        assert_eq!(
            without_time(a),
            without_time(b),
            "\nours:   {a}\ntheirs: {b}"
        );
    }
    assert_eq!(
        without_time(&ours[0]),
        " INFO kamrs::logging::text::tests: registered aor=\"alice\" \
         contact=\"sip:alice@192.0.2.7:5062\" source=192.0.2.7:5062 transport=\"udp\" \
         expires=3600 status=200"
    );
    // A value from the network stays inside its quotes, on its line.
    assert!(
        ours[1].contains(r#"user="a\"b\\c\nd\u{1b}[31m é""#),
        "{}",
        ours[1]
    );
}

#[test]
fn a_message_cannot_break_the_line_or_drive_the_terminal() {
    let out = Captured::default();
    let sink = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .event_format(PlainText::new())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let peer_said = "Bad\r\nINFO forged: line\u{1b}[2J\u{85}";
        tracing::warn!("peer said {peer_said}");
        tracing::warn!(message = peer_said);
    });
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(
            line.ends_with(r"peer said Bad\r\nINFO forged: line\x1b[2J\u{85}")
                || line.ends_with(r"Bad\r\nINFO forged: line\x1b[2J\u{85}"),
            "{line}"
        );
    }
}

#[test]
fn the_timestamp_is_utc_with_microseconds() {
    let mut s = String::new();
    // 2026-12-04T18:08:16.000042 UTC
    let t = UNIX_EPOCH + Duration::from_secs(1_796_407_696) + Duration::from_micros(42);
    write_timestamp(&mut s, t).expect("write");
    assert_eq!(s, "2026-12-04T18:08:16.000042Z ");
    // The cached second is used again, the fraction is new.
    s.clear();
    write_timestamp(&mut s, t + Duration::from_micros(999_000)).expect("write");
    assert_eq!(s, "2026-12-04T18:08:16.999042Z ");
    s.clear();
    write_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400)).expect("write");
    assert_eq!(s, "2000-02-29T00:00:00.000000Z ");
}
