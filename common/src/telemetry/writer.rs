//! The log writer: lines go to a bounded queue and a thread of their own writes them to
//! stderr, so a slow or blocked stderr (a full pipe, a stalled log shipper) never stalls a
//! request; when the queue is full, lines are dropped and counted instead.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread at most (about 8 MiB at a typical 500 bytes a line).
const QUEUE_LINES: usize = 16 * 1024;

/// What the writer thread writes to stderr in one call at most.
const BATCH_BYTES: usize = 64 * 1024;

/// How long the writer thread waits after a write before it looks at the queue again. Why: a
/// line queued while the thread is blocked waiting for one wakes it (a futex call and a context
/// switch, on the worker's own core when pinned), and waking it for every access-log line cost
/// more CPU per request than making the line. While it pauses, lines gather without waking
/// anyone: a busy gateway wakes it about 100 times a second whatever its request rate, and a
/// line waits 10 ms at most.
const WRITE_PAUSE: Duration = Duration::from_millis(10);

/// Log lines dropped because the queue was full, since the process started.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued and not written yet.
static PENDING: AtomicU64 = AtomicU64::new(0);
static QUEUE: OnceLock<SyncSender<Vec<u8>>> = OnceLock::new();

/// Lines dropped so far (exported as `gatehouse_log_lines_dropped_total`).
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Hands formatted lines to the writer thread.
#[derive(Clone, Copy, Debug)]
pub struct QueueWriter {
    tx: &'static SyncSender<Vec<u8>>,
}

impl QueueWriter {
    /// Starts the writer thread (once per process) and returns the writer for the subscriber.
    pub fn start() -> io::Result<QueueWriter> {
        if let Some(tx) = QUEUE.get() {
            return Ok(QueueWriter { tx });
        }
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        std::thread::Builder::new()
            .name("gatehouse-log".into())
            .spawn(move || drain(rx, &mut io::stderr(), WRITE_PAUSE))?;
        let tx = QUEUE.get_or_init(|| tx);
        Ok(QueueWriter { tx })
    }

    fn send(self, line: Vec<u8>) {
        PENDING.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(line).is_err() {
            PENDING.fetch_sub(1, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes what is queued, batching the lines already waiting into one write, and pausing for
/// `pause` after each write that emptied the queue.
fn drain(rx: Receiver<Vec<u8>>, out: &mut impl Write, pause: Duration) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    // Blocks only when the queue was empty after a pause: the next line wakes the thread.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(line) = next.take() {
            batch.extend_from_slice(&line);
            let mut lines = 1;
            while batch.len() < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(more) => {
                        batch.extend_from_slice(&more);
                        lines += 1;
                    }
                    Err(_) => break,
                }
            }
            // A full batch means more is waiting: write on without pausing, so the pause never
            // limits how fast lines go out (at 64 KiB per 10 ms it would, near 13,000 lines/s).
            let full = batch.len() >= BATCH_BYTES;
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
            PENDING.fetch_sub(lines, Ordering::Relaxed);
            if !full {
                std::thread::sleep(pause);
            }
            next = rx.try_recv().ok();
        }
    }
}

/// Waits (up to `limit`) until every queued line is written: called once the process has
/// stopped serving, so the shutdown's own lines are not lost.
pub fn flush(limit: Duration) {
    let until = Instant::now() + limit;
    while PENDING.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One event's writer: collects the line, queues it when dropped.
pub struct LineWriter {
    queue: QueueWriter,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.send(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            queue: *self,
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An output that blocks each write until told to go on: a stalled stderr.
    struct Stalled {
        entered: std::sync::mpsc::Sender<()>,
        gate: std::sync::mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.gate.recv();
            self.out.lock().expect("output").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_instead_of_blocking_the_logger() {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let (go, gate) = std::sync::mpsc::channel();
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut output = Stalled {
            entered: entered_tx,
            gate,
            out: out.clone(),
        };
        std::thread::spawn(move || drain(rx, &mut output, WRITE_PAUSE));
        let queue = QueueWriter {
            tx: Box::leak(Box::new(tx)),
        };
        let before = dropped_lines();
        let started = Instant::now();
        let log = |i: i32| {
            let mut w = queue.make_writer();
            writeln!(w, "line {i}").expect("write");
        };
        // The first line reaches the output, which then hangs.
        log(0);
        entered.recv().expect("the writer took the first line");
        for i in 1..100 {
            log(i);
        }
        // 99 more lines into a queue of 4 behind the stuck output: no waiting, 95 dropped.
        assert!(started.elapsed() < Duration::from_secs(1));
        let dropped = dropped_lines() - before;
        assert_eq!(dropped, 95);
        // Unstuck, the output gets every line that was queued, whole and in order.
        for _ in 0..100 {
            go.send(()).expect("writer thread");
        }
        let want = 100 - dropped as usize;
        let until = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let text = String::from_utf8(out.lock().expect("output").clone()).expect("utf-8");
            if text.lines().count() >= want || Instant::now() > until {
                break text;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), want, "{text}");
        assert_eq!(lines[0], "line 0");
        let numbers: Vec<u32> = lines
            .iter()
            .map(|l| {
                l.trim_start_matches("line ")
                    .parse()
                    .expect("a line number")
            })
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    /// Records each write it is given.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("writes").push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// More lines than a batch holds, queued at once behind a long pause: written back to back
    /// in full batches, not one batch per pause.
    #[test]
    fn full_batches_are_written_without_pausing() {
        let (tx, rx) = sync_channel::<Vec<u8>>(4096);
        let writes = Writes::default();
        let mut output = writes.clone();
        let line = vec![b'x'; 1023];
        let lines = 4 * BATCH_BYTES / 1024;
        for _ in 0..lines {
            let mut l = line.clone();
            l.push(b'\n');
            tx.send(l).expect("queue");
        }
        let started = Instant::now();
        std::thread::spawn(move || drain(rx, &mut output, Duration::from_secs(30)));
        let written = || -> usize { writes.0.lock().expect("writes").iter().map(Vec::len).sum() };
        let until = Instant::now() + Duration::from_secs(10);
        while written() < lines * 1024 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(written(), lines * 1024, "every line written");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no 30 s pause between batches"
        );
        assert!(
            writes.0.lock().expect("writes").len() >= 4,
            "in batches of at most 64 KiB"
        );
    }

    /// A line is written at once; the lines that come while the writer pauses after it are
    /// written together, in one write, when the pause ends.
    #[test]
    fn lines_that_come_during_the_pause_are_written_together() {
        let (tx, rx) = sync_channel::<Vec<u8>>(1024);
        let writes = Writes::default();
        let mut output = writes.clone();
        std::thread::spawn(move || drain(rx, &mut output, Duration::from_millis(300)));
        let count = || writes.0.lock().expect("writes").len();
        let wait_for = |n: usize| {
            let until = Instant::now() + Duration::from_secs(5);
            while count() < n && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            count()
        };
        tx.send(b"first\n".to_vec()).expect("queue");
        assert_eq!(wait_for(1), 1, "the first line is written at once");
        for i in 0..50 {
            tx.send(format!("line {i}\n").into_bytes()).expect("queue");
        }
        assert_eq!(wait_for(2), 2);
        std::thread::sleep(Duration::from_millis(50));
        let all = writes.0.lock().expect("writes").clone();
        assert_eq!(all.len(), 2, "50 lines in one write");
        let text = String::from_utf8(all[1].clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 50);
        assert!(
            text.starts_with("line 0\n") && text.ends_with("line 49\n"),
            "{text}"
        );
    }
}
