//! `chat-bench`: a load generator for the chat server: the command line, then set-up, publish phases (or an idle hold) and the report.

mod client;
mod peer;
mod report;
mod soak;
mod traffic;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

use chatroom::server::ops::procstat::Proc;
use client::{open_socket, source_addr, Sessions};
use peer::Peer;
use report::{
    CrossNode, IdleReport, Percentiles, PhaseReport, ProcessCpu, Report, Sample, SetupReport,
};
use traffic::{histogram, Pace, PhaseStats, Publisher, Reader, Shared};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long the deliveries of a phase may take to arrive after its last message was sent.
const DRAIN: Duration = Duration::from_secs(5);
/// Most sockets one source address is given by default. The kernel's search for a free
/// local port slows down as a source address fills up (at 19,500 sockets on one address it
/// took two thirds of the tool's CPU time), so the tool spreads them thinly.
const SOCKETS_PER_SOURCE: usize = 1_000;
/// Most `--target` nodes.
const MAX_TARGETS: usize = 64;
/// Concurrent `join_room` requests (each on its own keep-alive connection).
const SESSION_WORKERS: usize = 32;
/// Longest a single connection's set-up may take before it counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Load generator for the chat server: opens many WebSocket members in rooms `bench-<k>`,
/// publishes timestamped messages and measures delivery latency, throughput, loss, and the
/// server's CPU and memory.
#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(name = "chat-bench", version)]
pub struct Args {
    /// Server address (loopback only), e.g. 127.0.0.1:4100; or several, comma-separated, the
    /// nodes of a cluster: each room's members are spread over them round-robin (member p of
    /// room r goes to node (r + p) mod n), and each member's session is made on its node.
    #[arg(long, value_delimiter = ',', required = true)]
    #[serde(serialize_with = "serialize_targets")]
    pub target: Vec<SocketAddr>,
    /// The server's protocol: this project's server, or the comparison peer of
    /// bench/peers/node-ws (no sessions, no welcome).
    #[arg(long, value_enum, default_value_t = Peer::Ours)]
    pub peer: Peer,
    /// The server's process id: enables CPU and RSS readings.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Several processes (a cluster's nodes and its Redis), comma-separated, instead of
    /// --server-pid: server CPU and RSS are their sums, and each phase's CPU is also given by
    /// process.
    #[arg(long, value_delimiter = ',', conflicts_with = "server_pid")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_pids: Vec<u32>,
    /// WebSocket connections (members) to open.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Members per room: connections / room size rooms, named bench-<k>.
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// Members that publish, spread over the rooms.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Messages per second across all publishers (0: as fast as confirmations allow, with a
    /// window of --window per publisher).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of each publish phase (or of the idle hold).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Connections opened per second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Source addresses 127.0.0.1 … 127.0.0.K [default: one per 1,000 sockets].
    #[arg(long)]
    pub sources: Option<usize>,
    /// Only connect and join, hold for --duration, and measure memory.
    #[arg(long)]
    pub idle: bool,
    /// Run the publish phase once per rate (msg/s), on the same connections: R1,R2,…
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<f64>,
    /// Write every figure and the configuration here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the latency and throughput plots here as SVG.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long)]
    pub label: Option<String>,
    /// Give up and exit non-zero after this many seconds [default: planned publish time + 120].
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Size of each message's text (it starts with the send time).
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Unconfirmed messages per publisher with --rate 0.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Connection set-ups in flight at once.
    #[arg(long, default_value_t = 512)]
    pub setup_concurrency: usize,
    /// Soak: the server's SQLite database, whose size and WAL size are sampled.
    #[arg(long)]
    pub watch_db: Option<PathBuf>,
    /// Soak: seconds between samples of the database, the WAL and the server's memory.
    #[arg(long, default_value_t = 5.0)]
    pub sample_secs: f64,
    /// Soak: extra members that join a room and leave again, per second, while publishing.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Soak: seconds each churning member stays.
    #[arg(long, default_value_t = 10.0)]
    pub churn_stay: f64,
    /// Soak: write the samples here as CSV.
    #[arg(long)]
    pub soak_csv: Option<PathBuf>,
    /// Soak: chart the samples here (SVG).
    #[arg(long)]
    pub soak_svg: Option<PathBuf>,
}

impl Args {
    fn rates(&self) -> Vec<f64> {
        if self.sweep.is_empty() {
            vec![self.rate]
        } else {
            self.sweep.clone()
        }
    }

    fn sources(&self) -> usize {
        self.sources
            .unwrap_or(self.connections.div_ceil(SOCKETS_PER_SOURCE))
            .max(1)
    }

    fn rooms(&self) -> usize {
        self.connections.div_ceil(self.room_size)
    }

    fn timeout(&self) -> Duration {
        let phases = if self.idle { 1 } else { self.rates().len() };
        let planned = if self.idle {
            self.duration
        } else {
            phases as f64 * (self.duration + DRAIN.as_secs_f64())
        };
        Duration::from_secs_f64(self.timeout.unwrap_or(planned + 120.0).max(1.0))
    }

    /// Every process whose CPU and RSS are read: --server-pids, or --server-pid.
    fn pids(&self) -> Vec<u32> {
        if self.server_pids.is_empty() {
            self.server_pid.into_iter().collect()
        } else {
            self.server_pids.clone()
        }
    }

    /// Samples are taken over the publish phases (a soak run).
    fn soaking(&self) -> bool {
        self.churn > 0.0
            || self.watch_db.is_some()
            || self.soak_csv.is_some()
            || self.soak_svg.is_some()
    }

    fn check(&self) -> Result<(), String> {
        if !self.churn.is_finite() || self.churn < 0.0 || !self.sample_secs.is_finite() {
            return Err("--churn and --sample-secs must be finite, --churn not negative".into());
        }
        if let Some(t) = self.target.iter().find(|t| !t.ip().is_loopback()) {
            return Err(format!("--target {t} is not a loopback address"));
        }
        if self.target.is_empty() || self.target.len() > MAX_TARGETS {
            return Err(format!("--target: 1 to {MAX_TARGETS} addresses"));
        }
        let mut distinct = self.target.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != self.target.len() {
            return Err("--target: an address is given twice".into());
        }
        if self.connections == 0 || self.room_size == 0 {
            return Err("--connections and --room-size must be at least 1".into());
        }
        if self.publishers > self.connections {
            return Err("--publishers cannot exceed --connections".into());
        }
        if !self.idle && self.publishers == 0 {
            return Err("--publishers must be at least 1 (or use --idle)".into());
        }
        if self.rates().iter().any(|r| !r.is_finite() || *r < 0.0) {
            return Err("rates must be finite and not negative".into());
        }
        if self.duration <= 0.0 || !self.duration.is_finite() {
            return Err("--duration must be positive".into());
        }
        if self.sources() > 250 {
            return Err("--sources: at most 250 (127.0.0.1 … 127.0.0.250)".into());
        }
        if self.window == 0 || self.setup_concurrency == 0 {
            return Err("--window and --setup-concurrency must be at least 1".into());
        }
        // Publisher j is member j / rooms of room j % rooms: that member must exist.
        let rooms = self.rooms();
        let last = self.publishers.saturating_sub(1);
        if self.publishers > 0 && (last / rooms) * rooms + last % rooms >= self.connections {
            return Err("--publishers do not fit in the rooms' members".into());
        }
        Ok(())
    }
}

/// The targets as given: `127.0.0.1:4100,127.0.0.1:4101`.
pub fn targets_text(targets: &[SocketAddr]) -> String {
    targets
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `--target` in the JSON report: one string, as given (the single target's address alone).
fn serialize_targets<S: serde::Serializer>(
    targets: &[SocketAddr],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&targets_text(targets))
}

/// One member to be: its room, name, source address and node (index into `--target`).
struct Plan {
    room: usize,
    name: String,
    source: std::net::IpAddr,
    publisher: bool,
    node: usize,
}

fn plan(args: &Args, run: u32) -> Vec<Plan> {
    let rooms = args.rooms();
    let sources = args.sources();
    let mut publishers = vec![false; args.connections];
    for j in 0..args.publishers {
        publishers[(j % rooms) * args.room_size + j / rooms] = true;
    }
    let nodes = args.target.len().max(1);
    (0..args.connections)
        .map(|i| {
            let (room, place) = (i / args.room_size, i % args.room_size);
            Plan {
                room,
                name: format!("b{run:x}-{i}"),
                source: source_addr(i % sources),
                publisher: publishers[i],
                // Round-robin within the room, starting one node further in each room, so
                // that the rooms' first members (their publishers) are spread over the nodes.
                node: (room + place) % nodes,
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.check() {
        eprintln!("chat-bench: {e}");
        return ExitCode::from(2);
    }
    let files = chatroom::server::http::limits::raise_file_limit();
    if (files as usize) < args.connections + 64 {
        eprintln!(
            "chat-bench: warning: open-file limit {files} is below {} connections plus headroom",
            args.connections
        );
    }
    let timeout = args.timeout();
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!(
            "chat-bench: timed out after {:.0} s; giving up",
            timeout.as_secs_f64()
        );
        std::process::exit(3);
    });
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(args.clone()));
    let code = match outcome {
        Ok(report) => {
            print!("{}", report::table(&report));
            let mut ok = report.setup.connected > 0;
            if let Some(path) = &args.json {
                if let Err(e) = report::write_json(&report, path) {
                    eprintln!("chat-bench: cannot write {}: {e}", path.display());
                    ok = false;
                }
            }
            if let Some(path) = &args.svg {
                if let Err(e) = report::write_svg(&report, path) {
                    eprintln!("chat-bench: cannot write {}: {e}", path.display());
                    ok = false;
                }
            }
            if let Some(path) = &args.soak_csv {
                if let Err(e) = soak::write_csv(&report.soak, path) {
                    eprintln!("chat-bench: cannot write {}: {e}", path.display());
                    ok = false;
                }
            }
            if let Some(path) = &args.soak_svg {
                if let Err(e) = soak::write_svg(&report.soak, &report.label, path) {
                    eprintln!("chat-bench: cannot write {}: {e}", path.display());
                    ok = false;
                }
            }
            if report.setup.connected == 0 {
                eprintln!("chat-bench: no connection could be set up");
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chat-bench: {e}");
            ExitCode::FAILURE
        }
    };
    // The sockets close with the process; waiting for thousands of tasks to wind down is not needed.
    std::process::exit(match code {
        c if c == ExitCode::SUCCESS => 0,
        _ => 1,
    });
}

/// Readings of the server's processes, when their pids are known: one server, or a
/// cluster's nodes and its Redis. CPU and RSS are their sums (unknown if one cannot be read).
struct Server(Vec<u32>);

impl Server {
    fn cpu(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.each_cpu().into_iter().sum()
    }
    fn rss(&self) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().map(|&p| Proc::Pid(p).rss_kib().ok()).sum()
    }
    /// Each process's CPU seconds so far.
    fn each_cpu(&self) -> Vec<Option<f64>> {
        self.0
            .iter()
            .map(|&p| Proc::Pid(p).cpu_seconds().ok())
            .collect()
    }
    /// The server's readings and this tool's CPU time, now.
    fn sample(&self, t: f64) -> Sample {
        Sample {
            t,
            server_rss_kib: self.rss(),
            server_cpu_secs: self.cpu(),
            client_cpu_secs: Proc::Me.cpu_seconds().ok(),
        }
    }
}

/// A process's command name (`chatroom`, `redis-server`), or "?" if it cannot be read.
fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn delta(after: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// A connection that is set up: its room, node, and its sink and window if it publishes.
struct Connected {
    room: usize,
    node: usize,
    publisher: Option<(
        futures::stream::SplitSink<client::Ws, tokio_tungstenite::tungstenite::Message>,
        Arc<Semaphore>,
    )>,
    setup_us: u64,
}

async fn run(args: Args) -> Result<Report, Error> {
    let run_id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        & 0xffff_ffff) as u32;
    let shared = Arc::new(Shared::new(run_id, args.peer));
    let server = Server(args.pids());
    let flag = if args.server_pids.is_empty() {
        "--server-pid"
    } else {
        "--server-pids"
    };
    for pid in args.pids() {
        if Proc::Pid(pid).cpu_seconds().is_err() {
            return Err(format!("cannot read /proc/{pid}/stat: is {flag} right?").into());
        }
    }
    let plans = plan(&args, run_id);
    let rooms = args.rooms();

    // Sessions: the join_room POST for every member, over keep-alive connections (none for a
    // peer without sessions).
    let rss_before = server.rss();
    let cpu_before = server.cpu();
    let t0 = Instant::now();
    let cookies: Vec<Result<Option<String>, String>> = if args.peer.has_sessions() {
        let got = sessions(&args, &plans).await;
        got.into_iter().map(|c| c.map(Some)).collect()
    } else {
        plans.iter().map(|_| Ok(None)).collect()
    };
    let session_secs = if args.peer.has_sessions() {
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let mut failures = std::collections::BTreeMap::<String, u64>::new();
    for c in &cookies {
        if let Err(e) = c {
            *failures.entry(e.clone()).or_default() += 1;
        }
    }
    let sessions_ok = cookies.iter().filter(|c| matches!(c, Ok(Some(_)))).count();
    let cpu_sessions = server.cpu();

    // Sockets: connect, upgrade, join, welcome (connect and upgrade only without sessions).
    let t1 = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<Connected, String>>();
    let gate = Arc::new(Semaphore::new(args.setup_concurrency));
    let mut launched = 0usize;
    for (plan, cookie) in plans.iter().zip(&cookies) {
        let Ok(cookie) = cookie else { continue };
        if args.connect_rate > 0.0 {
            let at = t1 + Duration::from_secs_f64(launched as f64 / args.connect_rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let permit = gate.clone().acquire_owned().await?;
        launched += 1;
        let tx = tx.clone();
        let shared = shared.clone();
        let target = args.target[plan.node];
        let (room, name, source, publisher, node) = (
            plan.room,
            plan.name.clone(),
            plan.source,
            plan.publisher,
            plan.node,
        );
        let cookie = cookie.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let room_name = format!("bench-{room}");
            let opened = tokio::time::timeout(
                SETUP_TIMEOUT,
                open_socket(
                    shared.peer,
                    target,
                    source,
                    &room_name,
                    &name,
                    cookie.as_deref(),
                ),
            )
            .await;
            drop(permit);
            let ws = match opened {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => return drop(tx.send(Err(e.0))),
                Err(_) => return drop(tx.send(Err("timed out".into()))),
            };
            let setup_us = started.elapsed().as_micros() as u64;
            let (sink, stream) = futures::StreamExt::split(ws);
            shared.alive.fetch_add(1, Ordering::Relaxed);
            let window = publisher.then(|| Arc::new(Semaphore::new(0)));
            let (held, handed) = match &window {
                Some(w) => (None, Some((sink, w.clone()))),
                None => (Some(sink), None),
            };
            let _ = tx.send(Ok(Connected {
                room,
                node,
                publisher: handed,
                setup_us,
            }));
            // The set-up loop waits for every sender to be gone.
            drop(tx);
            let reader = Reader {
                shared,
                name,
                window,
                node: node as u16,
            };
            reader.run(stream, held).await;
        });
    }
    drop(tx);
    let mut setup_hist = histogram();
    let mut members = vec![0u32; rooms];
    let mut per_node = vec![0usize; args.target.len()];
    let mut publishers = Vec::new();
    let mut connected = 0usize;
    while let Some(result) = rx.recv().await {
        match result {
            Ok(c) => {
                connected += 1;
                setup_hist.saturating_record(c.setup_us.max(1));
                members[c.room] += 1;
                per_node[c.node] += 1;
                if let Some((sink, window)) = c.publisher {
                    publishers.push((c.room, c.node, sink, window));
                }
            }
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    let socket_secs = t1.elapsed().as_secs_f64();
    let cpu_sockets = server.cpu();
    // Let the server settle (presence fan-out, allocator) before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss();
    let setup = SetupReport {
        requested: args.connections,
        sessions_ok,
        session_secs,
        sessions_per_sec: sessions_ok as f64 / session_secs.max(1e-9),
        connected,
        failed: args.connections - connected,
        failures,
        socket_secs,
        connections_per_sec: connected as f64 / socket_secs.max(1e-9),
        total_secs: session_secs + socket_secs,
        setup_latency_us: Percentiles::of(&setup_hist),
        server_cpu_sessions_secs: if args.peer.has_sessions() {
            delta(cpu_sessions, cpu_before)
        } else {
            None
        },
        server_cpu_sockets_secs: delta(cpu_sockets, cpu_sessions),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_per_connection_bytes: match (rss_before, rss_after) {
            (Some(b), Some(a)) if connected > 0 => {
                Some((a as f64 - b as f64) * 1024.0 / connected as f64)
            }
            _ => None,
        },
        sources: args.sources(),
        rooms,
        connected_per_target: (args.target.len() > 1).then_some(per_node),
    };
    let sessions_rate = if args.peer.has_sessions() {
        format!("{:.0}/s sessions", setup.sessions_per_sec)
    } else {
        "no sessions".into()
    };
    eprintln!(
        "chat-bench: {connected} of {} connected to peer {} in {:.1} s ({:.0}/s sockets, {sessions_rate})",
        args.connections,
        args.peer.name(),
        setup.total_secs,
        setup.connections_per_sec,
    );

    let mut report = Report::new(args.clone(), setup);
    if args.idle {
        report.idle = Some(hold(&args, &server, &shared).await);
    } else {
        let mut pubs: Vec<Publisher> = publishers
            .into_iter()
            .map(|(room, node, sink, window)| Publisher {
                shared: shared.clone(),
                sink,
                window,
                room_size: members[room],
                node: node as u16,
            })
            .collect();
        // A soak run: members join and leave, and the server is sampled, while publishing.
        let planned = Duration::from_secs_f64(args.rates().len() as f64 * args.duration);
        let soak_until = Instant::now() + planned;
        let churn = Arc::new(soak::Churn::default());
        let sampler = args.soaking().then(|| {
            tokio::spawn(soak::sample(
                args.clone(),
                args.pids(),
                shared.clone(),
                churn.clone(),
                Instant::now(),
                soak_until,
            ))
        });
        tokio::spawn(soak::churn(
            args.clone(),
            shared.clone(),
            rooms,
            soak_until,
            churn.clone(),
        ));
        for (phase, rate) in args.rates().into_iter().enumerate() {
            let (phase_report, back) = publish(&args, &server, &shared, pubs, phase, rate).await;
            pubs = back;
            eprintln!(
                "chat-bench: phase {} at {rate} msg/s: {} acked, {:.0} deliveries/s, p99 {:.2} ms, {} lost",
                phase + 1,
                phase_report.acked,
                phase_report.deliveries_per_sec,
                phase_report.latency_us.p99 as f64 / 1000.0,
                phase_report.lost
            );
            report.phases.push(phase_report);
        }
        if let Some(sampler) = sampler {
            report.soak = sampler.await.unwrap_or_default();
        }
    }
    shared.stopping.store(true, Ordering::Relaxed);
    report.finish(
        &shared,
        Proc::Me.rss_kib().ok(),
        Proc::Me.cpu_seconds().ok(),
    );
    Ok(report)
}

/// Gets a session cookie for every planned member, in order; a failure is kept as its reason.
async fn sessions(args: &Args, plans: &[Plan]) -> Vec<Result<String, String>> {
    let results: Arc<Mutex<Vec<Result<String, String>>>> = Arc::new(Mutex::new(
        (0..plans.len())
            .map(|_| Err("not attempted".to_string()))
            .collect(),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let jobs: Arc<Vec<(String, String, usize)>> = Arc::new(
        plans
            .iter()
            .map(|p| (format!("bench-{}", p.room), p.name.clone(), p.node))
            .collect(),
    );
    let mut tasks = Vec::new();
    for w in 0..SESSION_WORKERS.min(plans.len()) {
        let (results, next, jobs) = (results.clone(), next.clone(), jobs.clone());
        // One keep-alive connection per node: a member's session is made on its own node.
        let source = source_addr(w % args.sources());
        let mut http: Vec<Sessions> = args
            .target
            .iter()
            .map(|t| Sessions::new(*t, source))
            .collect();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((room, name, node)) = jobs.get(i) else {
                    return;
                };
                let Some(http) = http.get_mut(*node) else {
                    return;
                };
                let r = http.join(room, name).await.map_err(|e| e.0);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = r;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut guard = results.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *guard)
}

/// `--idle`: holds the connections for the duration, reading the server's memory.
async fn hold(args: &Args, server: &Server, shared: &Shared) -> IdleReport {
    let rss_start = server.rss();
    let cpu_start = server.cpu();
    let start = Instant::now();
    let mut samples = Vec::new();
    let end = start + Duration::from_secs_f64(args.duration);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < end {
        tick.tick().await;
        samples.push(server.sample(start.elapsed().as_secs_f64()));
    }
    IdleReport {
        held_secs: start.elapsed().as_secs_f64(),
        rss_start_kib: rss_start,
        rss_end_kib: server.rss(),
        server_cpu_secs: delta(server.cpu(), cpu_start),
        alive_at_end: shared.alive.load(Ordering::Relaxed),
        samples,
    }
}

/// One publish phase at `rate`: every publisher sends until the duration is over, then the
/// deliveries are given up to [`DRAIN`] to arrive. Returns the figures and the publishers.
async fn publish(
    args: &Args,
    server: &Server,
    shared: &Arc<Shared>,
    pubs: Vec<Publisher>,
    phase: usize,
    rate: f64,
) -> (PhaseReport, Vec<Publisher>) {
    let rss_before = server.rss();
    let cpu_before = server.cpu();
    let each_before = server.each_cpu();
    let me_before = Proc::Me.cpu_seconds().ok();
    let count = pubs.len().max(1);
    let start = Instant::now() + Duration::from_millis(20);
    let until = start + Duration::from_secs_f64(args.duration);
    shared.phases().push(PhaseStats::new(rate, start));
    let tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(j, p)| {
            let pace = if rate > 0.0 {
                let per_sec = rate / count as f64;
                Pace::Rate {
                    per_sec,
                    offset: Duration::from_secs_f64(j as f64 / count as f64 / per_sec),
                }
            } else {
                Pace::Window(args.window)
            };
            tokio::spawn(p.run(phase, pace, start, until, args.message_bytes))
        })
        .collect();

    // Sample once a second while publishing and draining.
    let sample = |t: f64| server.sample(t);
    let mut samples = vec![Sample {
        t: 0.0,
        server_rss_kib: rss_before,
        server_cpu_secs: cpu_before,
        client_cpu_secs: me_before,
    }];
    let mut tick = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => samples.push(sample(start.elapsed().as_secs_f64())),
            _ = tokio::time::sleep_until(until.into()) => break,
        }
    }
    let mut back = Vec::new();
    for t in tasks {
        if let Ok(p) = t.await {
            back.push(p);
        }
    }
    let published_until = Instant::now();
    loop {
        let complete = shared
            .phases()
            .get(phase)
            .is_some_and(|p| p.delivered >= p.expected_sent);
        if complete || published_until.elapsed() >= DRAIN {
            break;
        }
        tokio::select! {
            _ = tick.tick() => samples.push(sample(start.elapsed().as_secs_f64())),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let last = sample(start.elapsed().as_secs_f64());
    let each_after = server.each_cpu();
    let (cpu_after, me_after, rss_after) = (
        last.server_cpu_secs,
        last.client_cpu_secs,
        last.server_rss_kib,
    );
    samples.push(last);
    let mut phases = shared.phases();
    let Some(p) = phases.get_mut(phase) else {
        unreachable!("the phase was pushed above")
    };
    p.drained = true;
    let mut report = PhaseReport::from_stats(
        p,
        args.duration,
        delta(cpu_after, cpu_before),
        delta(me_after, me_before),
        rss_before,
        rss_after,
        samples,
    );
    if args.target.len() > 1 {
        report.cross_node = Some(CrossNode::of(p, report.delivery_secs));
    }
    if server.0.len() > 1 {
        let each = server.0.iter().zip(each_before.iter().zip(&each_after));
        report.server_cpu_by_process = Some(
            each.map(|(&pid, (before, after))| ProcessCpu {
                pid,
                name: process_name(pid),
                cpu_secs: delta(*after, *before),
            })
            .collect(),
        );
    }
    (report, back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let base = ["chat-bench", "--connections", "40", "--room-size", "10"];
        Args::try_parse_from(base.iter().chain(extra)).expect("valid arguments")
    }

    #[test]
    fn members_and_publishers_are_spread_over_the_targets() {
        let a = args(&[
            "--target",
            "127.0.0.1:4100,127.0.0.1:4101",
            "--publishers",
            "4",
        ]);
        assert_eq!(a.check(), Ok(()));
        let plans = plan(&a, 1);
        for room in 0..4 {
            let on_first = plans
                .iter()
                .filter(|p| p.room == room && p.node == 0)
                .count();
            assert_eq!(on_first, 5, "room {room}");
        }
        let publishers: Vec<usize> = plans
            .iter()
            .filter(|p| p.publisher)
            .map(|p| p.node)
            .collect();
        assert_eq!(publishers, [0, 1, 0, 1]);
        let one = args(&["--target", "127.0.0.1:4100"]);
        assert!(plan(&one, 1).iter().all(|p| p.node == 0));
    }

    #[test]
    fn every_target_must_be_loopback_and_distinct() {
        assert!(args(&["--target", "127.0.0.1:4100,10.0.0.1:4100"])
            .check()
            .is_err());
        assert!(args(&["--target", "127.0.0.1:4100,127.0.0.1:4100"])
            .check()
            .is_err());
        assert!(
            args(&["--target", "127.0.0.1:4100", "--target", "127.0.0.2:4100"])
                .check()
                .is_ok()
        );
    }
}
