//! The results of a run as serialisable figures, and the JSON file.
//!
//! The table printed on stdout is in `table.rs`, the SVG plots (latency percentiles,
//! deliveries per second) in `svg.rs`, on the line charts of `chart.rs`.

pub mod chart;
mod svg;
mod table;

pub use svg::write_svg;
pub use table::table;

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::peer::Peer;
use crate::traffic::{PhaseStats, Shared};
use crate::Args;

/// Latency figures in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Raw readings taken once a second: cumulative CPU seconds and current RSS.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the phase (or hold) began.
    pub t: f64,
    pub server_rss_kib: Option<u64>,
    pub server_cpu_secs: Option<f64>,
    pub client_cpu_secs: Option<f64>,
}

/// One second of a publish phase.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the phase began, at the start of this second.
    pub t: u64,
    pub deliveries: u64,
    /// Share of one core the server used in this second (1.0 = one core).
    pub server_cpu: Option<f64>,
    pub client_cpu: Option<f64>,
    pub server_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    pub requested: usize,
    /// Sessions made (0, in no time, for a peer without sessions).
    pub sessions_ok: usize,
    pub session_secs: f64,
    pub sessions_per_sec: f64,
    pub connected: usize,
    pub failed: usize,
    /// Failed sessions and connections, by reason.
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the socket phase: connect, upgrade, join, welcome for every member.
    pub socket_secs: f64,
    pub connections_per_sec: f64,
    pub total_secs: f64,
    /// Per connection, from connect to welcome.
    pub setup_latency_us: Percentiles,
    pub server_cpu_sessions_secs: Option<f64>,
    pub server_cpu_sockets_secs: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// (RSS after connecting − RSS before) / connections.
    pub rss_per_connection_bytes: Option<f64>,
    pub sources: usize,
    pub rooms: usize,
    /// Members connected to each `--target`, in its order (several targets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_per_target: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub held_secs: f64,
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub server_cpu_secs: Option<f64>,
    pub alive_at_end: usize,
    pub samples: Vec<Sample>,
    /// `typing` frames over the hold (typing runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing: Option<TypingWindow>,
}

/// The `typing` frames of a phase, or of the idle hold, over the span its server CPU covers.
#[derive(Debug, Clone, Serialize)]
pub struct TypingWindow {
    /// Sent by the typing members.
    pub sent: u64,
    /// Received by the other members of their rooms.
    pub received: u64,
    pub received_per_sec: f64,
}

/// The typing counters at one moment: two of them make a [`TypingWindow`].
pub struct TypingMark {
    sent: u64,
    received: u64,
    at: Instant,
}

impl TypingMark {
    pub fn now(shared: &Shared) -> Self {
        TypingMark {
            sent: shared.typing_sent.load(Ordering::Relaxed),
            received: shared.typing_received.load(Ordering::Relaxed),
            at: Instant::now(),
        }
    }

    /// What happened from this mark to `end`.
    pub fn window_to(&self, end: &TypingMark) -> TypingWindow {
        let received = end.received.saturating_sub(self.received);
        let secs = end.at.saturating_duration_since(self.at).as_secs_f64();
        TypingWindow {
            sent: end.sent.saturating_sub(self.sent),
            received,
            received_per_sec: received as f64 / secs.max(1e-9),
        }
    }
}

/// The run's typing (`--typing-fraction`), counted to the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TypingReport {
    /// Members that typed, each sending `typing` every `every_secs`.
    pub members: usize,
    pub every_secs: f64,
    pub sent: u64,
    /// Receipts the frames sent should get: each goes to the other members of its room.
    pub expected: u64,
    pub received: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Messages per second asked for (0: window-limited).
    pub rate: f64,
    pub duration_secs: f64,
    pub published: u64,
    pub acked: u64,
    /// Error answers to published messages, by code.
    pub refused: BTreeMap<String, u64>,
    pub send_failures: u64,
    /// Acked messages × the members of their room.
    pub expected_deliveries: u64,
    /// Deliveries of acked messages, counted at the end of the drain.
    pub deliveries: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Deliveries of messages whose sender never saw them confirmed.
    pub unacked_deliveries: u64,
    /// Deliveries of this phase's messages that came after its drain (filled in at the end).
    pub late_deliveries: u64,
    /// From the phase's start to its last delivery.
    pub delivery_secs: f64,
    pub deliveries_per_sec: f64,
    pub latency_us: Percentiles,
    pub ack_latency_us: Percentiles,
    /// (percentile, µs) pairs for plotting.
    pub latency_curve: Vec<(f64, u64)>,
    /// Server CPU over publishing and draining.
    pub server_cpu_secs: Option<f64>,
    pub deliveries_per_server_cpu_sec: Option<f64>,
    pub client_cpu_secs: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub timeline: Vec<Second>,
    /// Deliveries whose receiver is on another node than the sender (several targets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_node: Option<CrossNode>,
    /// Server CPU over publishing and draining, by process (several server pids only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_by_process: Option<Vec<ProcessCpu>>,
    /// `typing` frames over publishing and draining (typing runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing: Option<TypingWindow>,
}

/// The deliveries of a phase whose sender and receiver are on different nodes.
#[derive(Debug, Clone, Serialize)]
pub struct CrossNode {
    pub deliveries: u64,
    /// Over the same span as the phase's `deliveries_per_sec`.
    pub deliveries_per_sec: f64,
    /// Their share of all this phase's deliveries.
    pub share: f64,
    pub latency_us: Percentiles,
    pub latency_curve: Vec<(f64, u64)>,
}

impl CrossNode {
    pub fn of(p: &PhaseStats, delivery_secs: f64) -> Self {
        CrossNode {
            deliveries: p.cross_delivered,
            deliveries_per_sec: p.cross_delivered as f64 / delivery_secs.max(1e-9),
            share: p.cross_delivered as f64 / (p.delivered.max(1)) as f64,
            latency_us: Percentiles::of(&p.cross_latency),
            latency_curve: curve(&p.cross_latency),
        }
    }
}

/// One server process's CPU time in a phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
    pub cpu_secs: Option<f64>,
}

impl PhaseReport {
    pub fn from_stats(
        p: &PhaseStats,
        duration_secs: f64,
        server_cpu_secs: Option<f64>,
        client_cpu_secs: Option<f64>,
        rss_before_kib: Option<u64>,
        rss_after_kib: Option<u64>,
        samples: Vec<Sample>,
    ) -> Self {
        let (mut expected, mut received, mut duplicates, mut unacked) = (0u64, 0u64, 0u64, 0u64);
        for m in &p.msgs {
            let (size, got) = (u64::from(m.room_size), u64::from(m.delivered));
            if m.acked {
                expected += size;
                received += got.min(size);
            } else {
                unacked += got;
            }
            duplicates += got.saturating_sub(size);
        }
        let delivery_secs = p
            .last_delivery
            .map(|t| t.saturating_duration_since(p.start).as_secs_f64())
            .unwrap_or(0.0);
        let timeline = (0..samples.len().saturating_sub(1))
            .map(|k| {
                let (a, b) = (&samples[k], &samples[k + 1]);
                let dt = (b.t - a.t).max(1e-3);
                let rate = |x: Option<f64>, y: Option<f64>| Some((y? - x?) / dt);
                Second {
                    t: k as u64,
                    deliveries: p.per_second.get(k).copied().unwrap_or(0),
                    server_cpu: rate(a.server_cpu_secs, b.server_cpu_secs),
                    client_cpu: rate(a.client_cpu_secs, b.client_cpu_secs),
                    server_rss_kib: b.server_rss_kib,
                }
            })
            .collect();
        PhaseReport {
            rate: p.rate,
            duration_secs,
            published: p.sent,
            acked: p.acked,
            refused: p.refused.clone(),
            send_failures: p.send_failures,
            expected_deliveries: expected,
            deliveries: received,
            lost: expected - received,
            duplicates,
            unacked_deliveries: unacked,
            late_deliveries: 0,
            delivery_secs,
            deliveries_per_sec: p.delivered as f64 / delivery_secs.max(1e-9),
            latency_us: Percentiles::of(&p.latency),
            ack_latency_us: Percentiles::of(&p.ack_latency),
            latency_curve: curve(&p.latency),
            server_cpu_secs,
            deliveries_per_server_cpu_sec: server_cpu_secs
                .filter(|c| *c > 0.0)
                .map(|c| p.delivered as f64 / c),
            client_cpu_secs,
            rss_before_kib,
            rss_after_kib,
            timeline,
            cross_node: None,
            server_cpu_by_process: None,
            typing: None,
        }
    }
}

/// Percentile curve points, denser towards the tail.
fn curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, u64)> = h
        .iter_quantiles(2)
        .map(|v| (v.quantile_iterated_to() * 100.0, v.value_iterated_to()))
        .collect();
    points.dedup_by(|a, b| a.0 == b.0);
    points
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    /// The server under test (`ours`, `node-ws`).
    pub peer: Peer,
    pub tool: String,
    pub started_unix_secs: u64,
    pub config: Args,
    pub machine: Machine,
    pub setup: SetupReport,
    pub idle: Option<IdleReport>,
    pub phases: Vec<PhaseReport>,
    /// Connections that ended during the run, by why.
    pub disconnects: BTreeMap<String, u64>,
    /// Error frames not about a published message, by code.
    pub errors: BTreeMap<String, u64>,
    pub presence_frames: u64,
    pub heartbeats: u64,
    /// Typing runs only (`--typing-fraction`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typing: Option<TypingReport>,
    pub foreign_messages: u64,
    pub alive_at_end: usize,
    pub client_rss_kib: Option<u64>,
    pub client_cpu_secs: Option<f64>,
    /// Soak runs: the server's database, WAL and memory over time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub soak: Vec<crate::soak::SoakSample>,
}

impl Report {
    pub fn new(config: Args, setup: SetupReport) -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Report {
            label: config.label.clone().unwrap_or_else(|| "chat-bench".into()),
            peer: config.peer,
            tool: format!("chat-bench {}", env!("CARGO_PKG_VERSION")),
            started_unix_secs: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            config,
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                kernel,
            },
            setup,
            idle: None,
            phases: Vec::new(),
            disconnects: BTreeMap::new(),
            errors: BTreeMap::new(),
            presence_frames: 0,
            heartbeats: 0,
            typing: None,
            foreign_messages: 0,
            alive_at_end: 0,
            client_rss_kib: None,
            client_cpu_secs: None,
            soak: Vec::new(),
        }
    }

    /// The typing of the whole run, by `members` typing members (none: no figures).
    pub fn typed(&mut self, shared: &Shared, members: usize, every_secs: f64) {
        self.typing = (members > 0).then(|| TypingReport {
            members,
            every_secs,
            sent: shared.typing_sent.load(Ordering::Relaxed),
            expected: shared.typing_expected.load(Ordering::Relaxed),
            received: shared.typing_received.load(Ordering::Relaxed),
        });
    }

    /// Takes the run-wide counters at the end.
    pub fn finish(&mut self, shared: &Shared, client_rss: Option<u64>, client_cpu: Option<f64>) {
        let lock = |m: &std::sync::Mutex<BTreeMap<String, u64>>| {
            m.lock().unwrap_or_else(|e| e.into_inner()).clone()
        };
        self.disconnects = lock(&shared.disconnects);
        self.errors = lock(&shared.errors);
        self.presence_frames = shared.presence_frames.load(Ordering::Relaxed);
        self.heartbeats = shared.heartbeats.load(Ordering::Relaxed);
        self.foreign_messages = shared.foreign.load(Ordering::Relaxed);
        self.alive_at_end = shared.alive.load(Ordering::Relaxed);
        let phases = shared.phases();
        for (report, stats) in self.phases.iter_mut().zip(phases.iter()) {
            report.late_deliveries = stats.late;
        }
        self.client_rss_kib = client_rss;
        self.client_cpu_secs = client_cpu;
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn write_json(r: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(r)?)?;
    Ok(())
}
