//! Connection hygiene under faults and abuse, on real server processes: dead peers are reaped, every socket is released,
//! slow consumers and flooders are cut off without harming the room, limits refuse cleanly, and SIGTERM drains.

mod common;

use chatroom::protocol::{close, ErrorCode, ServerFrame};
use common::process::ServerProcess;
use common::raw::{RawClient, CLOSE};
use common::{ack, becomes, join_http, member_of, poll_until, send, Client, WAIT};
use futures::SinkExt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

fn db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    (dir, path)
}

/// Polls until `count()` is at most `most`; panics naming `what` and the last count otherwise.
async fn at_most(within: Duration, what: &str, most: usize, count: impl Fn() -> usize) {
    poll_until(within, what, || {
        let n = count();
        async move {
            if n <= most {
                Ok(())
            } else {
                Err(n)
            }
        }
    })
    .await
}

async fn cookie(addr: SocketAddr, room: &str, name: &str) -> String {
    join_http(addr, room, name, "owl").await.1.expect("cookie")
}

#[tokio::test]
async fn a_silent_peer_is_reaped_and_its_socket_released() {
    let (_dir, db) = db();
    let server = ServerProcess::start(
        &db,
        &["--ping-interval-secs", "1", "--pong-timeout-secs", "1"],
    );
    let (mut bob, _) = member_of(server.addr, "r", "Bob").await;
    let baseline = server.open_fds();

    let c = cookie(server.addr, "r", "Ghost").await;
    let (mut ghost, status) = RawClient::connect(server.addr, "r", Some(&c), None, None, None)
        .await
        .unwrap();
    assert_eq!(status, 101);
    ghost.send_text(r#"{"type":"join"}"#).await.unwrap();
    assert!(matches!(bob.recv().await, ServerFrame::Joined { member } if member.name == "Ghost"));

    // The ghost never reads and never answers a ping. Bob keeps answering his.
    let started = Instant::now();
    loop {
        match bob.recv().await {
            ServerFrame::Left { member } if member.name == "Ghost" => break,
            ServerFrame::Heartbeat => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "reaped within ping + timeout"
    );
    let open = || server.open_fds();
    at_most(
        Duration::from_secs(5),
        "descriptors back to baseline",
        baseline,
        open,
    )
    .await;
    assert_eq!(server.close_wait(), 0);
    drop(ghost);
}

#[tokio::test]
async fn ten_thousand_abrupt_connections_leave_nothing_behind() {
    let (_dir, db) = db();
    let server = ServerProcess::start(&db, &["--max-connections-per-ip", "100000"]);
    // What may be left behind is sockets: the baseline is the listener and the anchor's socket,
    // once its join request's connection is closed. (Other descriptors, such as the database's,
    // come and go on their own schedule.)
    let before = server.open_sockets();
    let (_anchor, c) = member_of(server.addr, "churn", "Anchor").await;
    let baseline = before + 1;
    let sockets = || server.open_sockets();
    let what = "only the anchor's socket is added";
    becomes(WAIT, what, baseline, || async { sockets() }).await;

    let addr = server.addr;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..40 {
        let c = c.clone();
        tasks.spawn(async move {
            let mut half_closed = Vec::new();
            for i in 0..250 {
                let (mut raw, status) =
                    RawClient::connect(addr, "churn", Some(&c), None, None, None)
                        .await
                        .expect("connects");
                assert_eq!(status, 101);
                raw.send_text(r#"{"type":"join"}"#)
                    .await
                    .expect("join sent");
                match (worker + i) % 3 {
                    // A clean close frame, then gone.
                    0 => {
                        let _ = raw.send_frame(CLOSE, &1000u16.to_be_bytes()).await;
                    }
                    // A reset: SO_LINGER 0 makes the drop send RST.
                    1 => {
                        let _ =
                            socket2::SockRef::from(&raw.stream).set_linger(Some(Duration::ZERO));
                    }
                    // Half-closed: FIN sent, socket kept open, never read.
                    _ => {
                        use tokio::io::AsyncWriteExt;
                        let _ = raw.stream.shutdown().await;
                        half_closed.push(raw);
                        continue;
                    }
                }
                drop(raw);
            }
            half_closed
        });
    }
    let mut half_closed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        half_closed.extend(r.expect("worker"));
    }
    assert!(half_closed.len() > 3000);
    // The server must close its side of every half-closed socket: none may sit in CLOSE_WAIT.
    let close_wait = || server.close_wait();
    at_most(
        Duration::from_secs(20),
        "no socket in CLOSE_WAIT",
        0,
        close_wait,
    )
    .await;
    drop(half_closed);
    let what = "sockets back to baseline";
    at_most(Duration::from_secs(20), what, baseline, sockets).await;
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_cut_off_and_the_room_goes_on() {
    let (_dir, db) = db();
    let server = ServerProcess::start(
        &db,
        &[
            "--outgoing-queue-frames",
            "64",
            "--max-message-chars",
            "2000",
            // The cut-off consumer's grace to read its backlog and the 4008 behind it.
            "--pong-timeout-secs",
            "60",
        ],
    );
    let (mut ada, _) = member_of(server.addr, "busy", "Ada").await;
    let (bob, _) = member_of(server.addr, "busy", "Bob").await;
    let c = cookie(server.addr, "busy", "Slow").await;
    let (mut slow, _) = RawClient::connect(server.addr, "busy", Some(&c), None, None, Some(4096))
        .await
        .unwrap();
    slow.send_text(r#"{"type":"join"}"#).await.unwrap();

    // Bob reads everything as it comes.
    let total = 2000usize;
    let reader = tokio::spawn(async move {
        let mut bob = bob;
        let mut got = Vec::new();
        while got.len() < total {
            if let ServerFrame::Message(m) = bob.recv().await {
                got.push(m.id);
            }
        }
        got
    });
    let text = "x".repeat(1500);
    let mut sent = Vec::new();
    for i in 0..total {
        let id = format!("f{i}");
        ada.send(&send(&id, &text)).await;
        sent.push(ack(&mut ada, &id).await.id);
    }
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("Bob keeps up")
        .unwrap();
    assert_eq!(got, sent, "the reader got every message, in order");

    // The one that stopped reading was let go: reading again, it finds its backlog and then 4008.
    let code = tokio::time::timeout(Duration::from_secs(10), slow.close_code())
        .await
        .expect("disconnected");
    assert_eq!(code, Some(close::SLOW_CONSUMER));
    assert!(
        server.rss_kib() < 200 * 1024,
        "memory bounded: {} KiB",
        server.rss_kib()
    );
}

#[tokio::test]
async fn bad_frames_and_floods_get_their_documented_answers_while_the_room_goes_on() {
    let (_dir, db) = db();
    let server = ServerProcess::start(
        &db,
        &[
            "--rate-per-sec",
            "10",
            "--rate-burst",
            "20",
            "--flood-limit",
            "50",
        ],
    );
    let (mut bob, _) = member_of(server.addr, "abuse", "Bob").await;

    // Invalid UTF-8 in a text frame: 1007.
    let c = cookie(server.addr, "abuse", "Utf").await;
    let (mut raw, _) = RawClient::connect(server.addr, "abuse", Some(&c), None, None, None)
        .await
        .unwrap();
    raw.send_frame(1, &[0x66, 0xff, 0xfe]).await.unwrap();
    assert_eq!(raw.close_code().await, Some(1007));

    // Oversized: 1009.
    let (mut big, _) = RawClient::connect(server.addr, "abuse", Some(&c), None, None, None)
        .await
        .unwrap();
    big.send_text(&"x".repeat(20_000)).await.unwrap();
    assert_eq!(big.close_code().await, Some(close::TOO_BIG));

    // A flood at about 1,000 messages a second: "slow down" first, then 4029.
    let (mut flood, _) = member_of(server.addr, "abuse", "Flood").await;
    assert!(matches!(bob.recv().await, ServerFrame::Joined { .. }));
    let mut rate_limited = 0;
    let mut flooder_acks = Vec::new();
    let mut closed = None;
    for i in 0..1000 {
        if flood
            .ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                send(&format!("x{i}"), "spam").encode(),
            ))
            .await
            .is_err()
        {
            break;
        }
        // Paces the flood on purpose (about a message a millisecond): a wait for time to pass.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while closed.is_none() {
        use futures::StreamExt;
        match tokio::time::timeout(Duration::from_secs(5), flood.ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                match ServerFrame::decode(t.as_str()).unwrap() {
                    ServerFrame::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    } => rate_limited += 1,
                    ServerFrame::Message(m) => flooder_acks.push(m.id),
                    _ => {}
                }
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f)))) => {
                closed = Some(f.map(|f| u16::from(f.code)))
            }
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "flooder not closed cleanly: {other:?} after {rate_limited} slow-downs and {} acks",
                flooder_acks.len()
            ),
        }
    }
    assert!(rate_limited >= 1, "told to slow down first");
    assert_eq!(closed, Some(Some(close::FLOODING)));
    assert!(
        flooder_acks.len() <= 25,
        "only the burst got through: {}",
        flooder_acks.len()
    );

    // Bob saw exactly what was accepted, then the flooder leave; and the room still works.
    let mut seen = Vec::new();
    loop {
        match bob.recv().await {
            ServerFrame::Message(m) => seen.push(m.id),
            ServerFrame::Left { member } if member.name == "Flood" => break,
            _ => {}
        }
    }
    assert_eq!(seen, flooder_acks);
    let (mut ada, _) = member_of(server.addr, "abuse", "Ada").await;
    ada.send(&send("ok", "still fine")).await;
    assert_eq!(ack(&mut bob, "ok").await.text, "still fine");
}

#[tokio::test]
async fn connections_beyond_the_per_ip_limit_are_refused_cleanly() {
    let (_dir, db) = db();
    let server = ServerProcess::start(&db, &["--max-connections-per-ip", "64"]);
    let c = cookie(server.addr, "many", "Many").await;
    let mut open = Vec::new();
    for _ in 0..64 {
        let (raw, status) = RawClient::connect(server.addr, "many", Some(&c), None, None, None)
            .await
            .unwrap();
        assert_eq!(status, 101);
        open.push(raw);
    }
    let (_refused, status) = RawClient::connect(server.addr, "many", Some(&c), None, None, None)
        .await
        .unwrap();
    assert_eq!(status, 429, "the 65th from one address");
    // Another address still gets in, and the room works for it.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let (mut raw, status) =
        RawClient::connect(server.addr, "many", Some(&c), None, Some(other), None)
            .await
            .unwrap();
    assert_eq!(status, 101);
    raw.send_text(r#"{"type":"join"}"#).await.unwrap();
    let (op, payload) = raw.read_frame().await.unwrap();
    assert_eq!(op, 1);
    assert!(String::from_utf8_lossy(&payload).contains(r#""type":"welcome""#));
    // A place frees up when one closes.
    drop(open.pop());
    let status = || async {
        let connected = RawClient::connect(server.addr, "many", Some(&c), None, None, None).await;
        connected.unwrap().1
    };
    becomes(WAIT, "a freed place can be taken again", 101, status).await;
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused_and_same_origin_works() {
    let (_dir, db) = db();
    let server = ServerProcess::start(&db, &[]);
    let same = format!("http://{}", server.addr);
    let (_a, status) = RawClient::connect(
        server.addr,
        "o",
        None,
        Some("http://evil.example"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    let (_b, status) = RawClient::connect(server.addr, "o", None, Some(&same), None, None)
        .await
        .unwrap();
    assert_eq!(status, 101);
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1012_and_loses_nothing_acknowledged() {
    let (_dir, db) = db();
    let server = ServerProcess::start(&db, &["--max-connections-per-ip", "1000"]);
    let c = cookie(server.addr, "drain", "Crowd").await;
    let mut crowd = Vec::new();
    for _ in 0..200 {
        crowd.push(Client::joined(server.addr, "drain", &c, None).await);
    }
    let (mut ada, ada_cookie) = member_of(server.addr, "drain", "Ada").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let id = format!("d{i}");
        ada.send(&send(&id, "before shutdown")).await;
        acked.push(ack(&mut ada, &id).await.id);
    }
    let started = Instant::now();
    server.signal("-TERM");
    let mut codes = Vec::new();
    for mut client in crowd {
        codes.push(client.closed_with().await);
    }
    assert!(
        codes.iter().all(|c| *c == close::SERVICE_RESTART),
        "{codes:?}"
    );
    let status = server.wait(Duration::from_secs(12));
    assert!(status.success(), "exit 0");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "within the deadline"
    );

    let server = ServerProcess::start(&db, &[]);
    let (_c, history, _) =
        Client::joined_with_history(server.addr, "drain", &ada_cookie, Some(0)).await;
    let ids: Vec<u64> = history.iter().map(|m| m.id).collect();
    assert_eq!(ids, acked);
}

#[tokio::test]
async fn accepted_sockets_run_tcp_keepalive() {
    let (_dir, db) = db();
    let server = ServerProcess::start(&db, &[]);
    let (raw, status) = RawClient::connect(server.addr, "ka", None, None, None, None)
        .await
        .unwrap();
    assert_eq!(status, 101);
    let peer = raw.stream.local_addr().unwrap().port();
    assert_eq!(
        server.timer_of(peer),
        Some(2),
        "keepalive timer on the server's socket"
    );
}
