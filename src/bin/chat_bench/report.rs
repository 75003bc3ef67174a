//! The results: figures as serialisable structs, the table printed on stdout, the JSON file and the SVG plots (latency percentiles, deliveries per second).

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

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
            foreign_messages: 0,
            alive_at_end: 0,
            client_rss_kib: None,
            client_cpu_secs: None,
            soak: Vec::new(),
        }
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

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn map(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The human-readable summary.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.setup;
    let c = &r.config;
    let _ = writeln!(out, "\n== {} ==", r.label);
    let _ = writeln!(
        out,
        "peer {}  target {}  connections {}  room size {} ({} rooms)  publishers {}  sources {}",
        r.peer.name(),
        crate::targets_text(&c.target),
        c.connections,
        c.room_size,
        s.rooms,
        c.publishers,
        s.sources
    );
    if !c.server_pids.is_empty() {
        let pids: Vec<String> = c.server_pids.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "server CPU and RSS: sums over processes {}",
            pids.join(", ")
        );
    }
    let _ = writeln!(out, "\nset-up");
    let mut rows = vec![
        (
            "sessions (join POST)".to_string(),
            if r.peer.has_sessions() {
                format!(
                    "{} ok in {:.2} s = {:.0}/s",
                    s.sessions_ok, s.session_secs, s.sessions_per_sec
                )
            } else {
                format!("n/a ({} has no sessions)", r.peer.name())
            },
        ),
        (
            format!("sockets ({})", r.peer.setup_steps()),
            format!(
                "{} ok in {:.2} s = {:.0}/s",
                s.connected, s.socket_secs, s.connections_per_sec
            ),
        ),
        (
            "set-up latency p50 / p99 / max".into(),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                ms(s.setup_latency_us.p50),
                ms(s.setup_latency_us.p99),
                ms(s.setup_latency_us.max)
            ),
        ),
        (
            "failed".into(),
            format!("{} ({})", s.failed, map(&s.failures)),
        ),
        (
            "server CPU s (sessions / sockets)".into(),
            format!(
                "{} / {}",
                opt(s.server_cpu_sessions_secs.map(|v| format!("{v:.2}"))),
                opt(s.server_cpu_sockets_secs.map(|v| format!("{v:.2}")))
            ),
        ),
        (
            "server RSS before / after".into(),
            format!("{} / {} KiB", opt(s.rss_before_kib), opt(s.rss_after_kib)),
        ),
        (
            "server RSS per connection".into(),
            opt(s
                .rss_per_connection_bytes
                .map(|b| format!("{:.2} KiB", b / 1024.0))),
        ),
    ];
    if let Some(per) = &s.connected_per_target {
        let each: Vec<String> = c
            .target
            .iter()
            .zip(per)
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        rows.push(("connected per target".into(), each.join(", ")));
    }
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<40} {v}");
    }
    if let Some(i) = &r.idle {
        let _ = writeln!(out, "\nidle hold");
        let _ = writeln!(
            out,
            "  {:<40} {:.1} s, {} connections alive at the end",
            "held", i.held_secs, i.alive_at_end
        );
        let _ = writeln!(
            out,
            "  {:<40} {} / {} KiB",
            "server RSS start / end",
            opt(i.rss_start_kib),
            opt(i.rss_end_kib)
        );
        let _ = writeln!(
            out,
            "  {:<40} {}",
            "server CPU s while idle",
            opt(i.server_cpu_secs.map(|v| format!("{v:.2}")))
        );
    }
    if !r.phases.is_empty() {
        let _ = writeln!(
            out,
            "\npublish phases (latency: publish → receipt at every member)"
        );
        let _ = writeln!(
            out,
            "  {:>8} {:>9} {:>9} {:>12} {:>12} {:>9} {:>8} {:>12} {:>8} {:>8} {:>8} {:>8}",
            "rate/s",
            "published",
            "acked",
            "deliveries",
            "deliv/s",
            "lost",
            "srv CPU",
            "deliv/CPU-s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for p in &r.phases {
            let _ = writeln!(
                out,
                "  {:>8} {:>9} {:>9} {:>12} {:>12.0} {:>9} {:>8} {:>12} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
                p.rate,
                p.published,
                p.acked,
                p.deliveries,
                p.deliveries_per_sec,
                p.lost,
                opt(p.server_cpu_secs.map(|v| format!("{v:.2}s"))),
                opt(p.deliveries_per_server_cpu_sec.map(|v| format!("{v:.0}"))),
                ms(p.latency_us.p50),
                ms(p.latency_us.p99),
                ms(p.latency_us.p999),
                ms(p.latency_us.max)
            );
        }
        if r.phases.iter().any(|p| p.cross_node.is_some()) {
            let _ = writeln!(
                out,
                "\ncross-node deliveries (sender and receiver on different nodes)"
            );
            let _ = writeln!(
                out,
                "  {:>8} {:>12} {:>12} {:>6} {:>8} {:>8} {:>8} {:>8}",
                "rate/s",
                "deliveries",
                "deliv/s",
                "share",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms"
            );
            for p in &r.phases {
                let Some(x) = &p.cross_node else { continue };
                let _ = writeln!(
                    out,
                    "  {:>8} {:>12} {:>12.0} {:>5.0}% {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
                    p.rate,
                    x.deliveries,
                    x.deliveries_per_sec,
                    x.share * 100.0,
                    ms(x.latency_us.p50),
                    ms(x.latency_us.p99),
                    ms(x.latency_us.p999),
                    ms(x.latency_us.max)
                );
            }
        }
        for (k, p) in r.phases.iter().enumerate() {
            let mut extra = vec![
                ("refused", map(&p.refused)),
                ("send failures", p.send_failures.to_string()),
                ("duplicates", p.duplicates.to_string()),
                ("unacked deliveries", p.unacked_deliveries.to_string()),
                ("late deliveries", p.late_deliveries.to_string()),
                (
                    "client CPU s",
                    opt(p.client_cpu_secs.map(|v| format!("{v:.2}"))),
                ),
                (
                    "ack p50/p99 ms",
                    format!(
                        "{:.2}/{:.2}",
                        ms(p.ack_latency_us.p50),
                        ms(p.ack_latency_us.p99)
                    ),
                ),
                (
                    "server RSS before/after KiB",
                    format!("{}/{}", opt(p.rss_before_kib), opt(p.rss_after_kib)),
                ),
            ];
            if let Some(each) = &p.server_cpu_by_process {
                let each: Vec<String> = each
                    .iter()
                    .map(|e| {
                        let cpu = opt(e.cpu_secs.map(|v| format!("{v:.2}")));
                        format!("{} {} {cpu}", e.name, e.pid)
                    })
                    .collect();
                extra.push(("server CPU s by process", each.join(" + ")));
            }
            let line = extra
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "  phase {}: {line}", k + 1);
        }
    }
    let _ = writeln!(
        out,
        "\nconnections ended during the run: {}",
        map(&r.disconnects)
    );
    let _ = writeln!(out, "other error frames: {}", map(&r.errors));
    let _ = writeln!(
        out,
        "presence frames {}, heartbeats {}, foreign messages {}, alive at end {}, client RSS {} KiB, client CPU {} s",
        r.presence_frames,
        r.heartbeats,
        r.foreign_messages,
        r.alive_at_end,
        opt(r.client_rss_kib),
        opt(r.client_cpu_secs.map(|v| format!("{v:.2}")))
    );
    if !r.soak.is_empty() {
        let mib = |v: Option<u64>| opt(v.map(|b| format!("{:.1}", b as f64 / 1_048_576.0)));
        let _ = writeln!(
            out,
            "\nsoak samples (t s: database MiB, WAL MiB, server RSS MiB, confirmed, joins, leaves):"
        );
        let step = r.soak.len().div_ceil(12).max(1);
        let last = r.soak.len() - 1;
        for (i, s) in r.soak.iter().enumerate() {
            if i % step == 0 || i == last {
                let _ = writeln!(
                    out,
                    "  {:7.0}: {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
                    s.t,
                    mib(s.db_bytes),
                    mib(s.wal_bytes),
                    mib(s.server_rss_kib.map(|k| k * 1024)),
                    s.acked,
                    s.joins,
                    s.leaves
                );
            }
        }
    }
    out
}

pub fn write_json(r: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(r)?)?;
    Ok(())
}

/// Two panels: latency by percentile (log-log, one line per phase), and deliveries per
/// second over time (one line per phase). An idle run gets server RSS over time instead.
pub fn write_svg(r: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("{} (peer: {})", r.label, r.peer.name());
    let root = root.titled(&title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(430);
    latency_panel(r, &top)?;
    if r.phases.is_empty() {
        idle_panel(r, &bottom)?;
    } else {
        throughput_panel(r, &bottom)?;
    }
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn phase_name(p: &PhaseReport) -> String {
    if p.rate > 0.0 {
        format!("{} msg/s", p.rate)
    } else {
        "window-limited".into()
    }
}

fn latency_panel(r: &Report, area: &Area) -> Result<(), Box<dyn std::error::Error>> {
    // x: 1/(1 − percentile), so that 90, 99, 99.9 … are evenly spaced.
    let to_x = |pct: f64| 1.0 / (1.0 - (pct / 100.0).min(0.99999));
    let max_ms = r
        .phases
        .iter()
        .map(|p| ms(p.latency_us.max))
        .chain(std::iter::once(ms(r.setup.setup_latency_us.max)))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "latency by percentile (publish → receipt)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (1.0f64..100_000.0).log_scale(),
            (0.01f64..max_ms * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("ms")
        .x_label_formatter(&|x| {
            let pct = 100.0 * (1.0 - 1.0 / x);
            format!("{pct:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .draw()?;
    let series: Vec<(String, Vec<(f64, u64)>)> = if r.phases.is_empty() {
        Vec::new()
    } else {
        r.phases
            .iter()
            .map(|p| (phase_name(p), p.latency_curve.clone()))
            .collect()
    };
    for (k, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                color.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    // With several nodes: the cross-node deliveries alone, thin, in their phase's colour.
    for (k, p) in r.phases.iter().enumerate() {
        let Some(x) = &p.cross_node else { continue };
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                x.latency_curve
                    .iter()
                    .map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                color.stroke_width(1),
            ))?
            .label(format!("{}, cross-node", phase_name(p)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(1)));
    }
    if series.is_empty() {
        // Idle runs: the set-up latency percentiles stand in.
        let s = &r.setup.setup_latency_us;
        let pts = [(50.0, s.p50), (90.0, s.p90), (99.0, s.p99), (99.9, s.p999)];
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|(pct, us)| (to_x(*pct), ms(*us).max(0.01))),
                BLUE.stroke_width(2),
            ))?
            .label("connection set-up")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn throughput_panel(r: &Report, area: &Area) -> Result<(), Box<dyn std::error::Error>> {
    let max_t = r
        .phases
        .iter()
        .map(|p| p.timeline.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_d = r
        .phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(|s| s.deliveries))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("deliveries per second", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0f64..max_t, 0.0f64..max_d * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the phase began")
        .y_desc("deliveries/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (k, p) in r.phases.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                p.timeline
                    .iter()
                    .map(|s| (s.t as f64 + 0.5, s.deliveries as f64)),
                color.stroke_width(2),
            ))?
            .label(phase_name(p))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn idle_panel(r: &Report, area: &Area) -> Result<(), Box<dyn std::error::Error>> {
    let samples: Vec<(f64, f64)> = r
        .idle
        .iter()
        .flat_map(|i| i.samples.iter())
        .filter_map(|s| Some((s.t, s.server_rss_kib? as f64 / 1024.0)))
        .collect();
    let max_t = samples.iter().map(|s| s.0).fold(1.0, f64::max);
    let max_mib = samples.iter().map(|s| s.1).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("server RSS while idle", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0f64..max_t, 0.0f64..max_mib * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds held")
        .y_desc("MiB")
        .draw()?;
    chart.draw_series(LineSeries::new(samples, BLUE.stroke_width(2)))?;
    Ok(())
}
