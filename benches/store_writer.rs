//! Benchmark of the message log's writer: messages persisted per second with group commit, and the
//! acknowledgement latency it adds at a steady rate. Run: `cargo bench --features ssr --bench store_writer`.
//!
//! Each message goes the production path: `Appender::append` → writer thread → SQLite (WAL,
//! synchronous=NORMAL) on a real file → `Delivery::deliver`, which is where the server
//! acknowledges. Latency is measured from `append` to `deliver`.

use chatroom::protocol::Member;
use chatroom::server::log::sqlite::{Appender, Store};
use chatroom::server::log::{Action, Append, Delivery, Entry, Outcome, StoreError};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records when each message was committed, relative to `start`.
struct Recorder {
    start: Instant,
    done: AtomicU64,
    failed: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Delivery for Recorder {
    fn deliver(&self, append: Append, outcome: Outcome) {
        if !matches!(outcome, Outcome::Stored(_)) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        // The client id carries the send time in µs since `start`.
        let sent = append.client_id[1..]
            .split('_')
            .next()
            .map(str::parse::<u64>);
        if let Some(Ok(sent)) = sent {
            let now = self.start.elapsed().as_micros() as u64;
            let _ = self
                .latency_us
                .lock()
                .unwrap()
                .record(now.saturating_sub(sent).max(1));
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Only a shared log (Redis) delivers messages apart from their appends.
    fn deliver_committed(&self, _room: &str, _entry: Entry, _received: Option<Instant>) {}

    /// Only a shared log (Redis) passes on other nodes' typing.
    fn deliver_typing(&self, _room: &str, _name: &str) {}
}

fn message(room: usize, sent_us: u64, i: u64) -> Append {
    Append {
        room: format!("room-{room}").into(),
        conn: 1,
        session: format!("session-{}", i % 64).into(),
        // Send time first (what the recorder reads), then `i` for uniqueness.
        client_id: format!("t{sent_us}_{i}"),
        author: Member {
            name: format!("member-{}", i % 64),
            avatar: "fox".into(),
        },
        action: Action::Post {
            text: "A chat message of ordinary length, about a hundred bytes long, like most people write."
                .into(),
            reply_to: None,
        },
        received: std::time::Instant::now(),
    }
}

fn setup() -> (tempfile::TempDir, Appender, Arc<Recorder>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("bench.db"), 0).expect("store opens");
    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")),
    });
    let (appender, _writer) = store.start_writer(recorder.clone()).expect("writer starts");
    (dir, appender, recorder)
}

fn wait_for(recorder: &Recorder, n: u64) {
    while recorder.done.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// As many messages as the writer takes, across `rooms` rooms.
fn throughput(total: u64, rooms: usize) -> (f64, u64) {
    let (_dir, appender, recorder) = setup();
    let start = Instant::now();
    for i in 0..total {
        let sent = recorder.start.elapsed().as_micros() as u64;
        let mut m = message(i as usize % rooms, sent, i);
        loop {
            match appender.append(m) {
                Ok(()) => break,
                Err(StoreError::Busy) => {
                    std::thread::sleep(Duration::from_micros(50));
                    m = message(i as usize % rooms, sent, i);
                }
                Err(e) => panic!("append failed: {e}"),
            }
        }
    }
    wait_for(&recorder, total);
    let secs = start.elapsed().as_secs_f64();
    (total as f64 / secs, recorder.failed.load(Ordering::Relaxed))
}

/// A steady `rate` per second for `secs` seconds; returns the latency histogram (µs).
fn steady(rate: u64, secs: u64) -> Histogram<u64> {
    let (_dir, appender, recorder) = setup();
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let begin = Instant::now();
    for i in 0..total {
        let due = begin + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent = recorder.start.elapsed().as_micros() as u64;
        appender
            .append(message(i as usize % 10, sent, i))
            .expect("queue has room");
    }
    wait_for(&recorder, total);
    let h = recorder.latency_us.lock().unwrap().clone();
    h
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 50_000 } else { 500_000 };
    let secs = if quick { 2 } else { 10 };
    println!("store writer benchmark (SQLite WAL, synchronous=NORMAL, group commit up to {} per transaction)", chatroom::server::log::sqlite::MAX_BATCH);
    let latency_only = std::env::args().any(|a| a == "--latency-only");
    let mut results = Vec::new();
    // Latency first, on a quiet disk: the throughput runs leave much data for the kernel to write back.
    let h = steady(10_000, secs);
    let (p50, p99, p999, max) = (
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    );
    println!(
        "  ack latency at 10,000 messages/s for {secs} s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} messages)",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        p999 as f64 / 1000.0,
        max as f64 / 1000.0,
        h.len()
    );
    results.push(serde_json::json!({"scenario": "steady", "rate": 10_000, "seconds": secs,
        "p50_ms": p50 as f64 / 1000.0, "p99_ms": p99 as f64 / 1000.0, "p999_ms": p999 as f64 / 1000.0, "max_ms": max as f64 / 1000.0}));
    for rooms in [1, 100].into_iter().filter(|_| !latency_only) {
        let (rate, failed) = throughput(total, rooms);
        println!("  throughput, {rooms:>3} room(s): {rate:>10.0} messages/s persisted ({total} messages, {failed} failed)");
        results.push(serde_json::json!({"scenario": "throughput", "rooms": rooms, "messages": total, "persisted_per_sec": rate.round()}));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&out);
    let path = out.join("store_writer.json");
    if std::fs::write(
        &path,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("  written to {}", path.display());
    }
}
