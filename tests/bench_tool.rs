//! The load generator `chat-bench` against a real server process: a small run must lose nothing, fail no connection, and count every delivery.
#![cfg(feature = "bench")]

mod common;

use common::process::ServerProcess;
use common::redis_server::RedisServer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A free port in 4100–4199, the range this machine sets aside for benchmark runs, not handed
/// to another test of this binary (they run at once).
fn free_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let port = (4150..4200)
        .chain(4100..4150)
        .filter(|p| !taken.contains(p))
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 4100-4199");
    taken.push(port);
    port
}

/// Our server on a free port with the bench's raised limits, its database in `dir`.
fn bench_server(dir: &Path) -> ServerProcess {
    let listen = format!("127.0.0.1:{}", free_port());
    ServerProcess::start(
        &dir.join("chat.db"),
        &[
            "--listen",
            &listen,
            "--max-connections-per-ip",
            "1000000",
            "--max-http-connections-per-ip",
            "1000000",
            "--max-room-members",
            "1000000",
            "--outgoing-queue-frames",
            "65536",
            "--outgoing-queue-bytes",
            "67108864",
        ],
    )
}

#[test]
fn a_small_run_delivers_every_acked_message_to_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let server = bench_server(dir.path());
    let report = run_small(&server.addr.to_string(), &server.pid(), &[], dir.path());
    assert_eq!(report["peer"], "ours");
    assert!(report["phases"][0].get("cross_node").is_none());
    assert!(report.get("typing").is_none());
    assert!(report["phases"][0].get("typing").is_none());
}

/// `--typing-fraction`: the typing members' frames reach every other member of their room,
/// never their own socket, and are counted apart from presence, beside the messages.
#[test]
fn typing_members_reach_the_others_in_their_room_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = bench_server(dir.path());
    // 8 of the 40 members type: two in each room of 10, besides its publisher.
    let extra = ["--typing-fraction", "0.2"];
    let report = run_small(&server.addr.to_string(), &server.pid(), &extra, dir.path());
    let typing = &report["typing"];
    assert_eq!(typing["members"], 8, "{typing}");
    assert_eq!(typing["every_secs"], 3.0);
    // Each sends at once or within its first 3 s (spread), and the run lasts over 2 s.
    let sent = typing["sent"].as_u64().unwrap();
    assert!((4..=16).contains(&sent), "{typing}");
    // Every frame reaches the 9 others of its room, and nothing else is counted.
    assert_eq!(typing["expected"].as_u64(), Some(sent * 9), "{typing}");
    assert_eq!(typing["received"].as_u64(), Some(sent * 9), "{typing}");
    let phase = &report["phases"][0]["typing"];
    let received = phase["received"].as_u64().unwrap();
    assert!(received > 0 && received <= sent * 9, "{phase}");
    assert!(phase["received_per_sec"].as_f64().unwrap() > 0.0, "{phase}");
}

/// Two cluster nodes on one redis-server: members are split over both, and the deliveries
/// that cross from one node to the other are counted apart.
#[test]
fn a_small_run_over_two_cluster_nodes_counts_cross_node_deliveries() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let nodes: Vec<ServerProcess> = ["a", "b"]
        .iter()
        .map(|name| {
            let listen = format!("127.0.0.1:{}", free_port());
            ServerProcess::start(
                &dir.path().join(format!("{name}.db")),
                &[
                    "--listen",
                    &listen,
                    "--redis-url",
                    &url,
                    "--max-connections-per-ip",
                    "1000000",
                    "--max-http-connections-per-ip",
                    "1000000",
                    "--max-room-members",
                    "1000000",
                ],
            )
        })
        .collect();
    let targets = format!("{},{}", nodes[0].addr, nodes[1].addr);
    let pids = format!("{},{}", nodes[0].pid(), nodes[1].pid());
    let report = run_small(&targets, &pids, &[], dir.path());
    assert_eq!(report["config"]["target"], targets.as_str());
    assert_eq!(
        report["setup"]["connected_per_target"],
        serde_json::json!([20, 20])
    );
    let phase = &report["phases"][0];
    // Rooms of 10, five members on each node: half of every message's deliveries cross.
    let acked = phase["acked"].as_u64().unwrap();
    assert_eq!(phase["cross_node"]["deliveries"].as_u64(), Some(acked * 5));
    assert_eq!(
        phase["cross_node"]["latency_us"]["count"].as_u64(),
        Some(acked * 5)
    );
    assert_eq!(
        phase["server_cpu_by_process"].as_array().map(Vec::len),
        Some(2)
    );
}

/// The same small run against the comparison peer of bench/peers/node-ws (`ws` on Node): the
/// adapter must count it exactly as it counts our server.
#[test]
fn a_small_run_against_the_node_ws_peer_delivers_every_message() {
    let peer = NodePeer::start();
    let dir = tempfile::tempdir().unwrap();
    let report = run_small(
        &format!("127.0.0.1:{}", peer.port),
        &peer.child.id().to_string(),
        &["--peer", "node-ws"],
        dir.path(),
    );
    assert_eq!(report["peer"], "node-ws");
    assert_eq!(report["setup"]["sessions_ok"], 0);
    assert_eq!(report["presence_frames"], 0);
}

/// `node bench/peers/node-ws/server.js` on a free port, killed when dropped.
struct NodePeer {
    child: Child,
    port: u16,
}

impl NodePeer {
    fn start() -> NodePeer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peers/node-ws");
        assert!(
            dir.join("node_modules/ws").is_dir(),
            "{}/node_modules/ws is missing: run ./scripts/setup --test",
            dir.display()
        );
        let port = free_port();
        let mut child = Command::new("node")
            .arg("server.js")
            .args(["--port", &port.to_string()])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (is Node.js installed? run ./scripts/setup --test)");
        let stdout = child.stdout.take().expect("stdout");
        let peer = NodePeer { child, port };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening on ") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the node-ws peer reports that it listens");
        peer
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 40 members in rooms of 10, 4 publishers at 200 msg/s for 2 s against `target` (one address,
/// or several comma-separated with as many pids): checks that nothing is lost, every delivery
/// is counted and no connection fails; returns the JSON report.
fn run_small(target: &str, pid: &str, extra: &[&str], dir: &Path) -> serde_json::Value {
    let json = dir.join("run.json");
    let svg = dir.join("run.svg");
    let started = Instant::now();
    // Several pids (a cluster's nodes) go to --server-pids.
    let pid_flag = if pid.contains(',') {
        "--server-pids"
    } else {
        "--server-pid"
    };
    let out = Command::new(env!("CARGO_BIN_EXE_chat-bench"))
        .args(["--target", target])
        .args([pid_flag, pid])
        .args(extra)
        .args(["--connections", "40", "--room-size", "10"])
        .args(["--publishers", "4", "--rate", "200", "--duration", "2"])
        .args(["--timeout", "25", "--label", "bench tool test"])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("chat-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chat-bench failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(stdout.contains("publish phases"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).unwrap();
    let setup = &report["setup"];
    assert_eq!(setup["connected"], 40, "{setup}");
    assert_eq!(setup["failed"], 0, "{setup}");
    assert_eq!(report["config"]["room_size"], 10);
    let phases = report["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 1);
    let phase = &phases[0];
    let acked = phase["acked"].as_u64().unwrap();
    // 200 msg/s for 2 s; a few may miss the window at the edges, none may go missing.
    assert!(acked >= 380, "acked {acked}: {phase}");
    assert_eq!(phase["published"].as_u64(), Some(acked), "{phase}");
    assert_eq!(phase["lost"], 0, "{phase}");
    assert_eq!(phase["deliveries"].as_u64(), Some(acked * 10), "{phase}");
    assert_eq!(phase["expected_deliveries"].as_u64(), Some(acked * 10));
    assert_eq!(phase["duplicates"], 0);
    assert!(phase["latency_us"]["count"].as_u64().unwrap() >= acked * 10);
    assert!(phase["server_cpu_secs"].as_f64().unwrap() > 0.0, "{phase}");
    assert!(report["disconnects"].as_object().unwrap().is_empty());
    // Undecodable frames, a second welcome, our own typing sent back: none of them.
    assert!(
        report["errors"].as_object().unwrap().is_empty(),
        "{}",
        report["errors"]
    );

    let svg = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(svg.starts_with("<svg") && svg.contains("deliveries per second"));
    report
}
