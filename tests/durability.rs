//! Durable history and lossless reconnect: restarts, crashes, resume, idempotent sends, a full or broken store.

mod common;

use chatroom::protocol::{ChatMessage, ErrorCode, ServerFrame};
use chatroom::server::config::Settings;
use common::process::{start_failure, ServerProcess};
use common::{ack, member_of, send, Client, TestServer, WAIT};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Sends `n` messages one after the other, each once confirmed, and returns their ids.
async fn post_confirmed(c: &mut Client, prefix: &str, n: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}{i}");
        c.send(&send(&id, &format!("{prefix} {i}"))).await;
        ids.push(ack(c, &id).await.id);
    }
    ids
}

/// Everything in `room`, read back through a resume from id 0.
async fn history(addr: std::net::SocketAddr, room: &str, cookie: &str) -> Vec<ChatMessage> {
    let (_c, recent, reset) = Client::joined_with_history(addr, room, cookie, Some(0)).await;
    assert!(!reset, "the whole history fits the resume gap");
    recent
}

#[tokio::test]
async fn history_survives_a_restart_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = ServerProcess::start(&db, &[]);
    let (mut ada, cookie) = member_of(server.addr, "lobby", "Ada").await;
    assert_eq!(
        post_confirmed(&mut ada, "message", 5).await,
        [1, 2, 3, 4, 5]
    );
    server.signal("-TERM");
    assert!(
        server.wait(Duration::from_secs(15)).success(),
        "clean exit on SIGTERM"
    );

    let server = ServerProcess::start(&db, &[]);
    // The session cookie still works: the signing secret is kept in the database.
    let (mut ada, recent, _) =
        Client::joined_with_history(server.addr, "lobby", &cookie, None).await;
    assert_eq!(
        recent.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        [
            "message 0",
            "message 1",
            "message 2",
            "message 3",
            "message 4"
        ]
    );
    ada.send(&send("m6", "after restart")).await;
    assert_eq!(ack(&mut ada, "m6").await.id, 6);
}

#[tokio::test]
async fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let flags = ["--max-resume-gap", "5000", "--max-frame-bytes", "1000000"];
    let server = ServerProcess::start(&db, &flags);
    let (mut ada, cookie) = member_of(server.addr, "crash", "Ada").await;

    // Kill at a point that varies from run to run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let kill_after = 100 + (nanos % 800) as usize;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let (mut sent, window) = (0usize, 32usize);
    while acked.len() < kill_after {
        while sent < 1000 && sent - acked.len() < window {
            ada.send(&send(&format!("c{sent}"), &format!("text {sent}")))
                .await;
            sent += 1;
        }
        match ada.recv().await {
            ServerFrame::Message(m) => {
                let prior = acked.insert(m.client_id.clone().unwrap(), m.id);
                assert!(prior.is_none(), "acknowledged twice");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    server.signal("-KILL");
    server.wait(Duration::from_secs(5));

    let server = ServerProcess::start(&db, &flags);
    let stored = history(server.addr, "crash", &cookie).await;
    let mut seen = HashSet::new();
    for m in &stored {
        assert!(
            seen.insert(m.client_id.clone().unwrap()),
            "stored twice: {m:?}"
        );
    }
    for (client_id, id) in &acked {
        let m = stored
            .iter()
            .find(|m| m.client_id.as_deref() == Some(client_id));
        assert_eq!(m.map(|m| m.id), Some(*id), "acknowledged {client_id} lost");
    }
    let ids: Vec<u64> = stored.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "ids without gaps"
    );
}

#[test]
fn a_corrupt_database_stops_the_server_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    std::fs::write(
        &db,
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    let (status, stderr) = start_failure(&db);
    assert!(!status.success());
    assert!(stderr.contains(&*db.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("unusable"), "{stderr}");
}

#[test]
fn an_unwritable_database_path_stops_the_server_with_the_path_named() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let db = blocker.join("chat.db");
    let (status, stderr) = start_failure(&db);
    assert!(!status.success());
    assert!(stderr.contains("not-a-folder"), "{stderr}");
}

#[tokio::test]
async fn a_full_store_refuses_messages_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = ServerProcess::start(&db, &["--max-db-mb", "1", "--max-message-chars", "4000"]);
    let (mut ada, cookie) = member_of(server.addr, "full", "Ada").await;
    let big = "x".repeat(3900);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..1000 {
        let id = format!("b{i}");
        ada.send(&send(&id, &big)).await;
        match ada.recv().await {
            ServerFrame::Message(m) => acked.push(m.id),
            ServerFrame::Error {
                code, client_id, ..
            } => {
                refused = Some((code, client_id));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        refused,
        Some((ErrorCode::StorageFailed, Some(format!("b{}", acked.len()))))
    );
    // Still serving: the socket, new joins and history.
    let resp = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (mut bob, _) = member_of(server.addr, "full", "Bob").await;
    assert!(matches!(ada.recv().await, ServerFrame::Joined { .. }));
    let stored = history(server.addr, "full", &cookie).await;
    assert_eq!(
        stored.iter().map(|m| m.id).collect::<Vec<_>>(),
        acked,
        "exactly the acknowledged"
    );
    bob.send(&send("small", "tiny")).await;
}

#[tokio::test]
async fn a_reconnecting_client_gets_exactly_what_it_missed_then_live_traffic() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut bob, bob_cookie) = server.member("lobby", "Bob", "owl").await;
    ada.recv().await; // Bob joined
    ada.send(&send("first", "before the drop")).await;
    let last_seen = ack(&mut bob, "first").await.id;
    drop(bob);
    ada.recv().await; // first, confirmed to Ada

    let missed = post_confirmed(&mut ada, "missed", 100).await;
    let (mut bob, replay, reset) =
        Client::joined_with_history(server.addr, "lobby", &bob_cookie, Some(last_seen)).await;
    assert!(!reset);
    assert_eq!(replay.iter().map(|m| m.id).collect::<Vec<_>>(), missed);
    assert_eq!(replay[0].text, "missed 0");

    ada.send(&send("live", "live again")).await;
    let live = ack(&mut bob, "live").await;
    assert_eq!(live.id, missed[99] + 1);
    bob.quiet_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn too_large_a_gap_sends_the_latest_page_and_says_so() {
    let server = TestServer::with(Settings {
        max_resume_gap: Some(10),
        recent_messages: Some(5),
        ..Settings::default()
    })
    .await;
    let (mut ada, cookie) = server.member("lobby", "Ada", "fox").await;
    post_confirmed(&mut ada, "m", 20).await;
    let (_c, recent, reset) =
        Client::joined_with_history(server.addr, "lobby", &cookie, Some(2)).await;
    assert!(reset);
    assert_eq!(
        recent.iter().map(|m| m.id).collect::<Vec<_>>(),
        [16, 17, 18, 19, 20]
    );
}

#[tokio::test]
async fn a_client_id_is_stored_and_broadcast_once_even_across_reconnects() {
    let server = TestServer::start().await;
    let (mut ada, cookie) = server.member("lobby", "Ada", "fox").await;
    let (mut bob, _) = server.member("lobby", "Bob", "owl").await;
    ada.recv().await; // Bob joined
    ada.send(&send("same", "only once")).await;
    ada.send(&send("same", "only once")).await;
    let first = ack(&mut ada, "same").await;
    assert_eq!(
        ack(&mut ada, "same").await,
        first,
        "the re-send is confirmed as the original"
    );
    assert_eq!(ack(&mut bob, "same").await, first);
    drop(ada);
    // Bob sees Ada leave (no grace period here) before she is back: were she back first, her
    // two connections would overlap and she would never have left.
    assert!(matches!(bob.recv().await, ServerFrame::Left { .. }));
    let mut ada = Client::joined(server.addr, "lobby", &cookie, Some(first.id)).await;
    ada.send(&send("same", "only once")).await;
    assert_eq!(ack(&mut ada, "same").await, first);
    // She comes back, but the message never comes again.
    assert!(matches!(bob.recv().await, ServerFrame::Joined { .. }));
    bob.quiet_for(Duration::from_millis(300)).await;
    let all = history(server.addr, "lobby", &cookie).await;
    assert_eq!(
        all.iter()
            .filter(|m| m.client_id.as_deref() == Some("same"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_quick_reconnect_shows_no_leave_and_join() {
    let server = TestServer::with(Settings {
        presence_grace_ms: Some(1500),
        ..Settings::default()
    })
    .await;
    let (mut bob, _) = server.member("lobby", "Bob", "owl").await;
    let (ada, cookie) = server.member("lobby", "Ada", "fox").await;
    assert!(matches!(bob.recv().await, ServerFrame::Joined { .. }));
    drop(ada);
    // Back as soon as the server has seen her socket close (well within the grace period).
    let open = || common::metric(server.addr, "chatroom_connections_open");
    common::becomes(WAIT, "only Bob's socket is open", Some(1.0), open).await;
    let ada = Client::joined(server.addr, "lobby", &cookie, None).await;
    bob.quiet_for(Duration::from_millis(2000)).await;
    drop(ada);
    // Gone for good: one leave, after the grace period.
    assert!(matches!(bob.recv().await, ServerFrame::Left { member } if member.name == "Ada"));
}

#[tokio::test]
async fn older_history_comes_in_pages_by_id() {
    let server = TestServer::with(Settings {
        recent_messages: Some(3),
        ..Settings::default()
    })
    .await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    post_confirmed(&mut ada, "m", 7).await;
    let addr = server.addr;
    let older = |before: u64| async move {
        let before = before.to_string();
        let body = common::call(addr, "older", &[("room", "lobby"), ("before", &before)]).await;
        serde_json::from_str::<Vec<ChatMessage>>(&body)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(older(5).await, [2, 3, 4]);
    assert_eq!(older(2).await, [1]);
    assert!(older(1).await.is_empty());
}

/// The size of `db`'s WAL file (0 when there is none).
fn wal_bytes(db: &std::path::Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Watches `db`'s WAL from another thread; returns the largest size seen when stopped.
struct WalWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl WalWatch {
    fn start(db: &std::path::Path) -> WalWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, db) = (stop.clone(), db.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut largest = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                largest = largest.max(wal_bytes(&db));
                // The sampling interval: the watch looks until it is stopped, not for a state.
                std::thread::sleep(Duration::from_millis(2));
            }
            largest
        });
        WalWatch { stop, thread }
    }

    fn largest(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Sends `n` messages of `text` keeping `window` unconfirmed; returns the confirmed ids by
/// client id, and the refused client ids with their error messages.
async fn post_pipelined(
    c: &mut Client,
    prefix: &str,
    n: usize,
    window: usize,
    text: &str,
) -> (HashMap<String, u64>, Vec<(String, String)>) {
    let (mut acked, mut refused) = (HashMap::new(), Vec::new());
    let mut sent = 0;
    while acked.len() + refused.len() < n {
        while sent < n && sent - acked.len() - refused.len() < window {
            c.send(&send(&format!("{prefix}{sent}"), text)).await;
            sent += 1;
        }
        match c.recv().await {
            ServerFrame::Message(m) => {
                if let Some(id) = m.client_id.clone().filter(|id| id.starts_with(prefix)) {
                    acked.insert(id, m.id);
                }
            }
            ServerFrame::Error {
                code: ErrorCode::StorageFailed,
                message,
                client_id: Some(id),
            } => refused.push((id, message)),
            ServerFrame::Joined { .. } | ServerFrame::Left { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    (acked, refused)
}

#[tokio::test]
async fn the_wal_stays_bounded_under_steady_sends_and_is_gone_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let flags = [
        "--wal-limit-mb",
        "1",
        "--max-resume-gap",
        "100000",
        "--max-message-chars",
        "4000",
    ];
    let server = ServerProcess::start(&db, &flags);
    let (mut ada, cookie) = member_of(server.addr, "steady", "Ada").await;
    let (mut bob, _) = member_of(server.addr, "steady", "Bob").await;
    assert!(matches!(ada.recv().await, ServerFrame::Joined { .. }));
    let bob_reads = tokio::spawn(async move {
        let mut n = 0;
        while n < 3000 {
            if let ServerFrame::Message(_) = bob.recv().await {
                n += 1;
            }
        }
    });
    let watch = WalWatch::start(&db);
    // About 9 MB of messages without a pause, read by Bob as they come.
    let (acked, refused) = post_pipelined(&mut ada, "w", 3000, 64, &"x".repeat(3000)).await;
    bob_reads.await.unwrap();
    let largest = watch.largest();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(
        largest < 3 * 1024 * 1024,
        "the WAL grew to {largest} bytes over a 1 MiB limit"
    );

    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(15)).success());
    assert_eq!(wal_bytes(&db), 0, "the WAL is gone or empty after SIGTERM");

    assert_eq!(
        stored_ids(&db),
        acked,
        "every confirmed message is kept, and only those"
    );
    let server = ServerProcess::start(&db, &flags);
    let (_c, recent, _) = Client::joined_with_history(server.addr, "steady", &cookie, None).await;
    assert_eq!(
        recent.iter().map(|m| m.id).collect::<Vec<_>>(),
        (2951..=3000).collect::<Vec<_>>()
    );
}

/// Every stored message's client id and id, read from the database file itself.
fn stored_ids(db: &std::path::Path) -> HashMap<String, u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT client_id, id FROM messages WHERE client_id IS NOT NULL")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A small tmpfs mounted on a temporary folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a `mb` MiB tmpfs, or None where mounting is not permitted (not root).
    fn mount(mb: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the file system is full; returns the bytes written.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    let mut written = 0;
    while let Ok(n) = f.write(&chunk) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    written
}

/// `chatroom_store_full` from the server's /metrics.
async fn store_full_gauge(addr: std::net::SocketAddr) -> Option<String> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("chatroom_store_full "))
        .map(str::to_string)
}

#[tokio::test]
async fn a_full_disk_refuses_unconfirmed_messages_and_the_room_goes_on_when_space_returns() {
    // A 6 MiB tmpfs holds the database, so that the disk can fill during traffic and be
    // freed again while the server runs (SQLite's max_page_count cannot be raised from outside).
    let Some(disk) = SmallDisk::mount(6) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let db = disk.path().join("chat.db");
    let flags = ["--wal-limit-mb", "1", "--max-resume-gap", "100000"];
    let server = ServerProcess::start(&db, &flags);
    let (mut ada, cookie) = member_of(server.addr, "disk", "Ada").await;
    let (mut bob, _) = member_of(server.addr, "disk", "Bob").await;
    assert!(matches!(ada.recv().await, ServerFrame::Joined { .. }));
    let bob_reads = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(2), bob.recv()).await {
                Ok(ServerFrame::Message(m)) => seen.push((m.client_id.unwrap_or_default(), m.id)),
                Ok(_) => {}
                Err(_) => return (bob, seen),
            }
        }
    });

    // The disk fills up while Ada sends without pause.
    // It starts once the first round is confirmed (dropping `start` lets it go).
    let filler = disk.path().join("filler");
    let (start, go) = std::sync::mpsc::channel::<()>();
    let mut start = Some(start);
    let filling = {
        let filler = filler.clone();
        std::thread::spawn(move || {
            let _ = go.recv();
            fill(&filler)
        })
    };
    let text = "y".repeat(1500);
    let (mut acked, mut refused) = (HashMap::new(), Vec::new());
    for round in 0..200 {
        let (a, r) = post_pipelined(&mut ada, &format!("r{round}-"), 100, 16, &text).await;
        acked.extend(a);
        refused.extend(r);
        drop(start.take());
        if refused.len() >= 20 {
            break;
        }
    }
    assert!(filling.join().unwrap() > 0);
    assert!(
        !acked.is_empty(),
        "messages were stored before the disk filled"
    );
    assert!(
        refused.len() >= 20,
        "sends were refused once the disk was full"
    );
    assert!(
        refused.iter().any(|(_, why)| why.contains("full")),
        "the refusal says the database is full: {refused:?}"
    );
    // A refused write leaves frames allocated in the WAL that a smaller one may fit in:
    // send one at a time until one is refused, then the gauge says the store is full.
    for k in 0.. {
        assert!(k < 200, "no refusal among 200 single sends on a full disk");
        let id = format!("probe{k}");
        ada.send(&send(&id, &text)).await;
        match ada.recv().await {
            ServerFrame::Message(m) => {
                acked.insert(id, m.id);
            }
            ServerFrame::Error {
                code: ErrorCode::StorageFailed,
                ..
            } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(store_full_gauge(server.addr).await.as_deref(), Some("1"));

    // Bob got exactly the confirmed messages, none of the refused.
    let (mut bob, seen) = bob_reads.await.unwrap();
    let seen: HashMap<String, u64> = seen.into_iter().collect();
    assert_eq!(
        seen, acked,
        "the other member saw exactly what was confirmed"
    );

    // Space returns; no restart, no manual step.
    std::fs::remove_file(&filler).unwrap();
    ada.send(&send("after", "space is back")).await;
    let after = ack(&mut ada, "after").await;
    assert_eq!(ack(&mut bob, "after").await, after);
    assert_eq!(store_full_gauge(server.addr).await.as_deref(), Some("0"));

    // History: the latest page through the server, every message in the file.
    let (_c, recent, _) = Client::joined_with_history(server.addr, "disk", &cookie, None).await;
    assert_eq!(recent.last().map(|m| m.id), Some(after.id));
    assert_eq!(after.id, acked.len() as u64 + 1, "ids without gaps");
    let mut stored = stored_ids(&db);
    assert_eq!(stored.remove("after"), Some(after.id));
    assert_eq!(
        stored, acked,
        "every confirmed message is kept, and only those"
    );
    drop(server);
}

#[tokio::test]
async fn messages_past_the_retention_period_are_deleted_and_resume_reloads_over_the_hole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = ServerProcess::start(&db, &[]);
    let (mut ada, cookie) = member_of(server.addr, "old", "Ada").await;
    post_confirmed(&mut ada, "m", 5).await;
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(15)).success());
    // The first three are four days old.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE messages SET ts = ts - 4 * 86400000 WHERE id <= 3",
        [],
    )
    .unwrap();
    drop(conn);

    let server = ServerProcess::start(&db, &["--retention-days", "3", "--recent-messages", "10"]);
    let ids = |v: &[ChatMessage]| v.iter().map(|m| m.id).collect::<Vec<_>>();
    common::history_becomes(server.addr, "old", &cookie, &[4, 5]).await;
    // Resuming from a deleted message: the latest page, marked as a reset.
    let (mut ada, recent, reset) =
        Client::joined_with_history(server.addr, "old", &cookie, Some(1)).await;
    assert!(reset);
    assert_eq!(ids(&recent), [4, 5]);
    // Paging stops at the oldest kept; ids go on.
    let body = common::call(server.addr, "older", &[("room", "old"), ("before", "4")]).await;
    assert!(serde_json::from_str::<Vec<ChatMessage>>(&body)
        .unwrap()
        .is_empty());
    ada.send(&send("new", "after the purge")).await;
    assert_eq!(ack(&mut ada, "new").await.id, 6);
}
