//! The writer thread behind the log: lines are appended to one shared
//! buffer and written to stderr in batches.
//!
//! Why not `tracing_appender::non_blocking`: it hands every line to its
//! writer thread through a channel, so at a few thousand registrations a
//! second each info line costs a wake-up of that thread (a futex call and
//! a context switch on the logging side, a `write` on the other), several
//! microseconds, as much as the registration itself. Here the thread that
//! logs only copies the line under a short lock; the writer thread is woken
//! at most once per [`COALESCE`], when the buffer goes from empty to not
//! empty, and writes everything that arrived meanwhile in one call. An idle
//! daemon wakes it never.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer lets lines gather after the first one of a batch
/// arrives: short enough that a person watching the log sees no lag, long
/// enough that thousands of lines a second leave in a few writes.
pub const COALESCE: Duration = Duration::from_millis(10);

/// How long exit waits for the queued lines to be written: a stderr that
/// no longer reads (a full pipe nobody drains, a stalled journald) must
/// not keep kamrs from stopping.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes queued at most besides the line limit (a few very long lines
/// must not hold megabytes each).
pub const QUEUE_BYTES: usize = 4 << 20;

/// What the logging threads and the writer thread share.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    dropped: AtomicU64,
    max_lines: usize,
}

#[derive(Default)]
struct State {
    /// Whole lines waiting to be written.
    queued: Vec<u8>,
    lines: usize,
    /// The writer sleeps on `wake` and must be notified by the next line.
    idle: bool,
    stop: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves only bytes behind; keep logging.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `MakeWriter` handed to the subscriber; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it wrote what is queued
/// (waiting at most [`FLUSH_TIMEOUT`]).
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the writer thread has returned.
    finished: mpsc::Receiver<()>,
}

impl BatchWriter {
    /// Starts the writer thread writing to `out`; at most `max_lines`
    /// lines (and [`QUEUE_BYTES`]) wait at once, the rest are dropped and
    /// counted.
    pub fn start<W: Write + Send + 'static>(
        out: W,
        max_lines: usize,
        thread_name: &str,
    ) -> std::io::Result<(BatchWriter, WriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            max_lines,
        });
        let worker = Arc::clone(&shared);
        let (done, finished) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                let _done = done;
                write_batches(&worker, out);
            })?;
        Ok((
            BatchWriter {
                shared: Arc::clone(&shared),
            },
            WriterGuard {
                shared,
                thread: Some(thread),
                finished,
            },
        ))
    }

    /// Lines dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Queues one line (the subscriber writes each event in one call), or
    /// drops and counts it when the queue is full.
    fn push(&self, line: &[u8]) {
        let mut state = lock(&self.shared);
        if state.lines >= self.shared.max_lines || state.queued.len() + line.len() > QUEUE_BYTES {
            drop(state);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.queued.extend_from_slice(line);
        state.lines += 1;
        if state.idle {
            state.idle = false;
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

/// The writer thread: sleeps until a line arrives, lets more gather for
/// [`COALESCE`], writes them all, and on stop writes what is left.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let stopping = {
            let mut state = lock(shared);
            while state.queued.is_empty() && !state.stop {
                state.idle = true;
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.idle = false;
            state.stop
        };
        if !stopping {
            std::thread::sleep(COALESCE);
        }
        {
            let mut state = lock(shared);
            std::mem::swap(&mut state.queued, &mut batch);
            state.lines = 0;
        }
        // A closed or broken stderr loses the lines; there is nowhere
        // else to say so.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // One burst of long lines must not keep megabytes for good.
        if batch.capacity() > QUEUE_BYTES / 4 {
            batch = Vec::new();
        }
        if stopping && lock(shared).queued.is_empty() {
            return;
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.wake.notify_one();
        // Nothing is ever sent: this returns when the thread has ended, or
        // gives up on a writer stuck in `write` (which the process exit
        // then takes down with it).
        let ended = matches!(
            self.finished.recv_timeout(FLUSH_TIMEOUT),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        if let Some(thread) = self.thread.take().filter(|_| ended) {
            let _ = thread.join();
        }
    }
}

/// One event's writer: forwards the formatted line to the queue.
pub struct LineWriter<'a>(&'a BatchWriter);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Collects what the writer thread writes, a `write_all` per batch.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // Takes all of `buf`, so each `write_all` of a batch is one call.
            let mut batches = self.0.lock().unwrap_or_else(|p| p.into_inner());
            batches.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stderr that hangs until the test lets it go, like a stalled pipe.
    struct Stalled(mpsc::Receiver<()>, Sink);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(writer: &BatchWriter, line: &str) {
        use tracing_subscriber::fmt::MakeWriter;
        writer
            .make_writer()
            .write_all(line.as_bytes())
            .expect("queueing never fails");
    }

    #[test]
    fn lines_logged_together_leave_in_one_write_in_order_and_stop_flushes_them() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::start(sink.clone(), 100, "test-log").expect("thread");
        for i in 0..50 {
            log(&writer, &format!("line {i}\n"));
        }
        drop(guard);
        let batches = sink.0.lock().expect("sink").clone();
        let all: Vec<u8> = batches.concat();
        let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&all), expected);
        // 50 lines queued well within one coalescing period: not 50 writes.
        assert!(batches.len() < 5, "{} writes for 50 lines", batches.len());
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn a_stalled_stderr_drops_and_counts_lines_beyond_the_limit_and_keeps_the_rest() {
        let (release, stall) = mpsc::channel();
        let sink = Sink::default();
        let (writer, guard) =
            BatchWriter::start(Stalled(stall, sink.clone()), 10, "test-log").expect("thread");
        // The first batch goes to the writer, which then hangs in write.
        log(&writer, "first\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !lock(&writer.shared).queued.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "writer never took the batch"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 0..25 {
            log(&writer, &format!("queued {i}\n"));
        }
        assert_eq!(writer.dropped(), 15);
        for _ in 0..10 {
            let _ = release.send(());
        }
        drop(release);
        drop(guard);
        let all = String::from_utf8(sink.0.lock().expect("sink").concat()).expect("utf-8");
        let expected: String = std::iter::once("first\n".to_string())
            .chain((0..10).map(|i| format!("queued {i}\n")))
            .collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn stopping_gives_up_on_a_stderr_that_never_takes_its_lines() {
        let (release, stall) = mpsc::channel();
        let (writer, guard) =
            BatchWriter::start(Stalled(stall, Sink::default()), 10, "test-log").expect("thread");
        log(&writer, "stuck\n");
        let started = std::time::Instant::now();
        drop(guard);
        let waited = started.elapsed();
        assert!(
            waited >= FLUSH_TIMEOUT,
            "returned after {waited:?} without the lines"
        );
        assert!(waited < FLUSH_TIMEOUT * 3, "stop hung for {waited:?}");
        // Let the stuck thread finish.
        drop(release);
    }

    #[test]
    fn a_line_longer_than_the_byte_limit_is_dropped_not_split() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::start(sink.clone(), 100, "test-log").expect("thread");
        log(&writer, &"x".repeat(QUEUE_BYTES + 1));
        log(&writer, "short\n");
        drop(guard);
        assert_eq!(writer.dropped(), 1);
        assert_eq!(sink.0.lock().expect("sink").concat(), b"short\n");
    }
}
