//! `chat-bench`, a load generator for the chat server: its command line.
//!
//! A run (`run.rs`) sets up its members (`setup.rs`), then publishes in phases or holds the
//! connections idle, and `main` writes the report (`report.rs`) as a table, JSON and SVG.

mod client;
mod peer;
mod report;
mod run;
mod setup;
mod soak;
mod traffic;
mod typing;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use peer::Peer;
use run::DRAIN;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Most sockets one source address is given by default. The kernel's search for a free
/// local port slows down as a source address fills up (at 19,500 sockets on one address it
/// took two thirds of the tool's CPU time), so the tool spreads them thinly.
const SOCKETS_PER_SOURCE: usize = 1_000;
/// Most `--target` nodes.
const MAX_TARGETS: usize = 64;

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
    /// Share of the members (0 to 1) that type: each sends `typing` every 3 s, spread in time,
    /// from the first publish phase (or the idle hold) to the end, beside the messages. Typing
    /// members are never publishers. Our server only.
    #[arg(long, default_value_t = 0.0)]
    pub typing_fraction: f64,
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

    /// Members that type (`--typing-fraction` of the connections, rounded).
    fn typists(&self) -> usize {
        (self.typing_fraction * self.connections as f64).round() as usize
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
        if !(0.0..=1.0).contains(&self.typing_fraction) {
            return Err("--typing-fraction must be between 0 and 1".into());
        }
        if self.typists() > 0 && self.peer.encode_typing().is_none() {
            return Err(format!(
                "--typing-fraction: the {} peer has no typing frame (only --peer ours has)",
                self.peer.name()
            ));
        }
        if self.typists() > self.connections - self.publishers {
            return Err(format!(
                "--typing-fraction: {} typing members and {} publishers do not fit in {} \
                 connections (a typing member does not publish)",
                self.typists(),
                self.publishers,
                self.connections
            ));
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
    let outcome = runtime.block_on(run::run(args.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::{plan, Plan};

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
    fn typing_members_are_spread_over_the_rooms_and_never_publish() {
        let a = args(&[
            "--target",
            "127.0.0.1:4100",
            "--publishers",
            "4",
            "--typing-fraction",
            "0.1",
        ]);
        assert_eq!(a.check(), Ok(()));
        let plans = plan(&a, 1);
        for room in 0..4 {
            let typing: Vec<&Plan> = plans
                .iter()
                .filter(|p| p.room == room && p.typist)
                .collect();
            assert_eq!(typing.len(), 1, "room {room}");
            assert!(!typing[0].publisher);
        }
        let none = args(&["--target", "127.0.0.1:4100"]);
        assert!(plan(&none, 1).iter().all(|p| !p.typist));
        // 39 members and 4 publishers leave room for 35 typing members, not 36.
        let crowded = |f: &str| {
            let base = ["--target", "127.0.0.1:4100", "--publishers", "4"];
            let mut a = args(&base);
            a.connections = 39;
            a.typing_fraction = f.parse().unwrap();
            a.check()
        };
        assert_eq!(crowded("0.9"), Ok(()));
        assert!(crowded("0.92").is_err());
        assert!(crowded("1.5").is_err());
        assert!(crowded("NaN").is_err());
    }

    #[test]
    fn the_node_ws_peer_refuses_typing() {
        let a = args(&[
            "--target",
            "127.0.0.1:4100",
            "--peer",
            "node-ws",
            "--typing-fraction",
            "0.1",
        ]);
        let refused = a.check().expect_err("node-ws has no typing");
        assert!(refused.contains("node-ws peer has no typing"), "{refused}");
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
