//! Operating the server: /metrics as a valid exposition whose counters follow what clients do, health checks through a
//! drain, the admin address, the command line (--help, --version, --check-config) and the logs.

mod common;

use chatroom::protocol::{close, ErrorCode, ServerFrame};
use chatroom::server::config::{Config, Settings};
use common::old::OldClient;
use common::process::ServerProcess;
use common::raw::RawClient;
use common::{
    ack, becomes, eventually, join_http, member_of, poll_until, send, status_of, TestServer, WAIT,
};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Fetches `/metrics` from `base` and parses it strictly as OpenMetrics.
async fn scrape(base: &str) -> Exposition {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = resp.text().await.unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("invalid exposition ({e:?}):\n{text}"))
}

/// The value of the sample of `family` whose labels include `labels` (0 if there is none: a
/// labelled family has no samples until something is counted).
fn value(exp: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(f) = exp.families.get(family) else {
        return 0.0;
    };
    f.iter_samples()
        .find(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            OpenMetricsValue::Info => 1.0,
            other => panic!("unexpected {other:?}"),
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_parse_and_count_connections_messages_and_rejections() {
    let server = TestServer::start().await;
    let base = server.url("");
    let before = scrape(&base).await;
    assert_eq!(value(&before, "chatroom_connections_open", &[]), 0.0);
    assert_eq!(
        value(
            &before,
            "chatroom_build",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(value(&before, "chatroom_ready", &[]), 1.0);

    let (mut ada, _) = member_of(server.addr, "ops", "Ada").await;
    let (mut bob, _) = member_of(server.addr, "ops", "Bob").await;
    let during = scrape(&base).await;
    assert_eq!(value(&during, "chatroom_rooms", &[]), 1.0);
    assert_eq!(value(&during, "chatroom_members", &[]), 2.0);

    ada.send(&send("m1", "hello")).await;
    ack(&mut ada, "m1").await;
    assert!(matches!(bob.recv().await, ServerFrame::Message(m) if m.text == "hello"));
    bob.send_raw(Message::text("not json")).await;
    assert!(matches!(
        bob.recv().await,
        ServerFrame::Error {
            code: ErrorCode::BadJson,
            ..
        }
    ));
    drop(ada);

    eventually(
        Duration::from_secs(5),
        "the fan-out and Ada's close are counted",
        || async {
            let m = scrape(&base).await;
            value(&m, "chatroom_fanout_seconds", &[]) == 1.0
                && value(&m, "chatroom_connections_closed", &[("reason", "client")]) == 1.0
        },
    )
    .await;
    let after = scrape(&base).await;
    let delta = |family: &str, labels: &[(&str, &str)]| {
        value(&after, family, labels) - value(&before, family, labels)
    };
    assert_eq!(delta("chatroom_connections_opened", &[]), 2.0);
    assert_eq!(value(&after, "chatroom_connections_open", &[]), 1.0);
    assert_eq!(delta("chatroom_messages_received", &[]), 1.0);
    assert_eq!(delta("chatroom_messages_broadcast", &[]), 1.0);
    assert_eq!(
        delta("chatroom_messages_delivered", &[]),
        2.0,
        "to Ada and Bob"
    );
    assert_eq!(
        delta("chatroom_frames_rejected", &[("reason", "bad_json")]),
        1.0
    );
    assert!(value(&after, "process_open_fds", &[]) > 0.0);
    assert!(value(&after, "process_max_fds", &[]) >= value(&after, "process_open_fds", &[]));
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&after, "process_start_time_seconds", &[]) > 1.7e9);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn old_protocol_connections_are_counted_apart_and_in_the_totals() {
    let server = TestServer::start().await;
    let base = server.url("");
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let mut tom = OldClient::opened(server.addr, "Tom", "").await;
    tom.recv().await; // Ada, listed
    tom.send_raw(Message::text("not json")).await;
    tom.say("hi from the old page").await;
    assert!(matches!(ada.recv().await, ServerFrame::Joined { member } if member.name == "Tom"));
    assert!(matches!(ada.recv().await, ServerFrame::Message(m) if m.name == "Tom"));
    let during = scrape(&base).await;
    assert_eq!(value(&during, "chatroom_connections_open", &[]), 2.0);
    assert_eq!(value(&during, "chatroom_legacy_connections_open", &[]), 1.0);
    assert_eq!(
        value(&during, "chatroom_legacy_connections_opened", &[]),
        1.0
    );
    assert_eq!(value(&during, "chatroom_messages_received", &[]), 1.0);
    assert_eq!(
        value(&during, "chatroom_legacy_messages_received", &[]),
        1.0
    );
    assert_eq!(
        value(
            &during,
            "chatroom_frames_rejected",
            &[("reason", "old_protocol_ignored")]
        ),
        1.0
    );
    tom.close().await;
    eventually(
        Duration::from_secs(5),
        "Tom's close is counted as an old-protocol close",
        || async {
            let m = scrape(&base).await;
            value(&m, "chatroom_legacy_connections_open", &[]) == 0.0
                && value(
                    &m,
                    "chatroom_legacy_connections_closed",
                    &[("reason", "client")],
                ) == 1.0
        },
    )
    .await;
    let after = scrape(&base).await;
    assert_eq!(value(&after, "chatroom_connections_open", &[]), 1.0);
    assert_eq!(
        value(
            &after,
            "chatroom_connections_closed",
            &[("reason", "client")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_peer_reaped_by_the_heartbeat_is_counted_as_such() {
    let server = TestServer::with(Settings {
        ping_interval_secs: Some(1),
        pong_timeout_secs: Some(1),
        ..Settings::default()
    })
    .await;
    let base = server.url("");
    // A ghost joins, then never reads nor answers a ping.
    let (_, cookie) = join_http(server.addr, "ops", "Ghost", "owl").await;
    let (mut ghost, status) =
        RawClient::connect(server.addr, "ops", cookie.as_deref(), None, None, None)
            .await
            .unwrap();
    assert_eq!(status, 101);
    ghost.send_text(r#"{"type":"join"}"#).await.unwrap();
    eventually(
        Duration::from_secs(8),
        "the ghost's socket is released",
        || async {
            let m = scrape(&base).await;
            value(&m, "chatroom_connections_open", &[]) == 0.0
        },
    )
    .await;
    let m = scrape(&base).await;
    let closed = |reason| value(&m, "chatroom_connections_closed", &[("reason", reason)]);
    assert_eq!(closed("heartbeat_timeout"), 1.0);
    assert_eq!(closed("client"), 0.0);
    assert_eq!(value(&m, "chatroom_members", &[]), 0.0);
    drop(ghost);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refused_upgrades_are_counted_by_reason() {
    let server = TestServer::with(Settings {
        max_connections_per_ip: Some(1),
        ..Settings::default()
    })
    .await;
    let (_ada, _) = member_of(server.addr, "ops", "Ada").await;
    let (_, status) = RawClient::connect(server.addr, "ops", None, None, None, None)
        .await
        .unwrap();
    assert_eq!(status, 429);
    let (_, status) = RawClient::connect(
        server.addr,
        "ops",
        None,
        Some("http://evil.example"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    let m = scrape(&server.url("")).await;
    assert_eq!(
        value(&m, "chatroom_upgrades_refused", &[("reason", "ip_limit")]),
        1.0
    );
    assert_eq!(
        value(&m, "chatroom_upgrades_refused", &[("reason", "origin")]),
        1.0
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_turns_503_during_the_drain_while_healthz_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("chat.db"), &["--drain-delay-ms", "3000"]);
    let base = format!("http://{}", server.addr);
    assert_eq!(status_of(&format!("{base}/readyz")).await, 200);
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);
    let (mut ada, _) = member_of(server.addr, "drain", "Ada").await;

    server.signal("-TERM");
    eventually(
        Duration::from_secs(2),
        "/readyz answers 503 once the drain begins",
        || async { status_of(&format!("{base}/readyz")).await == 503 },
    )
    .await;
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);
    let m = scrape(&base).await;
    assert_eq!(value(&m, "chatroom_ready", &[]), 0.0);
    let (_, status) = RawClient::connect(server.addr, "drain", None, None, None, None)
        .await
        .unwrap();
    assert_eq!(status, 503, "no new sockets while draining");
    // Open sockets are closed after the delay, and the process ends.
    assert_eq!(ada.closed_with().await, close::SERVICE_RESTART);
    assert!(server.wait(Duration::from_secs(10)).success());
}

#[tokio::test]
async fn readyz_is_503_when_the_store_cannot_be_written() {
    let server = TestServer::start().await;
    assert_eq!(status_of(&server.url("/readyz")).await, 200);
    // Another process holds the write lock (as a stuck backup or sqlite3 shell would).
    let db = server.dir.as_ref().unwrap().path().join("chat.db");
    let conn = hold_write_lock(&db);
    // The probe's answer is cached for a second: poll until it is looked at again.
    let readyz = server.url("/readyz");
    let why = poll_until(
        WAIT,
        "/readyz answers 503 while the store is locked",
        || async {
            let resp = reqwest::get(&readyz).await.unwrap();
            match resp.status().as_u16() {
                503 => Ok(resp.text().await.unwrap()),
                other => Err(other),
            }
        },
    )
    .await;
    assert!(why.contains("cannot be written"), "{why}");
    assert_eq!(
        value(&scrape(&server.url("")).await, "chatroom_ready", &[]),
        0.0
    );
    drop(conn);
    becomes(WAIT, "/readyz is ready again", 200, || status_of(&readyz)).await;
    server.stop().await.unwrap();
}

/// Holds an exclusive lock on the database, so that no other connection can write to it,
/// until the returned process is dropped.
fn hold_write_lock(db: &std::path::Path) -> LockHolder {
    // Another process, as an operator's `sqlite3` shell or a backup tool would be.
    let child = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked',flush=True)\n\
             sys.stdin.read()",
        ])
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut holder = LockHolder(child);
    let mut line = String::new();
    let out = holder.0.stdout.as_mut().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    holder
}

struct LockHolder(std::process::Child);

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_admin_address_takes_metrics_and_status_off_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("chat.db"),
        &["--admin-listen", &admin.to_string()],
    );
    let public = format!("http://{}", server.addr);
    let admin = format!("http://{admin}");
    for path in ["/metrics", "/status", "/api/status"] {
        assert_eq!(status_of(&format!("{public}{path}")).await, 404, "{path}");
    }
    assert_eq!(status_of(&format!("{public}/healthz")).await, 200);
    assert_eq!(status_of(&format!("{public}/")).await, 200, "the app");
    scrape(&admin).await;
    let page = reqwest::get(format!("{admin}/status")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Server status"));
}

#[tokio::test]
async fn a_fresh_start_hides_its_insides_and_sends_pages_with_security_headers_compressed() {
    let dir = tempfile::tempdir().unwrap();
    // The tests' servers make /metrics public; this one runs as shipped.
    let server = ServerProcess::start(&dir.path().join("chat.db"), &["--metrics-public", "false"]);
    let url = |path: &str| format!("http://{}{path}", server.addr);
    for path in ["/metrics", "/status", "/api/status"] {
        assert_eq!(status_of(&url(path)).await, 404, "{path}");
    }
    let page = reqwest::Client::new()
        .get(url("/r/lobby"))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("'nonce-") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("referrer-policy"));
    assert_eq!(h["content-encoding"], "br", "the page is sent compressed");
    // The nonce in the policy is the one on the hydration script, and new for each page.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap()
        .to_string();
    let plain = reqwest::get(url("/r/lobby")).await.unwrap();
    let again = plain.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!again.contains(&nonce), "a fresh nonce per page");
    let html = plain.text().await.unwrap();
    assert!(
        html.contains("nonce=\""),
        "the hydration script carries the nonce"
    );
}

#[tokio::test]
async fn the_status_function_reports_a_sample_a_second() {
    let server = TestServer::start().await;
    let (_ada, _) = member_of(server.addr, "ops", "Ada").await;
    // Samples are taken once a second: within a few seconds there are two, the last with Ada.
    let what = "two samples, the last with one connection, room and member";
    poll_until(Duration::from_secs(5), what, || async {
        let resp = reqwest::Client::new()
            .post(server.url("/api/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let snap: chatroom::protocol::pages::StatusSnapshot =
            serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        let last = snap
            .samples
            .last()
            .map(|l| (l.connections, l.rooms, l.members));
        match (snap.samples.len() >= 2, last) {
            (true, Some((1, 1, 1))) => Ok(()),
            _ => Err(snap),
        }
    })
    .await;
    server.stop().await.unwrap();
}

fn chatroom(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(args)
        .env_remove("CHAT_CONFIG")
        .output()
        .expect("binary runs")
}

#[test]
fn help_lists_every_setting_with_its_default_and_version_prints_the_version() {
    let out = chatroom(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let defaults = format!("{:?}", Config::defaults());
    let fields: Vec<&str> = defaults
        .trim_start_matches("Config {")
        .split(", ")
        .filter_map(|kv| kv.trim().split(':').next())
        .collect();
    assert!(fields.len() > 30, "{fields:?}");
    for field in fields {
        let flag = format!("--{}", field.replace('_', "-"));
        let line = help
            .lines()
            .skip_while(|l| !l.contains(&flag))
            .take(4)
            .collect::<String>();
        assert!(
            line.contains("[default: "),
            "{flag} lacks a default:\n{help}"
        );
    }
    assert!(help.contains("--check-config"));

    let out = chatroom(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("chatroom {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_validates_and_exits() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml");
    let out = chatroom(&["--check-config", "--config", shipped]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "max_message_chars = \"lots\"\n").unwrap();
    let out = chatroom(&["--check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("max_message_chars"),
        "{err}"
    );

    let out = chatroom(&["--check-config", "--admin-listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_listen"));
    // Nothing was started: no database was created.
    assert!(!dir.path().join("data").exists());
}

/// The JSON log lines that carry `message`.
fn json_lines(server: &ServerProcess, message: &str) -> Vec<serde_json::Value> {
    server
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

#[tokio::test]
async fn json_logs_have_a_line_per_connection_and_no_message_text_unless_asked() {
    for log_text in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let flag = log_text.to_string();
        let server = ServerProcess::start(
            &dir.path().join("chat.db"),
            &["--log-format", "json", "--log-message-text", &flag],
        );
        let (mut ada, _) = member_of(server.addr, "logs", "Ada").await;
        ada.send(&send("s1", "a secret recipe")).await;
        ack(&mut ada, "s1").await;
        drop(ada);
        poll_until(Duration::from_secs(5), "a close line", || async {
            match json_lines(&server, "connection closed").is_empty() {
                false => Ok(()),
                true => Err(server.log_lines()),
            }
        })
        .await;
        let opened = json_lines(&server, "connection opened");
        assert_eq!(opened.len(), 1);
        let close = &json_lines(&server, "connection closed")[0];
        assert_eq!(close["conn"], opened[0]["conn"]);
        assert_eq!(close["room"], "logs");
        assert_eq!(close["reason"], "client");
        assert!(close["secs"].as_f64().is_some());
        let http = server
            .log_lines()
            .iter()
            .any(|l| l.contains("/api/join") && l.contains("200"));
        assert!(http, "HTTP requests are logged: {:?}", server.log_lines());
        let leaked = server
            .log_lines()
            .iter()
            .any(|l| l.contains("secret recipe"));
        assert_eq!(leaked, log_text, "message text logged only when asked");
    }
}

#[tokio::test]
async fn every_series_the_dashboard_and_alert_rules_use_is_exposed() {
    let server = TestServer::with(Settings {
        max_connections_per_ip: Some(2),
        ..Settings::default()
    })
    .await;
    // Give each labelled family a sample: a close, a refusal, a rejected frame.
    let (mut ada, _) = member_of(server.addr, "ops", "Ada").await;
    ada.send_raw(Message::text("not json")).await;
    ada.recv().await;
    ada.send(&send("e1", "hi")).await;
    ack(&mut ada, "e1").await;
    let (_, status) = RawClient::connect(
        server.addr,
        "ops",
        None,
        Some("http://x.example"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    drop(ada);
    let base = server.url("");
    eventually(Duration::from_secs(5), "Ada's close is counted", || async {
        let m = scrape(&base).await;
        value(&m, "chatroom_connections_closed", &[("reason", "client")]) == 1.0
    })
    .await;
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "ops/grafana/chatroom-dashboard.json",
        "ops/prometheus/alerts.yml",
    ] {
        let used = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let mut names: Vec<&str> = used
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("chatroom_") || w.starts_with("process_"))
            .filter(|w| !w.ends_with('_'))
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() > 5, "{file}: {names:?}");
        for name in names {
            // A histogram's name stands for its _bucket, _sum and _count series.
            assert!(
                series
                    .iter()
                    .any(|s| *s == name || s.starts_with(&format!("{name}_"))),
                "{file} uses {name}, which /metrics does not expose:\n{text}"
            );
        }
    }
    server.stop().await.unwrap();
}
