//! Soak runs: members that come and go beside the publishers, and the server sampled over time.
//!
//! The samples (the database, its WAL and the server's memory) are written as CSV and SVG.

use futures::StreamExt;
use plotters::prelude::{Color, SeriesLabelPosition, BLUE};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{open_socket, source_addr, Sessions};
use crate::report::chart::{line_panel, svg_page, Line, Panel};
use crate::traffic::Shared;
use crate::Args;
use chatroom::server::ops::procstat::Proc;

/// Joins and leaves of the churning members.
#[derive(Default)]
pub struct Churn {
    pub joins: AtomicU64,
    pub leaves: AtomicU64,
    pub failures: AtomicU64,
}

/// One reading of the server, every `--sample-secs`.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSample {
    /// Seconds since publishing began.
    pub t: f64,
    /// Size of the database file, and of its `-wal` file (0 when absent).
    pub db_bytes: Option<u64>,
    pub wal_bytes: Option<u64>,
    /// The server processes' resident memory, summed.
    pub server_rss_kib: Option<u64>,
    /// Messages confirmed so far, over all phases.
    pub acked: u64,
    pub joins: u64,
    pub leaves: u64,
}

/// `--churn`: until `until`, one member a `1/churn` seconds joins room `bench-<i mod rooms>`
/// on the first target, stays `--churn-stay` seconds (reading and dropping what it gets) and
/// leaves with a close frame.
pub async fn churn(
    args: Args,
    shared: Arc<Shared>,
    rooms: usize,
    until: Instant,
    stats: Arc<Churn>,
) {
    if args.churn <= 0.0 || rooms == 0 {
        return;
    }
    let target = args.target[0];
    // Its own source address, after the members'.
    let source = source_addr(args.sources());
    let stay = Duration::from_secs_f64(args.churn_stay.max(0.0));
    let mut sessions = Sessions::new(target, source);
    let start = Instant::now();
    let mut i = 0u64;
    loop {
        let at = start + Duration::from_secs_f64(i as f64 / args.churn);
        if at >= until {
            return;
        }
        tokio::time::sleep_until(at.into()).await;
        let room = format!("bench-{}", i as usize % rooms);
        let name = format!("c{:x}-{i}", shared.run);
        i += 1;
        let cookie = match sessions.join(&room, &name).await {
            Ok(c) => c,
            Err(_) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let (stats, peer) = (stats.clone(), shared.peer);
        tokio::spawn(async move {
            match open_socket(peer, target, source, &room, &name, Some(&cookie)).await {
                Ok(mut ws) => {
                    stats.joins.fetch_add(1, Ordering::Relaxed);
                    let _ = tokio::time::timeout(stay, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    let _ = ws.close(None).await;
                    stats.leaves.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

fn file_len(path: &Path) -> Option<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
        Err(_) => None,
    }
}

/// The `-wal` file beside `db`.
fn wal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Reads the database, WAL and server memory every `--sample-secs` from `start` until `until`.
pub async fn sample(
    args: Args,
    pids: Vec<u32>,
    shared: Arc<Shared>,
    churn: Arc<Churn>,
    start: Instant,
    until: Instant,
) -> Vec<SoakSample> {
    let every = Duration::from_secs_f64(args.sample_secs.max(0.1));
    let mut tick = tokio::time::interval_at(start.into(), every);
    let mut samples = Vec::new();
    loop {
        tick.tick().await;
        let (db, wal) = match &args.watch_db {
            Some(db) => (file_len(db), file_len(&wal_of(db))),
            None => (None, None),
        };
        let rss = (!pids.is_empty())
            .then(|| pids.iter().map(|&p| Proc::Pid(p).rss_kib().ok()).sum())
            .flatten();
        let acked = shared.phases().iter().map(|p| p.acked).sum();
        samples.push(SoakSample {
            t: start.elapsed().as_secs_f64(),
            db_bytes: db,
            wal_bytes: wal,
            server_rss_kib: rss,
            acked,
            joins: churn.joins.load(Ordering::Relaxed),
            leaves: churn.leaves.load(Ordering::Relaxed),
        });
        if Instant::now() >= until {
            return samples;
        }
    }
}

/// Writes the samples as CSV, one line each.
pub fn write_csv(samples: &[SoakSample], path: &Path) -> std::io::Result<()> {
    let mut out = String::from("t_secs,db_bytes,wal_bytes,server_rss_bytes,acked,joins,leaves\n");
    let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for s in samples {
        out.push_str(&format!(
            "{:.1},{},{},{},{},{},{}\n",
            s.t,
            opt(s.db_bytes),
            opt(s.wal_bytes),
            opt(s.server_rss_kib.map(|k| k * 1024)),
            s.acked,
            s.joins,
            s.leaves
        ));
    }
    std::fs::write(path, out)
}

/// Charts the database, WAL and server memory (MiB) and the confirmed message rate over time.
pub fn write_svg(
    samples: &[SoakSample],
    label: &str,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let minutes = |s: &SoakSample| s.t / 60.0;
    let t_max = samples.last().map_or(1.0, minutes).max(0.1);
    let curves: [(&str, Vec<(f64, f64)>); 3] = [
        (
            "database (MiB)",
            samples
                .iter()
                .filter_map(|s| Some((minutes(s), mib(s.db_bytes?))))
                .collect(),
        ),
        (
            "WAL (MiB)",
            samples
                .iter()
                .filter_map(|s| Some((minutes(s), mib(s.wal_bytes?))))
                .collect(),
        ),
        (
            "server RSS (MiB)",
            samples
                .iter()
                .filter_map(|s| Some((minutes(s), mib(s.server_rss_kib? * 1024))))
                .collect(),
        ),
    ];
    let y_max = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let rate: Vec<(f64, f64)> = samples
        .windows(2)
        .map(|w| {
            let dt = (w[1].t - w[0].t).max(1e-9);
            (minutes(&w[1]), (w[1].acked - w[0].acked) as f64 / dt)
        })
        .collect();
    let rate_max = rate.iter().map(|p| p.1).fold(1.0f64, f64::max);

    let root = svg_page(path, (1000, 800), label)?;
    let (top, bottom) = root.split_vertically(520);
    let lines = curves.into_iter().enumerate();
    let lines = lines.map(|(k, (name, points))| Line::nth(k, name, points));
    let files = Panel {
        caption: "server files and memory",
        x_desc: "minutes",
        y_desc: "MiB",
        x_max: t_max,
        y_max: y_max * 1.1,
        y_label_width: 60,
        y_format: None,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_panel(&top, &files, lines.collect())?;
    let rates = Panel {
        caption: "messages confirmed per second",
        y_desc: "msg/s",
        y_max: rate_max * 1.2,
        ..files
    };
    let rate = Line {
        label: None,
        points: rate,
        color: BLUE.to_rgba(),
        width: 1,
    };
    line_panel(&bottom, &rates, vec![rate])?;
    root.present()?;
    Ok(())
}
