//! Log output in batches: a log line is copied into a shared buffer, which
//! a background thread writes out every [`FLUSH_EVERY`], so that the access
//! log (one `info` line per request) costs a copy rather than a `write(2)`
//! of its own on every request.
//!
//! Lines at `warn` and above, and a buffer past [`MAX_BUFFER`], are written
//! out at once (after what is buffered, so the order is kept). Whatever is
//! buffered is written when the [`FlushGuard`] is dropped, at the end of
//! `main`: a line can only be lost if the process is killed outright
//! (SIGKILL, abort), and then at most the last [`FLUSH_EVERY`] of them.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this large is written out at once by the thread that filled it.
const MAX_BUFFER: usize = 256 * 1024;

struct Shared<W> {
    /// Lines not yet written. Held only to append or to swap it out.
    buffer: Mutex<Vec<u8>>,
    /// The output and a spare buffer. Held while writing, so that batches
    /// come out in the order they were taken.
    out: Mutex<(W, Vec<u8>)>,
    stopping: Mutex<bool>,
    stop: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves data that is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W: Write> Shared<W> {
    /// Writes out everything buffered so far.
    fn drain(&self) {
        let mut out = lock(&self.out);
        let (writer, spare) = &mut *out;
        std::mem::swap(&mut *lock(&self.buffer), spare);
        if !spare.is_empty() {
            // Nowhere to report a failure to write the logs.
            let _ = writer.write_all(spare);
            let _ = writer.flush();
            spare.clear();
        }
    }
}

/// A [`MakeWriter`] for `tracing_subscriber::fmt` that batches its output.
pub struct Batched<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

/// Writes out whatever is buffered, and stops the background thread, when
/// dropped.
pub struct FlushGuard<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<W: Write + Send + 'static> Batched<W> {
    /// Batches writes to `out`; the guard must live as long as logging does.
    pub fn new(out: W) -> (Batched<W>, FlushGuard<W>) {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Vec::with_capacity(16 * 1024)),
            out: Mutex::new((out, Vec::with_capacity(16 * 1024))),
            stopping: Mutex::new(false),
            stop: Condvar::new(),
        });
        let flusher = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sigil-log".into())
            .spawn(move || {
                let mut stopping = lock(&flusher.stopping);
                while !*stopping {
                    stopping = flusher
                        .stop
                        .wait_timeout(stopping, FLUSH_EVERY)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|e| e.into_inner().0);
                    flusher.drain();
                }
            })
            .ok();
        (
            Batched {
                shared: Arc::clone(&shared),
            },
            FlushGuard { shared, thread },
        )
    }
}

impl<W: Write + Send + 'static> Drop for FlushGuard<W> {
    fn drop(&mut self) {
        *lock(&self.shared.stopping) = true;
        self.shared.stop.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.drain();
    }
}

/// One event's output.
pub struct BatchWriter<'a, W: Write + Send + 'static> {
    shared: &'a Shared<W>,
    urgent: bool,
}

impl<W: Write + Send + 'static> Write for BatchWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buffer = lock(&self.shared.buffer);
            buffer.extend_from_slice(bytes);
            buffer.len() >= MAX_BUFFER
        };
        if self.urgent || full {
            self.shared.drain();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for Batched<W> {
    type Writer = BatchWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        BatchWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_comes_out_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (batched, guard) = Batched::new(sink.clone());
        for i in 0..1000 {
            writeln!(batched.make_writer(), "line {i}").unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_warning_is_written_at_once_after_what_was_buffered() {
        let sink = Sink::default();
        let (batched, _guard) = Batched::new(sink.clone());
        writeln!(batched.make_writer(), "info").unwrap();
        let mut urgent = BatchWriter {
            shared: &batched.shared,
            urgent: true,
        };
        writeln!(urgent, "warn").unwrap();
        assert_eq!(&*sink.0.lock().unwrap(), b"info\nwarn\n");
    }
}
