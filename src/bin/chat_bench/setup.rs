//! Set-up of a run: the members planned, their sessions made and their sockets joined.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

use crate::client::{self, open_socket, source_addr, Sessions};
use crate::report::{Percentiles, SetupReport};
use crate::run::{delta, Server};
use crate::traffic::{histogram, Publisher, Reader, Shared};
use crate::typing::Typist;
use crate::{Args, Error};

/// Concurrent `join_room` requests (each on its own keep-alive connection).
const SESSION_WORKERS: usize = 32;
/// Longest a single connection's set-up may take before it counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One member to be: its room, name, source address and node (index into `--target`).
pub struct Plan {
    pub room: usize,
    pub name: String,
    pub source: std::net::IpAddr,
    pub publisher: bool,
    /// It sends `typing` (`--typing-fraction`); never a publisher.
    pub typist: bool,
    pub node: usize,
}

pub fn plan(args: &Args, run: u32) -> Vec<Plan> {
    let rooms = args.rooms();
    let sources = args.sources();
    let mut publishers = vec![false; args.connections];
    for j in 0..args.publishers {
        publishers[(j % rooms) * args.room_size + j / rooms] = true;
    }
    let typists = typists(args, &publishers);
    let nodes = args.target.len().max(1);
    (0..args.connections)
        .map(|i| {
            let (room, place) = (i / args.room_size, i % args.room_size);
            Plan {
                room,
                name: format!("b{run:x}-{i}"),
                source: source_addr(i % sources),
                publisher: publishers[i],
                typist: typists[i],
                // Round-robin within the room, starting one node further in each room, so
                // that the rooms' first members (their publishers) are spread over the nodes.
                node: (room + place) % nodes,
            }
        })
        .collect()
}

/// Which members type: `--typing-fraction` of them, the last of each room first, then the
/// next to last of each, and so on (publishers, a room's first members, are passed over), so
/// that they are spread over the rooms. `check` has made sure that there are enough.
fn typists(args: &Args, publishers: &[bool]) -> Vec<bool> {
    let mut typing = vec![false; args.connections];
    let mut wanted = args.typists();
    for place in (0..args.room_size).rev() {
        for room in 0..args.rooms() {
            let i = room * args.room_size + place;
            if wanted == 0 {
                return typing;
            }
            if i < args.connections && !publishers[i] {
                typing[i] = true;
                wanted -= 1;
            }
        }
    }
    typing
}

type Sink = futures::stream::SplitSink<client::Ws, tokio_tungstenite::tungstenite::Message>;

/// A connection that is set up: its room, node, and its sink (and window) if it publishes or
/// types.
struct Connected {
    room: usize,
    node: usize,
    publisher: Option<(Sink, Arc<Semaphore>)>,
    typist: Option<Sink>,
    setup_us: u64,
}

/// What set-up hands to the phases: its figures, the publishers with their rooms' sizes, and
/// the typing members.
pub struct SetUp {
    pub report: SetupReport,
    pub publishers: Vec<Publisher>,
    pub typists: Vec<Typist>,
}

/// Makes the sessions of every planned member, then opens and joins their sockets, each
/// with a reader task; returns once every attempt has succeeded or failed.
pub async fn set_up(
    args: &Args,
    run_id: u32,
    shared: &Arc<Shared>,
    server: &Server,
) -> Result<SetUp, Error> {
    let plans = plan(args, run_id);
    let rooms = args.rooms();

    // Sessions: the join_room POST for every member, over keep-alive connections (none for a
    // peer without sessions).
    let rss_before = server.rss();
    let cpu_before = server.cpu();
    let t0 = Instant::now();
    let cookies: Vec<Result<Option<String>, String>> = if args.peer.has_sessions() {
        let got = sessions(args, &plans).await;
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
        let (room, name, source, publisher, typist, node) = (
            plan.room,
            plan.name.clone(),
            plan.source,
            plan.publisher,
            plan.typist,
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
            let (held, handed, typing) = match &window {
                Some(w) => (None, Some((sink, w.clone())), None),
                None if typist => (None, None, Some(sink)),
                None => (Some(sink), None, None),
            };
            let _ = tx.send(Ok(Connected {
                room,
                node,
                publisher: handed,
                typist: typing,
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
    let mut typing = Vec::new();
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
                if let Some(sink) = c.typist {
                    typing.push((c.room, sink));
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
    let publishers = publishers
        .into_iter()
        .map(|(room, node, sink, window)| Publisher {
            shared: shared.clone(),
            sink,
            window,
            room_size: members[room],
            node: node as u16,
        })
        .collect();
    let typists = typing
        .into_iter()
        .map(|(room, sink)| Typist {
            sink,
            others: members[room].saturating_sub(1),
        })
        .collect();
    Ok(SetUp {
        report: setup,
        publishers,
        typists,
    })
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
