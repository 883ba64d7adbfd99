//! Where log lines go, and what happens when they come faster than they
//! can be written.
//!
//! Lines are formatted on the thread that logs and handed to one writer
//! thread through a bounded queue ([`QUEUE_LINES`]), which writes them in
//! batches ([`writer`]). When stderr is slow (a terminal, a full pipe, a
//! stalled journald) the queue fills and further lines are dropped and
//! counted (`core:log_dropped`), so logging never makes a REGISTER wait.
//! The writer flushes what is queued when the [`Guard`] is dropped at exit.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

mod text;
mod writer;

use writer::{BatchWriter, WriterGuard};

/// Lines queued for the writer at most (a line is typically 150-400
/// bytes, so a few MB at worst).
pub const QUEUE_LINES: usize = 16_384;

static WRITER: OnceLock<BatchWriter> = OnceLock::new();

/// How lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: level, target, message and `key=value` fields.
    Text,
    /// One JSON object a line, for log shippers: `timestamp`, `level`,
    /// `target` and the fields (`message` among them).
    Json,
}

/// Keeps the writer thread; dropping it flushes the queued lines.
pub struct Guard(#[allow(dead_code)] Option<WriterGuard>);

/// Lines dropped because the queue was full, since start.
pub fn dropped_lines() -> u64 {
    WRITER.get().map_or(0, BatchWriter::dropped)
}

/// The filter name for a verbosity: `level` moved up by `verbose` (`-v`)
/// steps or down by `quiet` (`-q`) steps.
pub fn level_for(level: &str, verbose: u8, quiet: u8) -> &'static str {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let base = LEVELS.iter().position(|l| *l == level).unwrap_or(3);
    // `-v` alone means at least info, as it always has: -v info, -vv debug.
    // `-q` never silences errors.
    let moved = if verbose > 0 {
        (2 + usize::from(verbose)).max(base)
    } else if quiet > 0 {
        base.saturating_sub(usize::from(quiet)).max(1).min(base)
    } else {
        base
    };
    LEVELS[moved.min(LEVELS.len() - 1)]
}

/// Installs the global subscriber writing to stderr at `level` (a filter
/// name) unless `RUST_LOG` says otherwise. Returns the guard to keep until
/// exit, and a warning to log when `RUST_LOG` could not be read.
pub fn init(level: &str, format: Format) -> (Guard, Option<String>) {
    let mut bad_rust_log = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            bad_rust_log = Some(format!("ignoring RUST_LOG={spec:?}: {e}"));
            EnvFilter::new(level)
        }),
        _ => EnvFilter::new(level),
    };
    let (writer, guard) = match BatchWriter::start(std::io::stderr(), QUEUE_LINES, "kamrs-log") {
        Ok(started) => started,
        Err(e) => {
            // No thread to spare: log nothing rather than block on stderr.
            eprintln!("kamrs: cannot start the log writer ({e}); logging is off");
            return (Guard(None), None);
        }
    };
    let _ = WRITER.set(writer.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        // Colours for a person at a terminal (tracing-subscriber's own
        // format); the cheaper plain format for files and pipes.
        Format::Text if std::io::stderr().is_terminal() => builder.with_ansi(true).try_init(),
        Format::Text => builder
            .with_ansi(false)
            .event_format(text::PlainText::new())
            .try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    if let Err(e) = installed {
        bad_rust_log = Some(format!("logging was already set up: {e}"));
    }
    (Guard(Some(guard)), bad_rust_log)
}

#[cfg(test)]
mod tests;
