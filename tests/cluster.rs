//! Cluster mode: several real server processes on one real redis-server share rooms, history and message order, and a
//! client resumes on another node after its node is killed.

mod common;

use chatroom::protocol::{ChatMessage, ErrorCode, ServerFrame};
use common::old::OldClient;
use common::process::ServerProcess;
use common::redis_server::RedisServer;
use common::{ack, becomes, join_http, member_of, send, status_of, Client, WAIT};
use futures::StreamExt;
use std::collections::HashSet;
use std::time::Duration;

/// A node of the cluster on `redis`.
fn node(redis: &RedisServer, dir: &tempfile::TempDir, name: &str) -> ServerProcess {
    ServerProcess::start(
        &dir.path().join(format!("{name}.db")),
        &["--redis-url", &redis.url()],
    )
}

/// Asserts that `name` may join `room` on `addr`.
async fn assert_joins(addr: std::net::SocketAddr, room: &str, name: &str, avatar: &str) {
    let (outcome, _) = join_http(addr, room, name, avatar).await;
    assert!(
        matches!(outcome, chatroom::protocol::pages::JoinOutcome::Joined(_)),
        "{outcome:?}"
    );
}

/// Asserts that no chat message reaches `c` within `d` (presence events may).
async fn no_message_for(c: &mut Client, d: Duration) {
    let _ = tokio::time::timeout(d, async {
        loop {
            if let ServerFrame::Message(m) = c.recv().await {
                panic!("unexpected message {m:?}");
            }
        }
    })
    .await;
}

/// The next `n` chat messages `c` receives (other events skipped).
async fn messages(c: &mut Client, n: usize) -> Vec<ChatMessage> {
    let mut out = Vec::new();
    while out.len() < n {
        match c.recv().await {
            ServerFrame::Message(m) => out.push(m),
            ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn clients_on_three_nodes_chat_and_see_one_order() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<ServerProcess> = ["a", "b", "c"]
        .iter()
        .map(|n| node(&redis, &dir, n))
        .collect();
    let mut clients = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        clients.push(member_of(n.addr, "lobby", &format!("User{i}")).await.0);
    }
    // Every node knows all three before they talk, so that no `joined` is still on its way
    // when the room should have gone quiet.
    for n in &nodes {
        lists(n.addr, "lobby", &["User0", "User1", "User2"]).await;
    }
    // Everyone sends at once, from every node.
    const EACH: usize = 30;
    for i in 0..EACH {
        for (c, client) in clients.iter_mut().enumerate() {
            client
                .send(&send(&format!("c{c}-{i}"), &format!("{c}:{i}")))
                .await;
        }
    }
    let mut seen = Vec::new();
    for client in clients.iter_mut() {
        seen.push(messages(client, 3 * EACH).await);
    }
    let ids: Vec<u64> = seen[0].iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        (1..=(3 * EACH) as u64).collect::<Vec<_>>(),
        "gapless ids"
    );
    for other in &seen[1..] {
        assert_eq!(
            other, &seen[0],
            "every node delivers the same messages in one order"
        );
    }
    let texts: HashSet<&str> = seen[0].iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), 3 * EACH, "each message once");
    // A member's own messages keep their order.
    let mine: Vec<&str> = seen[0]
        .iter()
        .filter(|m| m.text.starts_with("1:"))
        .map(|m| m.text.as_str())
        .collect();
    let sent: Vec<String> = (0..EACH).map(|i| format!("1:{i}")).collect();
    assert_eq!(mine, sent);
    for client in clients.iter_mut() {
        client.quiet_for(Duration::from_millis(300)).await;
    }

    // A newcomer on any node gets the room's history from the shared log.
    let (_, cookie) = join_http(nodes[2].addr, "lobby", "Late", "owl").await;
    let (_late, history, reset) =
        Client::joined_with_history(nodes[2].addr, "lobby", &cookie.unwrap(), None).await;
    assert!(!reset);
    assert_eq!(history.len(), 50, "a page of recent messages");
    assert_eq!(history.last(), seen[0].last());
}

#[tokio::test]
async fn a_re_sent_message_is_confirmed_again_not_stored_twice_across_nodes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&redis, &dir, "a"), node(&redis, &dir, "b"));
    let (mut ada, cookie) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    ada.send(&send("once", "hello")).await;
    let first = ack(&mut ada, "once").await;
    assert_eq!(messages(&mut bob, 1).await, vec![first.clone()]);
    // Ada's tab reconnects to the other node and re-sends, not knowing it was stored.
    drop(ada);
    let mut ada = Client::joined(b.addr, "r", &cookie, Some(first.id)).await;
    ada.send(&send("once", "hello")).await;
    assert_eq!(
        ack(&mut ada, "once").await,
        first,
        "confirmed as the same message"
    );
    no_message_for(&mut bob, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn after_a_node_is_killed_its_client_resumes_on_another_without_gap_or_duplicate() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&redis, &dir, "a");
    let b = node(&redis, &dir, "b");
    let (mut ada, ada_cookie) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    for i in 0..5 {
        bob.send(&send(&format!("b{i}"), &format!("before {i}")))
            .await;
    }
    let before = messages(&mut ada, 5).await;
    let last_seen = before.last().unwrap().id;

    a.signal("-KILL");
    // Bob goes on talking while Ada has no node.
    let mut sent_meanwhile = Vec::new();
    for i in 0..7 {
        let id = format!("m{i}");
        bob.send(&send(&id, &format!("meanwhile {i}"))).await;
        sent_meanwhile.push(ack(&mut bob, &id).await);
    }
    // Ada's client reconnects to the other node with its last id.
    let (mut ada, missed, reset) =
        Client::joined_with_history(b.addr, "r", &ada_cookie, Some(last_seen)).await;
    assert!(!reset);
    assert_eq!(missed, sent_meanwhile, "exactly what was missed, in order");
    bob.send(&send("after", "after")).await;
    let next = messages(&mut ada, 1).await;
    assert_eq!(next[0].id, sent_meanwhile.last().unwrap().id + 1);
    ada.quiet_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn while_redis_is_down_sends_are_refused_not_lost_and_the_node_recovers() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&redis, &dir, "a");
    let b = node(&redis, &dir, "b");
    let ready = |addr| async move { status_of(&format!("http://{addr}/readyz")).await };
    let (mut ada, _) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    ada.send(&send("k1", "kept")).await;
    let kept = ack(&mut ada, "k1").await;
    messages(&mut bob, 1).await;

    redis.stop();
    // Not ready, sockets stay open, and a send is refused with an error, not confirmed.
    let what = "/readyz is 503 without Redis";
    becomes(Duration::from_secs(5), what, 503, || ready(a.addr)).await;
    ada.send(&send("k2", "during the outage")).await;
    match ada.recv().await {
        ServerFrame::Error {
            code: ErrorCode::StorageFailed,
            client_id,
            ..
        } => assert_eq!(client_id.as_deref(), Some("k2")),
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Newcomers are turned away with a reason.
    let (outcome, cookie) = join_http(b.addr, "r", "Dora", "owl").await;
    assert!(cookie.is_none());
    match outcome {
        chatroom::protocol::pages::JoinOutcome::Refused { message, .. } => {
            assert!(message.contains("try again"), "{message}")
        }
        other => panic!("joined during the outage: {other:?}"),
    }

    redis.restart();
    let what = "both nodes ready again by themselves";
    becomes(Duration::from_secs(10), what, (200, 200), || async {
        (ready(a.addr).await, ready(b.addr).await)
    })
    .await;
    // The same sockets work again, and the message acknowledged before the outage is kept.
    ada.send(&send("k2", "after the outage")).await;
    let again = ack(&mut ada, "k2").await;
    assert_eq!(again.id, kept.id + 1);
    assert_eq!(messages(&mut bob, 1).await, vec![again]);
    let (_, cookie) = join_http(b.addr, "r", "Carol", "owl").await;
    let (_c, history, _) = Client::joined_with_history(b.addr, "r", &cookie.unwrap(), None).await;
    assert_eq!(history.first(), Some(&kept));
}

#[tokio::test]
async fn messages_published_while_a_node_lost_its_subscription_still_arrive_in_order() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&redis, &dir, "a");
    let b = node(&redis, &dir, "b");
    let (mut ada, _) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    let mut sent = Vec::new();
    for round in 0..5 {
        // Cut every node's subscription, then talk while they resubscribe.
        let killed = redis.command("CLIENT KILL TYPE pubsub");
        assert!(killed.starts_with(':'), "{killed}");
        for i in 0..4 {
            let id = format!("r{round}-{i}");
            bob.send(&send(&id, &id)).await;
            sent.push(id);
        }
    }
    let got = messages(&mut ada, sent.len()).await;
    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, sent, "every message, once, in order");
    let on_b = messages(&mut bob, sent.len()).await;
    assert_eq!(on_b, got);
    no_message_for(&mut ada, Duration::from_millis(300)).await;
}

/// Waits (up to `within`) for `c` to be told that `name` joined or left; returns how long it took.
async fn told(c: &mut Client, name: &str, joined: bool, within: Duration) -> Duration {
    let start = std::time::Instant::now();
    let found = tokio::time::timeout(within, async {
        loop {
            match c.recv().await {
                ServerFrame::Joined { member } if joined && member.name == name => return,
                ServerFrame::Left { member } if !joined && member.name == name => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "not told that {name} {} within {within:?}",
        if joined { "joined" } else { "left" }
    );
    start.elapsed()
}

async fn members_on(addr: std::net::SocketAddr, room: &str) -> Vec<String> {
    let snap = common::room_snapshot(addr, room).await;
    let mut names: Vec<String> = snap.members.into_iter().map(|m| m.name).collect();
    names.sort();
    names
}

/// Waits (up to 3 s) for the node at `addr` to list exactly `names` (sorted) in `room`. Nodes
/// learn of each other's members on their presence tick, once a second.
async fn lists(addr: std::net::SocketAddr, room: &str, names: &[&str]) {
    let what = format!("{addr} lists {names:?} in {room}");
    let want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    becomes(Duration::from_secs(3), &what, want, || {
        members_on(addr, room)
    })
    .await;
}

#[tokio::test]
async fn members_of_every_node_are_listed_everywhere_and_a_name_is_taken_on_all_of_them() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&redis, &dir, "a"), node(&redis, &dir, "b"));
    let (mut ada, _) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    told(&mut ada, "Bob", true, Duration::from_secs(3)).await;
    for addr in [a.addr, b.addr] {
        lists(addr, "r", &["Ada", "Bob"]).await;
    }
    // Ada's name is hers on the other node too, in any case.
    let (outcome, _) = join_http(b.addr, "r", "ADA", "owl").await;
    assert!(
        matches!(
            outcome,
            chatroom::protocol::pages::JoinOutcome::Refused {
                field: chatroom::protocol::pages::JoinField::Name,
                ..
            }
        ),
        "{outcome:?}"
    );
    drop(ada);
    told(&mut bob, "Ada", false, Duration::from_secs(3)).await;
    // Once she has left, her name is free again everywhere.
    assert_joins(b.addr, "r", "Ada", "owl").await;
}

#[tokio::test]
async fn the_members_of_a_killed_node_leave_every_list_within_the_ttl() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ttl = 4;
    let flags = ["--redis-url", &redis.url(), "--presence-ttl-secs", "4"];
    let a = ServerProcess::start(&dir.path().join("a.db"), &flags);
    let b = ServerProcess::start(&dir.path().join("b.db"), &flags);
    let (_ada, _) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    if !members_on(b.addr, "r").await.contains(&"Ada".to_string()) {
        told(&mut bob, "Ada", true, Duration::from_secs(3)).await;
    }
    a.signal("-KILL");
    let took = told(&mut bob, "Ada", false, Duration::from_secs(ttl + 3)).await;
    assert!(
        took <= Duration::from_secs(ttl),
        "Ada left Bob's list {took:?} after her node died (TTL {ttl} s)"
    );
    assert_eq!(members_on(b.addr, "r").await, ["Bob"]);
    // Her name is no longer held by the dead node.
    assert_joins(b.addr, "r", "Ada", "owl").await;
}

/// Sends `n` messages from `c` and waits for each confirmation.
async fn say(c: &mut Client, tag: &str, n: usize) -> Vec<ChatMessage> {
    let mut acked = Vec::new();
    for i in 0..n {
        let id = format!("{tag}{i}");
        c.send(&send(&id, &id)).await;
        acked.push(ack(c, &id).await);
    }
    acked
}

#[tokio::test]
async fn a_rolling_restart_loses_no_acknowledged_message_and_every_client_stays_served() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--redis-url", &redis.url(), "--restart-spread-ms", "1"];
    let a = ServerProcess::start(&dir.path().join("a.db"), &flags);
    let b = ServerProcess::start(&dir.path().join("b.db"), &flags);
    let (mut ada, ada_cookie) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, bob_cookie) = member_of(b.addr, "r", "Bob").await;
    let mut acked = say(&mut ada, "a", 5).await;
    acked.extend(say(&mut bob, "b", 5).await);
    // Bob has seen everything so far; Ada too once she reads it.
    let mut ada_seen = messages(&mut ada, 5).await; // Bob's five
    ada_seen.splice(0..0, acked[..5].iter().cloned());

    // Node a restarts: its clients are told to reconnect, and the balancer sends them to b.
    a.signal("-TERM");
    assert_eq!(
        ada.closed_with().await,
        chatroom::protocol::close::SERVICE_RESTART
    );
    assert!(a.wait(Duration::from_secs(10)).success());
    acked.extend(say(&mut bob, "c", 3).await);
    let (mut ada, missed, reset) =
        Client::joined_with_history(b.addr, "r", &ada_cookie, Some(ada_seen.last().unwrap().id))
            .await;
    assert!(!reset);
    ada_seen.extend(missed);
    let a2 = ServerProcess::start(&dir.path().join("a2.db"), &flags);

    // Then node b: both clients move to the new a.
    b.signal("-TERM");
    assert_eq!(
        ada.closed_with().await,
        chatroom::protocol::close::SERVICE_RESTART
    );
    let bob_seen_last = loop {
        match bob.ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None => {
                break acked.last().unwrap().id;
            }
            _ => continue,
        }
    };
    assert!(b.wait(Duration::from_secs(10)).success());
    let (mut ada, missed, _) =
        Client::joined_with_history(a2.addr, "r", &ada_cookie, Some(ada_seen.last().unwrap().id))
            .await;
    ada_seen.extend(missed);
    let (mut bob, _, _) =
        Client::joined_with_history(a2.addr, "r", &bob_cookie, Some(bob_seen_last)).await;
    acked.extend(say(&mut bob, "d", 2).await);
    ada_seen.extend(messages(&mut ada, 2).await);

    // Every acknowledged message is kept, once, in order, and Ada saw each of them once.
    let ids: Vec<u64> = acked.iter().map(|m| m.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(ada_seen, acked);
    let (_, cookie) = join_http(a2.addr, "r", "Late", "owl").await;
    let (_late, history, _) =
        Client::joined_with_history(a2.addr, "r", &cookie.unwrap(), None).await;
    assert_eq!(history, acked);
}

#[tokio::test]
async fn a_member_with_tabs_on_two_nodes_keeps_their_name_until_the_last_tab_closes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&redis, &dir, "a"), node(&redis, &dir, "b"));
    let (ada_on_a, cookie) = member_of(a.addr, "r", "Ada").await;
    let (mut bob, _) = member_of(b.addr, "r", "Bob").await;
    // Node b has read that Ada is on node a (and a that Bob is on b).
    for addr in [a.addr, b.addr] {
        lists(addr, "r", &["Ada", "Bob"]).await;
    }
    // A second tab of Ada's lands on the other node, and is shared as hers there.
    let ada_on_b = Client::joined(b.addr, "r", &cookie, None).await;
    let fields = || redis.command("HLEN chat:{r}:presence");
    let what = "three presence fields: Ada on a and on b, Bob on b";
    becomes(WAIT, what, ":3".to_string(), || async { fields() }).await;
    // Her tab on b closes: once node b has shared that, her name stays held by node a.
    drop(ada_on_b);
    let what = "Ada's field on b is gone";
    becomes(WAIT, what, ":2".to_string(), || async { fields() }).await;
    let (outcome, _) = join_http(b.addr, "r", "Ada", "owl").await;
    assert!(
        matches!(
            outcome,
            chatroom::protocol::pages::JoinOutcome::Refused { .. }
        ),
        "Ada is still here (on the other node): {outcome:?}"
    );
    assert_eq!(members_on(b.addr, "r").await, ["Ada", "Bob"]);
    drop(ada_on_a);
    told(&mut bob, "Ada", false, Duration::from_secs(3)).await;
    assert_joins(b.addr, "r", "Ada", "owl").await;
}

#[tokio::test]
async fn a_join_refused_by_one_node_does_not_keep_the_name_from_the_others() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let a = ServerProcess::start(&dir.path().join("a.db"), &["--redis-url", &url]);
    let small = ["--redis-url", &url, "--max-room-members", "1"];
    let b = ServerProcess::start(&dir.path().join("b.db"), &small);
    let (_bob, _) = member_of(b.addr, "r", "Bob").await;
    // Node b's room is full: Carol is refused there...
    let (outcome, _) = join_http(b.addr, "r", "Carol", "owl").await;
    assert!(
        matches!(
            outcome,
            chatroom::protocol::pages::JoinOutcome::Refused {
                field: chatroom::protocol::pages::JoinField::Room,
                ..
            }
        ),
        "{outcome:?}"
    );
    // ...and the name is still free for her on node a.
    assert_joins(a.addr, "r", "Carol", "fox").await;
}

#[tokio::test]
async fn old_clients_on_two_nodes_chat_with_new_ones_and_keep_their_names_apart() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&redis, &dir, "a"), node(&redis, &dir, "b"));
    let (mut ada, _) = member_of(a.addr, "lobby", "Ada").await;
    let mut tom = OldClient::opened(b.addr, "Tom", "https://img.example/tom.png").await;
    // Ada is on the other node: Tom is told of her once presence has crossed over.
    assert_eq!(tom.next_action("connect").await["username"], "Ada");
    // The same name on node A is taken cluster-wide: a suffix.
    let mut tom2 = OldClient::opened(a.addr, "tom", "").await;
    let seen = |v: serde_json::Value| v["username"].as_str().unwrap().to_string();
    let mut listed = vec![seen(tom2.recv().await), seen(tom2.recv().await)];
    listed.sort();
    assert_eq!(listed, ["Ada", "Tom"]);
    assert_eq!(seen(tom.next_action("connect").await), "tom (2)");

    tom.say("hello across nodes").await;
    let m = &messages(&mut ada, 1).await[0];
    assert_eq!(
        (m.name.as_str(), m.text.as_str()),
        ("Tom", "hello across nodes")
    );
    let at_tom2 = tom2.next_action("send").await;
    assert_eq!(
        (&at_tom2["username"], &at_tom2["data"]),
        (
            &serde_json::json!("Tom"),
            &serde_json::json!("hello across nodes")
        )
    );
    ada.send(&send("a1", "hi both")).await;
    ack(&mut ada, "a1").await;
    for old in [&mut tom, &mut tom2] {
        assert_eq!(old.next_action("send").await["data"], "hi both");
    }
    // The sender never gets its own message back, whichever node delivers it.
    tom.quiet_for(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn lookalike_names_and_the_room_cap_hold_across_nodes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let flags = ["--redis-url", url.as_str(), "--max-rooms", "2"];
    let a = ServerProcess::start(&dir.path().join("a.db"), &flags);
    let b = ServerProcess::start(&dir.path().join("b.db"), &flags);
    assert_joins(a.addr, "lobby", "Ann", "fox").await;
    // The same name in fullwidth letters, on the other node, is the same name.
    let (outcome, cookie) = join_http(b.addr, "lobby", "\u{FF21}\u{FF2E}\u{FF2E}", "owl").await;
    assert!(
        matches!(
            outcome,
            chatroom::protocol::pages::JoinOutcome::Refused { .. }
        ),
        "{outcome:?}"
    );
    assert!(cookie.is_none());
    // A second room, made on the other node, fills the cluster's quota for both.
    assert_joins(b.addr, "kitchen", "Ben", "owl").await;
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    let (status, body) = common::join_from(a.addr, localhost, "third", "Cy").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("as many rooms as it keeps"), "{body}");
    assert_joins(a.addr, "kitchen", "Cy", "owl").await;
}

#[tokio::test]
async fn messages_past_the_retention_period_are_trimmed_from_the_streams() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let first = node(&redis, &dir, "n1");
    let (mut ada, cookie) = member_of(first.addr, "old", "Ada").await;
    for i in 0..5 {
        ada.send(&send(&format!("m{i}"), "hello")).await;
        ack(&mut ada, &format!("m{i}")).await;
    }
    // Make the first three four days old: the stream is written again with older stamps.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg("chat:{old}:log")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    redis::cmd("DEL")
        .arg("chat:{old}:log")
        .query::<()>(&mut conn)
        .unwrap();
    for (id, fields) in entries {
        let mut m: ChatMessage = serde_json::from_str(&fields["m"]).unwrap();
        if m.id <= 3 {
            m.ts -= 4 * 86_400_000;
        }
        redis::cmd("XADD")
            .arg("chat:{old}:log")
            .arg(id)
            .arg("m")
            .arg(serde_json::to_string(&m).unwrap())
            .query::<String>(&mut conn)
            .unwrap();
    }

    let second = ServerProcess::start(
        &dir.path().join("n2.db"),
        &["--redis-url", &redis.url(), "--retention-days", "3"],
    );
    let ids = |v: &[ChatMessage]| v.iter().map(|m| m.id).collect::<Vec<_>>();
    common::history_becomes(second.addr, "old", &cookie, &[4, 5]).await;
    let (mut ada, recent, reset) =
        Client::joined_with_history(second.addr, "old", &cookie, Some(1)).await;
    assert!(reset, "a resume from a trimmed message reloads");
    assert_eq!(ids(&recent), [4, 5]);
    ada.send(&send("new", "after the trim")).await;
    assert_eq!(ack(&mut ada, "new").await.id, 6);
}
