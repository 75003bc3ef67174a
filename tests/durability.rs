//! Durable history and lossless reconnect: restarts, crashes, resume, idempotent sends, a full or broken store.

mod common;

use chatroom::protocol::{ChatMessage, ErrorCode, ServerFrame};
use chatroom::server::config::Settings;
use common::process::{start_failure, ServerProcess};
use common::{ack, member_of, send, Client, TestServer};
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
    drop(ada);
    let mut ada = Client::joined(server.addr, "lobby", &cookie, Some(first.id)).await;
    ada.send(&send("same", "only once")).await;
    assert_eq!(ack(&mut ada, "same").await, first);

    assert_eq!(ack(&mut bob, "same").await, first);
    // Bob sees Ada leave and come back (no grace period here), but never the message again.
    for _ in 0..2 {
        assert!(matches!(
            bob.recv().await,
            ServerFrame::Left { .. } | ServerFrame::Joined { .. }
        ));
    }
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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
