//! Moderation over real sockets and the admin API, on one node and on two nodes sharing one Redis.
//!
//! Servers are real processes; members on "two nodes" are on the same server when there is
//! one. The moderator gets their role the way a person would: from an invite link the
//! operator made through the admin API, or from the owner link of a room they created.

mod common;

use chatroom::protocol::pages::{AuditEntry, JoinOutcome, RefusalCode};
use chatroom::protocol::{
    close, ChangeAction, ChatMessage, ClientFrame, ErrorCode, ModRequest, Role, ServerFrame,
};
use common::nodes::Nodes;
use common::old::OldClient;
use common::{
    ack, join_http, join_http_with, member_of, next_change, next_error, send, Client, Socket,
};
use futures::StreamExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "test-admin-token-0123456789";

fn flags() -> Vec<&'static str> {
    vec!["--admin-token", TOKEN]
}

/// Calls the admin API: method, path under `/api/admin`, JSON body; the status and JSON answer.
async fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/admin{path}");
    let mut req = match method {
        "POST" => client.post(url),
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A moderator invite for `name` in `room`, made by the operator; its token.
async fn invite(addr: SocketAddr, room: &str, name: &str) -> String {
    let (status, body) = admin(
        addr,
        "POST",
        &format!("/rooms/{room}/moderators"),
        Some(json!({ "name": name })),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["link"].as_str().unwrap(),
        format!("/r/{room}?claim={}", body["token"].as_str().unwrap())
    );
    body["token"].as_str().unwrap().to_string()
}

fn moderate(client_id: &str, request: ModRequest) -> ClientFrame {
    ClientFrame::Moderate {
        client_id: client_id.into(),
        request,
    }
}

/// The close code and reason the server ends `ws` with, within `within`.
async fn closed_within(ws: &mut Socket, within: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("closed in time");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// Joins as `name` and claims the moderator invite the operator made for that name.
async fn moderator(nodes: &Nodes, node: usize, room: &str, name: &str) -> (Client, String) {
    let token = invite(nodes.addr(node), room, name).await;
    let (mut c, cookie) = member_of(nodes.addr(node), room, name).await;
    c.send(&ClientFrame::Claim {
        client_id: "claim1".into(),
        token,
    })
    .await;
    let got = next_change(&mut c).await;
    assert_eq!(
        got.action,
        ChangeAction::Role {
            member: name.into(),
            role: Some(Role::Moderator)
        }
    );
    (c, cookie)
}

async fn history(addr: SocketAddr, room: &str, cookie: &str) -> Vec<ChatMessage> {
    Client::joined_with_history(addr, room, cookie, None)
        .await
        .1
}

async fn forged_frames(nodes: Nodes) {
    let room = "forged";
    let (mut ann, ann_cookie) = member_of(nodes.addr(0), room, "Ann").await;
    let posted = {
        ann.send(&send("a1", "keep me")).await;
        ack(&mut ann, "a1").await
    };
    let (mut bob, _) = member_of(nodes.addr(1), room, "Bob").await;
    let forged = [
        ModRequest::Remove {
            id: posted.id,
            reason: String::new(),
        },
        ModRequest::Ban {
            name: "Ann".into(),
            minutes: None,
            address: true,
            reason: String::new(),
        },
        ModRequest::Kick {
            name: "Ann".into(),
            reason: String::new(),
        },
        ModRequest::Lock { on: true },
        ModRequest::Topic {
            text: "owned".into(),
        },
    ];
    for (i, request) in forged.into_iter().enumerate() {
        let id = format!("f{i}");
        bob.send(&moderate(&id, request)).await;
        assert_eq!(
            next_error(&mut bob).await,
            (ErrorCode::NotModerator, Some(id))
        );
    }
    bob.send(&ClientFrame::Claim {
        client_id: "c1".into(),
        token: "guessed".into(),
    })
    .await;
    assert_eq!(next_error(&mut bob).await.0, ErrorCode::InvalidToken);
    // Nothing changed: Ann's message is there, she was not closed, the room is open.
    bob.send(&send("b1", "still open")).await;
    ack(&mut bob, "b1").await;
    ann.send(&send("a2", "still here")).await;
    ack(&mut ann, "a2").await;
    let kept = history(nodes.addr(1), room, &ann_cookie).await;
    assert!(kept
        .iter()
        .any(|m| m.id == posted.id && m.text == "keep me"));
}

#[tokio::test]
async fn forged_moderation_frames_are_refused_on_one_node() {
    forged_frames(Nodes::single(&flags())).await;
}

#[tokio::test]
async fn forged_moderation_frames_are_refused_in_cluster_mode() {
    forged_frames(Nodes::cluster(&flags())).await;
}

/// A moderator on node 0 acts on Bob, who has a tab on each node.
async fn moderator_acts(nodes: Nodes) {
    let room = "modroom";
    let (mut ann, _) = moderator(&nodes, 0, room, "Ann").await;
    let (mut bob, bob_cookie) = member_of(nodes.addr(1), room, "Bob").await;
    let mut bob2 = Client::joined(nodes.addr(0), room, &bob_cookie, None).await;

    // Removal: everyone sees it; the text is gone from the history.
    bob.send(&send("b1", "spam spam")).await;
    let spam = ack(&mut bob, "b1").await;
    ann.send(&moderate(
        "m1",
        ModRequest::Remove {
            id: spam.id,
            reason: "spam".into(),
        },
    ))
    .await;
    for c in [&mut ann, &mut bob, &mut bob2] {
        let ch = next_change(c).await;
        assert_eq!((ch.target, ch.name.as_str()), (spam.id, "Ann"));
        assert!(matches!(ch.action, ChangeAction::Remove { .. }));
    }
    let shown = history(nodes.addr(0), room, &bob_cookie).await;
    let removed = shown
        .iter()
        .find(|m| m.id == spam.id)
        .expect("still listed");
    assert!(removed.removed && removed.deleted && removed.text.is_empty());
    let mut bob2 = Client::joined(nodes.addr(0), room, &bob_cookie, None).await;

    // Mute: Bob's sends are refused on both nodes until unmuted.
    ann.send(&moderate(
        "m2",
        ModRequest::Mute {
            name: "Bob".into(),
            minutes: Some(10),
            reason: "calm down".into(),
        },
    ))
    .await;
    // Once a node has passed the mute on, it holds there.
    for (i, c) in [&mut bob, &mut bob2].into_iter().enumerate() {
        assert!(matches!(
            next_change(c).await.action,
            ChangeAction::Mute { .. }
        ));
        let id = format!("muted{i}");
        c.send(&send(&id, "hello?")).await;
        assert_eq!(next_error(c).await, (ErrorCode::Muted, Some(id)));
    }
    // A welcome tells a muted member so.
    let mut again = Client::connect(nodes.addr(1), room, Some(&bob_cookie)).await;
    again.send(&ClientFrame::Join { after: None }).await;
    match again.recv().await {
        ServerFrame::Welcome { muted_until, .. } => assert!(muted_until.is_some()),
        other => panic!("{other:?}"),
    }
    drop(again);
    ann.send(&moderate("m3", ModRequest::Unmute { name: "Bob".into() }))
        .await;
    next_change(&mut bob).await;
    bob.send(&send("p2", "back")).await;
    ack(&mut bob, "p2").await;

    // Kick: every tab of Bob's closes with 4010 and the reason; he may come back.
    let mut bob = Client::joined(nodes.addr(1), room, &bob_cookie, None).await;
    let mut bob2 = Client::joined(nodes.addr(0), room, &bob_cookie, None).await;
    ann.send(&moderate(
        "m4",
        ModRequest::Kick {
            name: "Bob".into(),
            reason: "cool off".into(),
        },
    ))
    .await;
    for c in [&mut bob, &mut bob2] {
        let (code, reason) = closed_within(&mut c.ws, Duration::from_secs(1)).await;
        assert_eq!(code, close::KICKED);
        assert!(reason.contains("cool off"), "{reason}");
    }
    let mut bob = Client::joined(nodes.addr(1), room, &bob_cookie, None).await;

    // Ban: closed within a second on the other node, and kept out: the same session
    // under another name, and the same name from a new session.
    ann.send(&moderate(
        "m5",
        ModRequest::Ban {
            name: "Bob".into(),
            minutes: None,
            address: false,
            reason: "enough".into(),
        },
    ))
    .await;
    let (code, reason) = closed_within(&mut bob.ws, Duration::from_secs(1)).await;
    assert_eq!(code, close::BANNED);
    assert!(reason.contains("enough"), "{reason}");
    let mut back = Client::connect(nodes.addr(0), room, Some(&bob_cookie)).await;
    back.send(&ClientFrame::Join { after: None }).await;
    assert_eq!(next_error(&mut back).await.0, ErrorCode::Banned);
    assert_eq!(
        closed_within(&mut back.ws, Duration::from_secs(2)).await.0,
        close::BANNED
    );
    // Refused as banned, by session under a new name and by name from a new browser.
    let (outcome, _) =
        join_http_with(nodes.addr(1), room, "Robert", "fox", Some(&bob_cookie)).await;
    assert!(
        matches!(&outcome, JoinOutcome::Refused { code: RefusalCode::Banned, message, .. }
            if message.starts_with("You are banned from this room")),
        "{outcome:?}"
    );
    let (outcome, _) = join_http(nodes.addr(0), room, "Bob", "fox").await;
    assert!(
        matches!(
            outcome,
            JoinOutcome::Refused {
                code: RefusalCode::Banned,
                ..
            }
        ),
        "{outcome:?}"
    );

    // Lock and slow mode, for a member without a role.
    let (mut cy, _) = member_of(nodes.addr(1), room, "Cy").await;
    ann.send(&moderate("m6", ModRequest::Slow { secs: 60 }))
        .await;
    next_change(&mut cy).await;
    cy.send(&send("c1", "first")).await;
    ack(&mut cy, "c1").await;
    cy.send(&send("c2", "second")).await;
    assert_eq!(
        next_error(&mut cy).await,
        (ErrorCode::SlowMode, Some("c2".into()))
    );
    ann.send(&moderate("m7", ModRequest::Lock { on: true }))
        .await;
    let lock = next_change(&mut cy).await;
    assert_eq!(lock.action, ChangeAction::Lock { on: true });
    cy.send(&ClientFrame::React {
        client_id: "c3".into(),
        id: lock.id - 1,
        emoji: "👍".into(),
        on: true,
    })
    .await;
    assert_eq!(next_error(&mut cy).await.0, ErrorCode::Locked);
    ann.send(&send("a1", "moderators may still post")).await;
    ack(&mut ann, "a1").await;

    // The audit log has every action, newest first, with who and why.
    let (status, audit) = admin(
        nodes.addr(1),
        "GET",
        &format!("/rooms/{room}/audit"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let audit: Vec<AuditEntry> = serde_json::from_value(audit).unwrap();
    let kinds: Vec<&str> = audit
        .iter()
        .map(|a| match &a.change.action {
            ChangeAction::Lock { .. } => "lock",
            ChangeAction::Slow { .. } => "slow",
            ChangeAction::Ban { .. } => "ban",
            ChangeAction::Kick { .. } => "kick",
            ChangeAction::Unmute { .. } => "unmute",
            ChangeAction::Mute { .. } => "mute",
            ChangeAction::Remove { .. } => "remove",
            ChangeAction::Role { .. } => "role",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["lock", "slow", "ban", "kick", "unmute", "mute", "remove", "role"]
    );
    assert!(audit[..7]
        .iter()
        .all(|a| a.change.name == "Ann" && a.role == Some(Role::Moderator)));
    assert!(
        matches!(&audit[2].change.action, ChangeAction::Ban { reason, .. } if reason == "enough")
    );
}

#[tokio::test]
async fn a_moderator_removes_mutes_kicks_bans_and_slows_on_one_node() {
    moderator_acts(Nodes::single(&flags())).await;
}

#[tokio::test]
async fn a_moderator_on_one_node_reaches_members_on_another() {
    moderator_acts(Nodes::cluster(&flags())).await;
}

async fn bans_survive(mut nodes: Nodes) {
    let room = "kept";
    let (ann, _) = moderator(&nodes, 0, room, "Ann").await;
    drop(ann);
    let (status, _) = admin(
        nodes.addr(0),
        "POST",
        &format!("/rooms/{room}/actions"),
        Some(json!({"do": "topic", "text": "Be <b>kind</b>"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let (mut bob, bob_cookie) = member_of(nodes.addr(1), room, "Bob").await;
    let (status, change) = admin(
        nodes.addr(0),
        "POST",
        &format!("/rooms/{room}/actions"),
        Some(json!({"do": "ban", "name": "Bob", "minutes": 60, "reason": "spam"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["action"], "ban");
    assert_eq!(change["name"], "", "the operator has no name");
    assert_eq!(
        closed_within(&mut bob.ws, Duration::from_secs(1)).await.0,
        close::BANNED
    );
    for i in 0..nodes.procs.len() {
        nodes.restart(i);
    }
    let mut back = Client::connect(nodes.addr(1), room, Some(&bob_cookie)).await;
    back.send(&ClientFrame::Join { after: None }).await;
    assert_eq!(next_error(&mut back).await.0, ErrorCode::Banned);
    // The topic came back with the welcome.
    let (outcome, cookie) = join_http(nodes.addr(0), room, "Dee", "owl").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)));
    let mut dee = Client::connect(nodes.addr(0), room, cookie.as_deref()).await;
    dee.send(&ClientFrame::Join { after: None }).await;
    match dee.recv().await {
        ServerFrame::Welcome { room: settings, .. } => assert_eq!(settings.topic, "Be <b>kind</b>"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bans_and_the_topic_survive_a_restart_on_one_node() {
    bans_survive(Nodes::single(&flags())).await;
}

#[tokio::test]
async fn bans_and_the_topic_survive_restarting_every_node() {
    bans_survive(Nodes::cluster(&flags())).await;
}

#[tokio::test]
async fn an_old_protocol_client_is_kicked_then_banned_by_address() {
    let nodes = Nodes::single(&["--admin-token", TOKEN, "--legacy-room", "lobby"]);
    let addr = nodes.addr(0);
    let act = |body: Value| async move {
        admin(
            addr,
            "POST",
            "/rooms/lobby/actions",
            Some(body),
            Some(TOKEN),
        )
        .await
    };
    let listed = || async move {
        let (_, m) = admin(addr, "GET", "/rooms/lobby/members", None, Some(TOKEN)).await;
        m["members"]
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["name"] == "Mallory"))
    };
    let mut old = OldClient::opened(addr, "Mallory", "1").await;
    common::eventually(Duration::from_secs(2), "Mallory is in", listed).await;
    let (status, body) = act(json!({"do": "kick", "name": "Mallory", "reason": "go"})).await;
    assert_eq!(status, 200, "{body}");
    let (code, _) = closed_within(&mut old.ws, Duration::from_secs(1)).await;
    assert_eq!(code, close::KICKED);
    // Kicked, not banned: back at once.
    let mut old = OldClient::opened(addr, "Mallory", "1").await;
    common::eventually(Duration::from_secs(2), "Mallory is back", listed).await;
    let (status, body) = act(json!({"do": "ban", "name": "Mallory", "address": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        closed_within(&mut old.ws, Duration::from_secs(1)).await.0,
        close::BANNED
    );
    // From the same address, under another name: refused and closed.
    common::eventually(Duration::from_secs(2), "the address is banned", || async {
        let mut again = OldClient::opened(addr, "Someone", "2").await;
        closed_within(&mut again.ws, Duration::from_secs(2)).await.0 == close::BANNED
    })
    .await;
    // Lifted: the address may come back.
    let (status, _) = act(json!({"do": "unban", "name": "Mallory"})).await;
    assert_eq!(status, 200);
    let _back = OldClient::opened(addr, "Mallory", "1").await;
    common::eventually(Duration::from_secs(2), "Mallory is in again", listed).await;
}

#[tokio::test]
async fn the_admin_api_needs_its_token() {
    let nodes = Nodes::single(&flags());
    let addr = nodes.addr(0);
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let (status, body) = admin(addr, "GET", "/rooms", None, token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["code"], "unauthorized");
        let (status, _) = admin(
            addr,
            "POST",
            "/rooms/lobby/actions",
            Some(json!({"do": "lock", "on": true})),
            token,
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _) = admin(addr, "GET", "/rooms", None, Some(TOKEN)).await;
    assert_eq!(status, 200);
    // Off without a token: nothing there.
    let off = Nodes::single(&[]);
    let (status, _) = admin(off.addr(0), "GET", "/rooms", None, Some(TOKEN)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_operator_lists_rooms_and_members_and_exports_history_on_one_node() {
    operator_lists(Nodes::single(&flags())).await;
}

#[tokio::test]
async fn the_operator_lists_a_room_that_lives_on_another_node() {
    operator_lists(Nodes::cluster(&flags())).await;
}

/// Members on node 0; the operator asks node 1 (in cluster mode, where the room is not live).
async fn operator_lists(nodes: Nodes) {
    let room = "exported";
    let (mut ann, _) = moderator(&nodes, 0, room, "Ann").await;
    let (_bob, _) = member_of(nodes.addr(0), room, "Bob").await;
    let addr = nodes.addr(1);
    for i in 0..3 {
        let id = format!("a{i}");
        ann.send(&send(&id, &format!("line {i}\nwith \"quotes\"")))
            .await;
        ack(&mut ann, &id).await;
    }
    // Presence reaches the other node within a tick.
    common::eventually(Duration::from_secs(3), "both listed as online", || async {
        let (status, rooms) = admin(addr, "GET", "/rooms", None, Some(TOKEN)).await;
        assert_eq!(status, 200);
        rooms
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"] == room && r["online"] == 2)
    })
    .await;
    let (_, members) = admin(
        addr,
        "GET",
        &format!("/rooms/{room}/members"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(members["online"], 2);
    assert_eq!(members["members"][0]["name"], "Ann");
    assert_eq!(members["members"][0]["role"], "moderator");
    assert!(members["members"][1].get("role").is_none());
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/api/admin/rooms/{room}/export"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let body = resp.text().await.unwrap();
    let lines: Vec<ChatMessage> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "line 0\nwith \"quotes\"",
            "line 1\nwith \"quotes\"",
            "line 2\nwith \"quotes\""
        ]
    );
    // A moderator reads the audit log with their session; a member may not.
    let (dismissed, _) = admin(
        addr,
        "DELETE",
        &format!("/rooms/{room}/moderators/Ann"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(dismissed, 200);
    assert_eq!(
        next_change(&mut ann).await.action,
        ChangeAction::Role {
            member: "Ann".into(),
            role: None
        }
    );
    ann.send(&moderate("x1", ModRequest::Lock { on: true }))
        .await;
    assert_eq!(next_error(&mut ann).await.0, ErrorCode::NotModerator);
}

#[tokio::test]
async fn a_rooms_creator_claims_it_once_and_moderators_cannot_touch_the_owner() {
    let nodes = Nodes::single(&["--admin-token", TOKEN, "--room-owner-on-create", "true"]);
    let addr = nodes.addr(0);
    let room = "founded";
    let (outcome, cookie) = join_http(addr, room, "Ann", "fox").await;
    let JoinOutcome::Created { token, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let (second, _) = join_http(addr, room, "Bob", "owl").await;
    assert!(
        matches!(second, JoinOutcome::Joined(_)),
        "only the first gets a link"
    );
    let mut ann = Client::joined(addr, room, &cookie.unwrap(), None).await;
    ann.send(&ClientFrame::Claim {
        client_id: "c1".into(),
        token: token.clone(),
    })
    .await;
    assert_eq!(
        next_change(&mut ann).await.action,
        ChangeAction::Role {
            member: "Ann".into(),
            role: Some(Role::Owner)
        }
    );
    let (mut cy, _) = moderator(&nodes, 0, room, "Cy").await;
    cy.send(&ClientFrame::Claim {
        client_id: "c2".into(),
        token,
    })
    .await;
    assert_eq!(
        next_error(&mut cy).await.0,
        ErrorCode::InvalidToken,
        "used once"
    );
    cy.send(&moderate(
        "k1",
        ModRequest::Kick {
            name: "Ann".into(),
            reason: String::new(),
        },
    ))
    .await;
    assert_eq!(next_error(&mut cy).await.0, ErrorCode::NotModerator);
    // The owner may act on a moderator.
    ann.send(&moderate(
        "k2",
        ModRequest::Mute {
            name: "Cy".into(),
            minutes: Some(5),
            reason: String::new(),
        },
    ))
    .await;
    // Cy's claim reaches Ann first.
    assert!(matches!(
        next_change(&mut ann).await.action,
        ChangeAction::Role { .. }
    ));
    assert!(matches!(
        next_change(&mut ann).await.action,
        ChangeAction::Mute { .. }
    ));
}
