//! The human-readable summary of a run, printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ms, Report, TypingWindow};

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

/// A phase's or the idle hold's typing: `sent 333, received 2997 = 291.3/s`.
fn typing(w: &TypingWindow) -> String {
    format!(
        "sent {}, received {} = {:.1}/s",
        w.sent, w.received, w.received_per_sec
    )
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
        if let Some(t) = &i.typing {
            let _ = writeln!(out, "  {:<40} {}", "typing frames", typing(t));
        }
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
    if let Some(t) = &r.typing {
        let _ = writeln!(
            out,
            "\ntyping: {} members, each `typing` every {} s; {} sent, {} of {} expected receipts",
            t.members, t.every_secs, t.sent, t.received, t.expected
        );
        for (k, p) in r.phases.iter().enumerate() {
            if let Some(w) = &p.typing {
                let _ = writeln!(out, "  phase {} ({} msg/s): {}", k + 1, p.rate, typing(w));
            }
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
