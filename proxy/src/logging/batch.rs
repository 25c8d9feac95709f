//! A lossy, batching log writer: threads append whole lines to a shared
//! in-memory buffer, and one background thread writes the buffer out every
//! [`FLUSH_INTERVAL`] (sooner once [`FLUSH_AT`] bytes are pending).
//!
//! Performance: this replaces `tracing_appender::non_blocking`, whose writer
//! thread is woken for every line (a futex wake, `sched_yield`s and one
//! `write(2)` per line, on the same core as the proxy's worker when the
//! proxy is pinned). Here a line costs a short uncontended lock and a copy;
//! the writer thread wakes 20 times a second and writes each batch with one
//! `write(2)`. Like before, no request ever waits on the output: when it
//! stalls and [`MAX_PENDING`] bytes are queued, new lines are dropped.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Longest time a line waits in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Pending bytes that wake the writer thread before the interval ends.
pub const FLUSH_AT: usize = 256 * 1024;
/// Pending bytes beyond which new lines are dropped (the output is stalled).
pub const MAX_PENDING: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    closed: AtomicBool,
}

/// The writer half: cheap to clone, usable as a [`MakeWriter`].
#[derive(Debug, Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes what is pending and stops the writer thread when dropped.
#[derive(Debug)]
pub struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread that writes batches to `out`.
pub fn spawn<W: Write + Send + 'static>(out: W) -> io::Result<(BatchWriter, BatchGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log writer".to_owned())
            .spawn(move || write_batches(&shared, out))?
    };
    let writer = BatchWriter {
        shared: Arc::clone(&shared),
    };
    let guard = BatchGuard {
        shared,
        thread: Some(thread),
    };
    Ok((writer, guard))
}

fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::with_capacity(FLUSH_AT);
    loop {
        let closed = {
            let mut pending = shared.pending.lock();
            if pending.len() < FLUSH_AT && !shared.closed.load(Ordering::Acquire) {
                shared.wake.wait_for(&mut pending, FLUSH_INTERVAL);
            }
            std::mem::swap(&mut *pending, &mut batch);
            shared.closed.load(Ordering::Acquire)
        };
        if !batch.is_empty() {
            // Nowhere to report a failing log output; the next batch retries.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            if batch.capacity() > 4 * FLUSH_AT {
                batch = Vec::with_capacity(FLUSH_AT);
            }
        }
        if closed {
            return;
        }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        {
            let _pending = self.shared.pending.lock();
            self.shared.closed.store(true, Ordering::Release);
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for &BatchWriter {
    /// Appends `buf` (tracing writes each event with one call), or drops it
    /// when the output has stalled.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.pending.lock();
        if pending.len() + buf.len() > MAX_PENDING {
            return Ok(buf.len());
        }
        let was_below = pending.len() < FLUSH_AT;
        pending.extend_from_slice(buf);
        if was_below && pending.len() >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Collects written bytes and counts write calls.
    #[derive(Clone, Default)]
    struct Sink(Arc<parking_lot::Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut inner = self.0.lock();
            inner.0.extend_from_slice(buf);
            inner.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batches_lines_and_flushes_on_drop() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        for i in 0..1000 {
            writeln!(writer.make_writer(), "line {i}").unwrap();
        }
        drop(guard);
        let (bytes, writes) = sink.0.lock().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text.starts_with("line 0\n") && text.ends_with("line 999\n"));
        assert!(writes < 10, "{writes} writes for 1000 lines");
    }

    #[test]
    fn lines_appear_within_the_interval() {
        let sink = Sink::default();
        let (writer, _guard) = spawn(sink.clone()).unwrap();
        writer.make_writer().write_all(b"hello\n").unwrap();
        // At most 20 intervals (the writer normally needs one).
        for _ in 0..200 {
            if !sink.0.lock().0.is_empty() {
                break;
            }
            std::thread::sleep(FLUSH_INTERVAL / 10);
        }
        assert_eq!(sink.0.lock().0, b"hello\n");
    }

    #[test]
    fn drops_lines_when_the_output_stalls() {
        let writer = BatchWriter {
            shared: Arc::new(Shared::default()),
        };
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..40 {
            writer.make_writer().write_all(&line).unwrap();
        }
        assert!(writer.shared.pending.lock().len() <= MAX_PENDING);
    }
}
