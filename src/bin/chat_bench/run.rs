//! A run: set-up, then publish phases (or an idle hold), with readings of the server's processes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::{CrossNode, IdleReport, PhaseReport, ProcessCpu, Report, Sample, TypingMark};
use crate::setup::{set_up, SetUp};
use crate::soak;
use crate::traffic::{Pace, PhaseStats, Publisher, Shared};
use crate::typing::{Typing, TYPING_EVERY};
use crate::{Args, Error};
use chatroom::server::ops::procstat::Proc;

/// How long the deliveries of a phase may take to arrive after its last message was sent.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Readings of the server's processes, when their pids are known: one server, or a
/// cluster's nodes and its Redis. CPU and RSS are their sums (unknown if one cannot be read).
pub struct Server(pub Vec<u32>);

impl Server {
    pub fn cpu(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.each_cpu().into_iter().sum()
    }
    pub fn rss(&self) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().map(|&p| Proc::Pid(p).rss_kib().ok()).sum()
    }
    /// Each process's CPU seconds so far.
    pub fn each_cpu(&self) -> Vec<Option<f64>> {
        self.0
            .iter()
            .map(|&p| Proc::Pid(p).cpu_seconds().ok())
            .collect()
    }
    /// The server's readings and this tool's CPU time, now.
    pub fn sample(&self, t: f64) -> Sample {
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

pub fn delta(after: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

pub async fn run(args: Args) -> Result<Report, Error> {
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
    let rooms = args.rooms();
    let SetUp {
        report: setup,
        publishers,
        typists,
    } = set_up(&args, run_id, &shared, &server).await?;

    let mut report = Report::new(args.clone(), setup);
    // Typing goes on through every phase and the pauses between them, as in a browser.
    let typing = Typing::start(&shared, typists);
    let typing_members = typing.members();
    if args.idle {
        report.idle = Some(hold(&args, &server, &shared).await);
    } else {
        let mut pubs = publishers;
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
    typing.stop(&shared, DRAIN).await;
    if args.typists() > 0 {
        report.typed(&shared, typing_members, TYPING_EVERY.as_secs_f64());
    }
    shared.stopping.store(true, Ordering::Relaxed);
    report.finish(
        &shared,
        Proc::Me.rss_kib().ok(),
        Proc::Me.cpu_seconds().ok(),
    );
    Ok(report)
}

/// `--idle`: holds the connections for the duration, reading the server's memory.
async fn hold(args: &Args, server: &Server, shared: &Shared) -> IdleReport {
    let rss_start = server.rss();
    let cpu_start = server.cpu();
    let typing_start = TypingMark::now(shared);
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
        typing: (args.typists() > 0).then(|| typing_start.window_to(&TypingMark::now(shared))),
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
    let typing_before = TypingMark::now(shared);
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
    let typing_after = TypingMark::now(shared);
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
    if args.typists() > 0 {
        report.typing = Some(typing_before.window_to(&typing_after));
    }
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
