//! End-to-end behaviour of the chat over real sockets: joining, messages, presence, identity, bad input, drain.

mod common;

use chatroom::protocol::pages::{JoinField, JoinOutcome};
use chatroom::protocol::{close, ClientFrame, ErrorCode, Member, ServerFrame};
use common::{ack, eventually, send, Client, TestServer, WAIT};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn member(name: &str, avatar: &str) -> Member {
    Member {
        name: name.into(),
        avatar: avatar.into(),
    }
}

#[tokio::test]
async fn members_chat_and_every_message_reaches_everyone_once() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut bob, _) = server.member("lobby", "Bob", "owl").await;
    assert_eq!(
        ada.recv().await,
        ServerFrame::Joined {
            member: member("Bob", "owl")
        }
    );

    ada.send(&send("a1", "hello <b>Bob</b>")).await;
    for c in [&mut ada, &mut bob] {
        match c.recv().await {
            ServerFrame::Message(m) => {
                assert_eq!(
                    (m.id, m.name.as_str(), m.avatar.as_str()),
                    (1, "Ada", "fox")
                );
                assert_eq!(m.text, "hello <b>Bob</b>");
                assert_eq!(m.client_id.as_deref(), Some("a1"));
                assert!(m.ts > 1_600_000_000_000, "server stamps UTC ms");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    bob.send(&send("b1", "hi Ada")).await;
    for c in [&mut ada, &mut bob] {
        assert!(matches!(c.recv().await, ServerFrame::Message(m) if m.id == 2 && m.name == "Bob"));
    }
    // Exactly once: nothing else follows.
    ada.quiet_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn identity_comes_from_the_session_not_the_frame() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut bob, _) = server.member("lobby", "Bob", "owl").await;
    ada.recv().await; // Bob joined
    bob.send_raw(Message::text(
        r#"{"type":"send","client_id":"x","text":"I am Ada","name":"Ada","avatar":"fox"}"#,
    ))
    .await;
    match ada.recv().await {
        ServerFrame::Message(m) => assert_eq!((m.name.as_str(), m.avatar.as_str()), ("Bob", "owl")),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_socket_without_a_session_is_refused_with_a_reason() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr, "lobby", None).await;
    c.send(&ClientFrame::Join { after: None }).await;
    assert!(matches!(
        c.recv().await,
        ServerFrame::Error {
            code: ErrorCode::SessionInvalid,
            ..
        }
    ));
    assert_eq!(c.closed_with().await, close::SESSION_REFUSED);

    // A forged cookie is no better.
    let mut c = Client::connect(server.addr, "lobby", Some("chat_lobby=e30.AAAA")).await;
    c.send(&ClientFrame::Join { after: None }).await;
    assert!(matches!(
        c.recv().await,
        ServerFrame::Error {
            code: ErrorCode::SessionInvalid,
            ..
        }
    ));
    // A cookie from another room does not open this one.
    let (_, other_room_cookie) = server.join("kitchen", "Ada", "fox").await;
    let value = other_room_cookie
        .unwrap()
        .replace("chat_kitchen=", "chat_lobby=");
    let mut c = Client::connect(server.addr, "lobby", Some(&value)).await;
    c.send(&ClientFrame::Join { after: None }).await;
    assert!(matches!(
        c.recv().await,
        ServerFrame::Error {
            code: ErrorCode::SessionInvalid,
            ..
        }
    ));
}

/// The field and message of a refused join.
fn refused(o: JoinOutcome) -> (JoinField, String) {
    match o {
        JoinOutcome::Refused { field, message, .. } => (field, message),
        other => panic!("expected refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn join_refuses_bad_and_taken_names_and_bad_avatars_with_the_field() {
    let server = TestServer::start().await;
    let (_ada, _) = server.member("lobby", "Ada", "fox").await;

    let (outcome, cookie) = server.join("lobby", "  aDA ", "owl").await;
    let (field, message) = refused(outcome);
    assert_eq!(field, JoinField::Name);
    assert!(message.contains("taken"), "{message}");
    assert!(cookie.is_none(), "nothing is half-joined");

    for bad in ["", "   ", &"x".repeat(33), "tab\there"] {
        let (outcome, cookie) = server.join("lobby", bad, "owl").await;
        assert_eq!(refused(outcome).0, JoinField::Name, "{bad:?}");
        assert!(cookie.is_none());
    }
    let (outcome, _) = server.join("lobby", "Cy", "dragon").await;
    assert_eq!(refused(outcome).0, JoinField::Avatar);
    let (outcome, _) = server.join("not a room", "Cy", "owl").await;
    assert_eq!(refused(outcome).0, JoinField::Room);

    // The same name is free in another room.
    let (outcome, _) = server.join("kitchen", "Ada", "owl").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)));
}

#[tokio::test]
async fn a_reserved_name_cannot_be_taken_before_its_socket_arrives() {
    let server = TestServer::start().await;
    let (outcome, _) = server.join("lobby", "Ada", "fox").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)));
    let (outcome, cookie) = server.join("lobby", "ada", "owl").await;
    assert!(matches!(
        outcome,
        JoinOutcome::Refused {
            field: JoinField::Name,
            ..
        }
    ));
    assert!(cookie.is_none());
}

#[tokio::test]
async fn two_tabs_are_one_member_until_the_last_closes() {
    let server = TestServer::start().await;
    let (mut bob, _) = server.member("lobby", "Bob", "owl").await;
    let (tab1, cookie) = server.member("lobby", "Ada", "fox").await;
    assert!(matches!(bob.recv().await, ServerFrame::Joined { member } if member.name == "Ada"));

    let mut tab2 = Client::connect(server.addr, "lobby", Some(&cookie)).await;
    tab2.send(&ClientFrame::Join { after: None }).await;
    match tab2.recv().await {
        ServerFrame::Welcome { members, you, .. } => {
            assert_eq!(you.name, "Ada");
            assert_eq!(members.iter().filter(|m| m.name == "Ada").count(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    bob.quiet_for(Duration::from_millis(200)).await;

    drop(tab1);
    bob.quiet_for(Duration::from_millis(300)).await;
    tab2.ws.close(None).await.unwrap();
    assert_eq!(
        bob.recv().await,
        ServerFrame::Left {
            member: member("Ada", "fox")
        }
    );
}

#[tokio::test]
async fn rooms_are_separate() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut cy, _) = server.member("kitchen", "Cy", "cat").await;
    ada.send(&send("a1", "lobby only")).await;
    assert!(matches!(ada.recv().await, ServerFrame::Message(_)));
    cy.quiet_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn bad_input_gets_error_events_and_the_connection_goes_on() {
    let server = TestServer::start().await;
    let (outcome, cookie) = server.join("lobby", "Ada", "fox").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)));
    let mut c = Client::connect(server.addr, "lobby", cookie.as_deref()).await;

    let code = |f: ServerFrame| match f {
        ServerFrame::Error { code, .. } => code,
        other => panic!("expected error, got {other:?}"),
    };
    c.send(&send("early", "before join")).await;
    assert_eq!(code(c.recv().await), ErrorCode::NotJoined);
    c.send(&ClientFrame::Join { after: None }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));

    c.send_raw(Message::text("not json")).await;
    assert_eq!(code(c.recv().await), ErrorCode::BadJson);
    c.send_raw(Message::text(r#"{"type":"shout"}"#)).await;
    assert_eq!(code(c.recv().await), ErrorCode::UnknownType);
    c.send_raw(Message::text(r#"{"type":"send"}"#)).await;
    assert_eq!(code(c.recv().await), ErrorCode::BadFrame);
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(code(c.recv().await), ErrorCode::BinaryFrame);
    c.send(&ClientFrame::Join { after: None }).await;
    assert_eq!(code(c.recv().await), ErrorCode::AlreadyJoined);
    c.send(&send("e1", " \n\t ")).await;
    match c.recv().await {
        ServerFrame::Error {
            code, client_id, ..
        } => {
            assert_eq!(code, ErrorCode::EmptyMessage);
            assert_eq!(client_id.as_deref(), Some("e1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    c.send(&send("e2", &"x".repeat(2001))).await;
    assert_eq!(code(c.recv().await), ErrorCode::MessageTooLong);
    c.send(&send("bad id", "x")).await;
    assert_eq!(code(c.recv().await), ErrorCode::InvalidClientId);

    // Still joined and working.
    c.send(&send("ok", "still here")).await;
    assert!(matches!(c.recv().await, ServerFrame::Message(m) if m.text == "still here"));
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009_and_the_room_goes_on() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut big, _) = server.member("lobby", "Big", "owl").await;
    ada.recv().await; // Big joined
    big.send_raw(Message::text("x".repeat(20_000))).await;
    assert_eq!(big.closed_with().await, close::TOO_BIG);
    assert!(matches!(ada.recv().await, ServerFrame::Left { member } if member.name == "Big"));
    ada.send(&send("a", "still fine")).await;
    assert!(matches!(ada.recv().await, ServerFrame::Message(_)));
}

#[tokio::test]
async fn first_paint_shows_members_and_messages_as_text() {
    let server = TestServer::start().await;
    let (mut ada, cookie) = server.member("r1", "<i>Ada</i>", "fox").await;
    ada.send(&send("x", "<img src=x onerror=alert(1)>")).await;
    ada.recv().await;
    let page = |cookie: Option<String>| {
        let mut req = reqwest::Client::new().get(server.url("/r/r1"));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    // A member reloading the page: the chat with its history, as text.
    let html = page(Some(cookie)).await;
    assert!(html.contains(r#"data-testid="chat""#));
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "message escaped"
    );
    assert!(html.contains("&lt;i&gt;Ada&lt;/i&gt;"), "name escaped");
    assert!(!html.contains("<img src=x"), "never raw");
    // A visitor: the join form, with who is online and the recent messages, as text.
    let html = page(None).await;
    assert!(html.contains(r#"data-testid="join-form""#));
    assert!(html.contains("&lt;i&gt;Ada&lt;/i&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<img src=x"));
}

#[tokio::test]
async fn unknown_pages_are_404_and_health_is_ok() {
    let server = TestServer::start().await;
    let resp = reqwest::get(server.url("/no/such/page")).await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let err = tokio_tungstenite::connect_async(format!("ws://{}/ws/no_such_room!", server.addr))
        .await
        .expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 404),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn drain_closes_every_socket_with_service_restart() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("lobby", "Ada", "fox").await;
    let (mut bob, _) = server.member("other", "Bob", "owl").await;
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(ada.closed_with().await, close::SERVICE_RESTART);
    assert_eq!(bob.closed_with().await, close::SERVICE_RESTART);
    stopping.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_newcomer_to_a_room_nobody_is_in_gets_its_history() {
    let server = TestServer::start().await;
    let (mut ada, _) = server.member("quiet", "Ada", "fox").await;
    for i in 0..3 {
        let id = format!("h{i}");
        ada.send(&send(&id, "earlier")).await;
        ack(&mut ada, &id).await;
    }
    drop(ada);
    // Wait until the room is empty (and so no longer live).
    eventually(WAIT, "nobody is online in the room", || {
        server_is_empty(&server, "quiet")
    })
    .await;
    let (outcome, cookie) = server.join("quiet", "Bob", "owl").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)));
    let (_bob, history, reset) =
        Client::joined_with_history(server.addr, "quiet", &cookie.unwrap(), None).await;
    assert!(!reset);
    assert_eq!(
        history.len(),
        3,
        "the room's messages, though nobody was in it"
    );
}

async fn server_is_empty(server: &TestServer, room: &str) -> bool {
    common::room_snapshot(server.addr, room).await.online == 0
}

#[tokio::test]
async fn an_idle_member_hears_a_heartbeat_event_every_interval() {
    let server = TestServer::with(chatroom::server::config::Settings {
        ping_interval_secs: Some(1),
        pong_timeout_secs: Some(1),
        ..Default::default()
    })
    .await;
    let (mut ada, _) = server.member("quiet", "Ada", "fox").await;
    // The browser sees no WebSocket pings: without these events it reconnects after `silence_ms`.
    // Three in a row on one socket (`recv` skips the pings, which tungstenite answers).
    for _ in 0..3 {
        assert_eq!(ada.recv().await, ServerFrame::Heartbeat);
    }
}

#[tokio::test]
async fn names_that_only_look_alike_cannot_pass_for_a_member() {
    let server = TestServer::start().await;
    let (_ann, _) = server.member("lobby", "Ann", "fox").await;
    // Fullwidth letters are the same name.
    let (outcome, cookie) = server
        .join("lobby", "\u{FF21}\u{FF4E}\u{FF4E}", "owl")
        .await;
    let (field, message) = refused(outcome);
    assert_eq!(field, JoinField::Name);
    assert!(message.contains("taken"), "{message}");
    assert!(cookie.is_none());
    // A Cyrillic А among Latin letters is refused as such.
    let (outcome, _) = server.join("lobby", "\u{0410}nn", "owl").await;
    let (field, message) = refused(outcome);
    assert_eq!(field, JoinField::Name);
    assert!(message.contains("alphabets that look alike"), "{message}");
    // An all-Cyrillic lookalike is the same name too: Cyrillic А, с, е pass for Latin A, c, e.
    let (_ace, _) = server.member("lobby", "Ace", "fox").await;
    let (outcome, _) = server
        .join("lobby", "\u{0410}\u{0441}\u{0435}", "owl")
        .await;
    let (field, message) = refused(outcome);
    assert_eq!(field, JoinField::Name);
    assert!(message.contains("taken"), "{message}");
    // What a person typed is what others see.
    let (outcome, _) = server.join("lobby", "Анна", "owl").await;
    assert_eq!(
        outcome,
        JoinOutcome::Joined(Member {
            name: "Анна".into(),
            avatar: "owl".into()
        })
    );
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_and_a_bad_one_with_1002_or_1007() {
    use common::raw::{RawClient, CLOSE};
    let server = TestServer::start().await;
    let close_with = |payload: Vec<u8>| async move {
        let (mut raw, status) = RawClient::connect(server.addr, "lobby", None, None, None, None)
            .await
            .unwrap();
        assert_eq!(status, 101);
        raw.send_frame(CLOSE, &payload).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), raw.close_code())
            .await
            .expect("the server answers the close")
    };
    let code = |c: u16, reason: &[u8]| [&c.to_be_bytes()[..], reason].concat();
    assert_eq!(close_with(code(4100, b"bye")).await, Some(4100));
    assert_eq!(close_with(code(1001, b"")).await, Some(1001));
    assert_eq!(close_with(Vec::new()).await, Some(1000), "no code: 1000");
    for bad in [999, 1005, 1006, 2999, 5000] {
        assert_eq!(close_with(code(bad, b"")).await, Some(1002), "{bad}");
    }
    assert_eq!(close_with(code(1000, b"\xff")).await, Some(1007));
}
