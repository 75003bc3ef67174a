//! Edits, deletions, reactions, replies and typing over real sockets, on one node and on two nodes sharing one Redis.
//!
//! Every scenario runs in both modes: members on "two nodes" are on the same server when
//! there is one. Servers are real processes, so that kill -9 is real.

mod common;

use chatroom::protocol::{Change, ChangeAction, ChatMessage, ClientFrame, ErrorCode, ServerFrame};
use common::nodes::Nodes;
use common::{ack, member_of, next_change, next_error, send, Client};
use std::net::SocketAddr;
use std::time::Duration;

fn edit(client_id: &str, id: u64, text: &str) -> ClientFrame {
    ClientFrame::Edit {
        client_id: client_id.into(),
        id,
        text: text.into(),
    }
}

fn delete(client_id: &str, id: u64) -> ClientFrame {
    ClientFrame::Delete {
        client_id: client_id.into(),
        id,
    }
}

fn react(client_id: &str, id: u64, emoji: &str, on: bool) -> ClientFrame {
    ClientFrame::React {
        client_id: client_id.into(),
        id,
        emoji: emoji.into(),
        on,
    }
}

/// The next message `c` receives.
async fn next_message(c: &mut Client) -> ChatMessage {
    loop {
        match c.recv().await {
            ServerFrame::Message(m) => return m,
            ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
}

/// Asserts that no change or message reaches `c` within `d`.
async fn nothing_for(c: &mut Client, d: Duration) {
    let _ = tokio::time::timeout(d, async {
        loop {
            if let f @ (ServerFrame::Change(_) | ServerFrame::Message(_)) = c.recv().await {
                panic!("unexpected {f:?}")
            }
        }
    })
    .await;
}

/// A fresh welcome's messages, in their newest state.
async fn history(addr: SocketAddr, room: &str, cookie: &str) -> Vec<ChatMessage> {
    Client::joined_with_history(addr, room, cookie, None)
        .await
        .1
}

/// Joins with resume point `after`: the welcome's messages, changes and new resume point.
async fn resume(
    addr: SocketAddr,
    room: &str,
    cookie: &str,
    after: u64,
) -> (Client, Vec<ChatMessage>, Vec<Change>, u64) {
    let mut c = Client::connect(addr, room, Some(cookie)).await;
    c.send(&ClientFrame::Join { after: Some(after) }).await;
    match c.recv().await {
        ServerFrame::Welcome {
            recent,
            changes,
            upto,
            reset,
            ..
        } => {
            assert!(!reset, "a resume, not a reset");
            (c, recent, changes, upto)
        }
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn only_the_author_may_edit_or_delete(nodes: Nodes) {
    let (mut ann, ann_cookie) = member_of(nodes.addr(0), "authors", "Ann").await;
    let (mut ben, _) = member_of(nodes.addr(1), "authors", "Ben").await;
    ann.send(&send("a1", "helo")).await;
    let m = ack(&mut ann, "a1").await;
    assert_eq!(next_message(&mut ben).await.id, m.id);

    ben.send(&edit("b1", m.id, "hacked")).await;
    assert_eq!(
        next_error(&mut ben).await,
        (ErrorCode::NotAuthor, Some("b1".into()))
    );
    ben.send(&delete("b2", m.id)).await;
    assert_eq!(
        next_error(&mut ben).await,
        (ErrorCode::NotAuthor, Some("b2".into()))
    );
    nothing_for(&mut ann, Duration::from_millis(300)).await;

    ann.send(&edit("a2", m.id, "hello")).await;
    for c in [&mut ann, &mut ben] {
        let ch = next_change(c).await;
        assert_eq!(
            (ch.target, &ch.action),
            (
                m.id,
                &ChangeAction::Edit {
                    text: "hello".into()
                }
            )
        );
    }
    // A re-sent edit is confirmed to its sender again, not applied twice.
    ann.send(&edit("a2", m.id, "hello")).await;
    let again = next_change(&mut ann).await;
    assert_eq!(again.client_id.as_deref(), Some("a2"));
    nothing_for(&mut ben, Duration::from_millis(300)).await;

    ben.send(&react("b3", m.id, "👍", true)).await;
    ben.send(&react("b4", m.id, "ok", true)).await;
    assert_eq!(
        next_error(&mut ben).await,
        (ErrorCode::InvalidEmoji, Some("b4".into()))
    );
    let ch = next_change(&mut ann).await;
    assert_eq!(ch.name, "Ben");

    // Ben replies; the reply carries a quote of the original's newest text.
    ben.send(&ClientFrame::Send {
        client_id: "b5".into(),
        text: "welcome".into(),
        reply_to: Some(m.id),
    })
    .await;
    let reply = next_message(&mut ann).await;
    let quote = reply.reply_to.expect("a quote");
    assert_eq!(
        (quote.id, quote.name.as_str(), quote.text.as_str()),
        (m.id, "Ann", "hello")
    );

    ann.send(&delete("a3", m.id)).await;
    assert_eq!(next_change(&mut ann).await.action, ChangeAction::Delete);
    ann.send(&edit("a4", m.id, "back")).await;
    assert_eq!(
        next_error(&mut ann).await,
        (ErrorCode::NoSuchMessage, Some("a4".into()))
    );

    // History shows the newest state: deleted, no text, no reactions; the reply's quote is gone.
    let shown = history(nodes.addr(1), "authors", &ann_cookie).await;
    let original = shown.iter().find(|s| s.id == m.id).expect("still listed");
    assert!(original.deleted);
    assert_eq!((original.text.as_str(), original.reactions.len()), ("", 0));
    let reply = shown
        .iter()
        .find(|s| s.client_id.as_deref() == Some("b5"))
        .unwrap();
    assert!(reply
        .reply_to
        .as_ref()
        .is_some_and(|q| q.gone && q.text.is_empty()));
}

#[tokio::test]
async fn only_the_author_may_edit_or_delete_on_one_node() {
    only_the_author_may_edit_or_delete(Nodes::single(&[])).await;
}

#[tokio::test]
async fn only_the_author_may_edit_or_delete_across_two_nodes() {
    only_the_author_may_edit_or_delete(Nodes::cluster(&[])).await;
}

async fn a_resume_replays_every_change_once(nodes: Nodes) {
    let (mut ann, _) = member_of(nodes.addr(0), "resume", "Ann").await;
    let (mut ben, ben_cookie) = member_of(nodes.addr(1), "resume", "Ben").await;
    ann.send(&send("a1", "one")).await;
    ann.send(&send("a2", "two")).await;
    let (one, two) = (ack(&mut ann, "a1").await, ack(&mut ann, "a2").await);
    next_message(&mut ben).await;
    let seen = next_message(&mut ben).await.id;
    drop(ben);

    ann.send(&edit("e1", one.id, "one!")).await;
    ann.send(&react("r1", one.id, "🎉", true)).await;
    ann.send(&send("a3", "three")).await;
    ann.send(&delete("d1", two.id)).await;
    ann.send(&react("r2", one.id, "🎉", false)).await;
    ann.send(&react("r3", one.id, "👀", true)).await;
    let (mut want, mut three) = (Vec::new(), None);
    while want.len() < 5 || three.is_none() {
        match ann.recv().await {
            ServerFrame::Change(c) => want.push(c.id),
            ServerFrame::Message(m) => three = Some(m),
            _ => {}
        }
    }
    let three = three.unwrap();

    let (mut ben, recent, changes, upto) = resume(nodes.addr(1), "resume", &ben_cookie, seen).await;
    assert_eq!(recent.iter().map(|m| m.id).collect::<Vec<_>>(), [three.id]);
    let ids: Vec<u64> = changes.iter().map(|c| c.id).collect();
    assert_eq!(ids, want, "every change once, in order");
    assert_eq!(upto, three.id.max(*want.last().unwrap()));
    // Applied to what Ben had, they give the newest state.
    let mut shown = one.clone();
    for c in &changes {
        shown.apply(c);
    }
    assert_eq!(shown.text, "one!");
    assert!(shown.reacted("👀", "Ann") && !shown.reacted("🎉", "Ann"));

    // Then live, exactly once.
    ann.send(&react("r4", three.id, "👍", true)).await;
    let live = next_change(&mut ben).await;
    assert_eq!(live.id, upto + 1);
    let (_, recent, changes, _) = resume(nodes.addr(0), "resume", &ben_cookie, live.id).await;
    assert!(recent.is_empty() && changes.is_empty(), "nothing twice");
}

#[tokio::test]
async fn a_resume_replays_every_change_once_on_one_node() {
    a_resume_replays_every_change_once(Nodes::single(&[])).await;
}

#[tokio::test]
async fn a_resume_replays_every_change_once_across_two_nodes() {
    a_resume_replays_every_change_once(Nodes::cluster(&[])).await;
}

async fn an_acknowledged_edit_survives_kill_9(mut nodes: Nodes) {
    let (mut ann, _) = member_of(nodes.addr(0), "crash", "Ann").await;
    let (mut ben, ben_cookie) = member_of(nodes.addr(1), "crash", "Ben").await;
    ann.send(&send("a1", "typo")).await;
    let m = ack(&mut ann, "a1").await;
    let seen = next_message(&mut ben).await.id;
    drop(ben);
    ann.send(&edit("e1", m.id, "fixed")).await;
    ann.send(&react("r1", m.id, "👍", true)).await;
    let acked = [
        next_change(&mut ann).await.id,
        next_change(&mut ann).await.id,
    ];
    nodes.kill(0);

    let (_, recent, changes, _) = resume(nodes.addr(1), "crash", &ben_cookie, seen).await;
    assert!(recent.is_empty());
    assert_eq!(changes.iter().map(|c| c.id).collect::<Vec<_>>(), acked);
    assert_eq!(
        changes[0].action,
        ChangeAction::Edit {
            text: "fixed".into()
        }
    );
    let shown = history(nodes.addr(1), "crash", &ben_cookie).await;
    assert_eq!(shown[0].text, "fixed");
    assert!(shown[0].edited.is_some() && shown[0].reacted("👍", "Ann"));
}

#[tokio::test]
async fn an_acknowledged_edit_survives_kill_9_on_one_node() {
    an_acknowledged_edit_survives_kill_9(Nodes::single(&[])).await;
}

#[tokio::test]
async fn an_acknowledged_edit_survives_kill_9_across_two_nodes() {
    an_acknowledged_edit_survives_kill_9(Nodes::cluster(&[])).await;
}

/// The next typing name `c` hears.
async fn next_typing(c: &mut Client) -> String {
    loop {
        if let ServerFrame::Typing { name } = c.recv().await {
            return name;
        }
    }
}

/// Asserts that `c` hears nobody typing within `d`.
async fn no_typing_for(c: &mut Client, d: Duration) {
    let _ = tokio::time::timeout(d, async {
        loop {
            if let ServerFrame::Typing { name } = c.recv().await {
                panic!("{name} typing");
            }
        }
    })
    .await;
}

async fn typing_reaches_the_others_and_is_never_replayed(nodes: Nodes) {
    let (mut ann, _) = member_of(nodes.addr(0), "typing", "Ann").await;
    let (mut ben, ben_cookie) = member_of(nodes.addr(1), "typing", "Ben").await;
    ann.send(&ClientFrame::Typing).await;
    assert_eq!(next_typing(&mut ben).await, "Ann");
    no_typing_for(&mut ann, Duration::from_millis(300)).await;
    // More than one every 2 s is not passed on.
    ann.send(&ClientFrame::Typing).await;
    no_typing_for(&mut ben, Duration::from_millis(500)).await;
    ann.send(&send("a1", "hi")).await;
    let m = next_message(&mut ben).await;
    drop(ben);
    let (_, recent, changes, _) = resume(nodes.addr(1), "typing", &ben_cookie, m.id - 1).await;
    assert_eq!(
        (recent.len(), changes.len()),
        (1, 0),
        "typing is not stored"
    );
}

#[tokio::test]
async fn typing_reaches_the_others_and_is_never_replayed_on_one_node() {
    typing_reaches_the_others_and_is_never_replayed(Nodes::single(&[])).await;
}

#[tokio::test]
async fn typing_reaches_the_others_and_is_never_replayed_across_two_nodes() {
    typing_reaches_the_others_and_is_never_replayed(Nodes::cluster(&[])).await;
}

#[tokio::test]
async fn typing_is_not_sent_in_rooms_too_big_to_list() {
    let nodes = Nodes::single(&["--presence-list-limit", "2"]);
    let (mut ann, _) = member_of(nodes.addr(0), "big", "Ann").await;
    let (mut ben, _) = member_of(nodes.addr(0), "big", "Ben").await;
    ann.send(&ClientFrame::Typing).await;
    assert_eq!(next_typing(&mut ben).await, "Ann");
    let (mut cy, _) = member_of(nodes.addr(0), "big", "Cy").await;
    cy.send(&ClientFrame::Typing).await;
    no_typing_for(&mut ben, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_slow_consumer_loses_typing_before_anything_else() {
    let nodes = Nodes::single(&[
        "--outgoing-queue-frames",
        "64",
        "--max-frame-bytes",
        "20000",
        "--max-message-chars",
        "8000",
    ]);
    let addr = nodes.addr(0);
    let (mut slow, _) = member_of(addr, "slow", "Slow").await;
    let (mut ann, _) = member_of(addr, "slow", "Ann").await;
    let mut typists = Vec::new();
    for i in 0..6 {
        typists.push(member_of(addr, "slow", &format!("T{i}")).await.0);
    }
    // Slow reads nothing: big messages fill its socket, then its queue past a quarter.
    let big = "x".repeat(8000);
    let mut sent = 0;
    let mut queued = 0.0;
    while queued < 24.0 {
        for _ in 0..20 {
            ann.send(&send(&format!("m{sent}"), &big)).await;
            sent += 1;
        }
        for i in sent - 20..sent {
            ack(&mut ann, &format!("m{i}")).await;
        }
        queued = common::metric(addr, "chatroom_outgoing_queue_frames_max")
            .await
            .unwrap_or(0.0);
        assert!(sent < 5000, "the slow reader's queue never filled");
    }
    // Typing while it is behind is dropped; messages still queue.
    for t in &mut typists {
        t.send(&ClientFrame::Typing).await;
    }
    for i in 0..5 {
        ann.send(&send(&format!("late{i}"), "late")).await;
        ack(&mut ann, &format!("late{i}")).await;
    }
    let mut messages = Vec::new();
    let mut typing = 0;
    while messages.len() < sent + 5 {
        match slow.recv().await {
            ServerFrame::Message(m) => messages.push(m.id),
            ServerFrame::Typing { .. } => typing += 1,
            _ => {}
        }
    }
    let first = messages[0];
    assert_eq!(
        messages,
        (first..first + messages.len() as u64).collect::<Vec<_>>(),
        "every message, in order"
    );
    assert_eq!(typing, 0, "typing was dropped while it was behind");
    // Caught up, it hears typing again.
    let mut t = member_of(addr, "slow", "Late").await.0;
    t.send(&ClientFrame::Typing).await;
    assert_eq!(next_typing(&mut slow).await, "Late");
}

#[tokio::test]
async fn texts_and_reactions_of_trimmed_entries_leave_redis_too() {
    let nodes = Nodes::cluster(&["--redis-stream-len", "10"]);
    let (mut ann, _) = member_of(nodes.addr(0), "trim", "Ann").await;
    for i in 0..300 {
        ann.send(&send(&format!("m{i}"), &format!("text {i}")))
            .await;
        let m = ack(&mut ann, &format!("m{i}")).await;
        ann.send(&react(&format!("r{i}"), m.id, "👍", true)).await;
        next_change(&mut ann).await;
    }
    let redis = nodes._redis.as_ref().unwrap();
    let first = redis.strings(&["XRANGE", "chat:{trim}:log", "-", "+", "COUNT", "1"]);
    let oldest: u64 = first[0].split('-').next().unwrap().parse().unwrap();
    assert!(oldest > 300, "the stream was trimmed (oldest {oldest})");
    let bodies = redis.strings(&["HKEYS", "chat:{trim}:body"]);
    let ids: Vec<u64> = bodies
        .iter()
        .map(|f| f.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| *id >= oldest),
        "{ids:?}"
    );
    let reactions = redis.strings(&["KEYS", "chat:{trim}:rx:*"]);
    assert!(
        reactions.len() <= ids.len(),
        "{} reaction sets",
        reactions.len()
    );
}
