//! The text format for files, pipes and journald: the layout of
//! tracing-subscriber's default ("full") format without colours, written
//! without going through `core::fmt` for every piece.
//!
//! Why our own: with one info line per registration, formatting was a
//! third of what a line cost (the default formatter pads, styles and
//! escapes through `write!` piece by piece and formats the timestamp from
//! scratch every time), a couple of microseconds per REGISTER. Here the
//! date and time of day are formatted once a second, plain strings are
//! copied, and only values that need escaping go through `Debug`.
//!
//! ```text
//! 2026-12-04T18:08:16.664182Z  INFO kamrs::registrar::log: registered aor="g2" contact="sip:g2@127.0.0.1:16061" source=127.0.0.1:16061 transport="udp" expires=3600 status=200
//! ```
//!
//! String fields are quoted and escaped as Rust's `Debug` does, so a value
//! from the network cannot end the line or forge a field. Unlike the
//! default format, the message is escaped too where it holds line breaks or
//! terminal control characters (it can quote a peer's words). Events
//! inside a span and events bridged from the `log` crate are handed to the
//! default format, which knows how to print those.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain text format (see the module's doc).
pub struct PlainText {
    fallback: Format<Full>,
}

impl PlainText {
    pub fn new() -> PlainText {
        PlainText {
            fallback: Format::default().with_ansi(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PlainText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let in_span = ctx
            .event_scope()
            .is_some_and(|s| s.from_root().next().is_some());
        if in_span || meta.fields().field("log.target").is_some() {
            return self.fallback.format_event(ctx, writer, event);
        }
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_str(*meta.level()))?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level as the default format pads it (five characters).
fn level_str(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

thread_local! {
    /// The second last formatted on this thread and its text
    /// (`2026-12-04T18:08:16`).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-12-04T18:08:16.664182Z ` (UTC, microseconds, and the space).
fn write_timestamp(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let Ok(since) = now.duration_since(UNIX_EPOCH) else {
        return w.write_str("<unknown time> ");
    };
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            // Once a second: the project's UTC date-time, in RFC 3339's shape.
            cached.1 = crate::time::format_datetime(secs).replacen(' ', "T", 1);
            cached.0 = secs;
        }
        w.write_str(&cached.1)
    })?;
    let micros = since.subsec_micros();
    let mut frac = *b".000000Z ";
    let mut n = micros;
    for slot in frac[1..7].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits and punctuation were written.
    w.write_str(std::str::from_utf8(&frac).unwrap_or(".000000Z "))
}

/// Writes an event's fields: the message as is (escaped where needed),
/// then ` name=value` for the others.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// The separator and `name=`; `false` for a field not to print.
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            Escaping(&mut *self.writer).write_str(value)
        } else if value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            // Nothing `Debug` would escape: quote it, skip the machinery.
            self.writer
                .write_char('"')
                .and_then(|()| self.writer.write_str(value))
                .and_then(|()| self.writer.write_char('"'))
        } else {
            write!(self.writer, "{value:?}")
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = self.writer.write_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = self.writer.write_str(itoa::Buffer::new().format(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.start(field) {
            return;
        }
        let mut escaped = Escaping(&mut *self.writer);
        self.result = write!(escaped, "{value}");
        if let Some(mut source) = value.source() {
            self.result = self.result.and_then(|()| {
                let mut escaped = Escaping(&mut *self.writer);
                write!(escaped, " {}.sources=[{source}", field.name())?;
                while let Some(next) = source.source() {
                    write!(escaped, ", {next}")?;
                    source = next;
                }
                escaped.0.write_char(']')
            });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            write!(Escaping(&mut *self.writer), "{value:?}")
        } else {
            write!(self.writer, "{value:?}")
        };
    }
}

/// Passes text through, escaping what could end the line or drive the
/// terminal (line breaks, ESC, BEL, BS, FF, DEL, C1 controls).
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let clean = |c: char| !c.is_control() || c == '\t';
        if s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if clean(c) {
                self.0.write_char(c)?;
            } else {
                match c {
                    '\n' => self.0.write_str("\\n")?,
                    '\r' => self.0.write_str("\\r")?,
                    c if (c as u32) < 0x80 => write!(self.0, "\\x{:02x}", c as u32)?,
                    c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
