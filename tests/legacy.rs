//! Old PHP/Swoole chat clients on `/`, beside new clients in the same room: presence, messages both ways, escaping,
//! identity, limits, and the settings that shape it.

mod common;

use chatroom::protocol::{close, ChatMessage, ClientFrame, ServerFrame};
use chatroom::server::config::Settings;
use common::old::OldClient;
use common::{ack, member_of, room_snapshot, send, Client, TestServer};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const QUIET: Duration = Duration::from_millis(300);

/// `ts` as HH:MM, `offset_min` minutes east of UTC.
fn hh_mm(ts: i64, offset_min: i64) -> String {
    let minutes = (ts.div_euclid(60_000) + offset_min).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The next chat message a new client receives, skipping presence frames.
async fn next_message(c: &mut Client) -> ChatMessage {
    loop {
        match c.recv().await {
            ServerFrame::Message(m) => return m,
            ServerFrame::Joined { .. } | ServerFrame::Left { .. } => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The next `joined` a new client receives: the member's name and avatar.
async fn next_joined(c: &mut Client) -> (String, String) {
    match c.recv().await {
        ServerFrame::Joined { member } => (member.name, member.avatar),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test]
async fn old_and_new_clients_share_a_room_each_in_their_own_format() {
    // New members linger after a drop; old ones cannot come back as the same member.
    let server = TestServer::with(Settings {
        presence_grace_ms: Some(10_000),
        ..Settings::default()
    })
    .await;
    let site = format!("http://{}", server.addr);
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;

    // Tom opens with extra fields, as old pages may.
    let mut tom = OldClient::connect(server.addr).await;
    let tom_avatar = "https://img.example/tom.png?size=64&v=2";
    tom.send_json(json!({"token": "simplechat_open", "username": "Tom42", "avatar": tom_avatar, "color": "red"}))
        .await;
    let ada_seen = tom.recv().await;
    assert_eq!(ada_seen["token"], "simplechat_open");
    assert_eq!(ada_seen["action"], "connect");
    assert_eq!(ada_seen["username"], "Ada");
    assert_eq!(ada_seen["avatar"], format!("{site}/avatars/fox.svg"));
    let ada_fd = ada_seen["fd"].as_u64().expect("fd is an integer");
    let (name, avatar) = next_joined(&mut ada).await;
    assert_eq!(name, "Tom42");
    assert_eq!(
        chatroom::avatars::avatar_url(&avatar),
        "/avatars/fox.svg",
        "a foreign image is shown as the default avatar"
    );

    // A second old client: it is told about both, and Tom about it.
    let mut ann = OldClient::opened(server.addr, "Ann", "http://old.example/avatars/owl.svg").await;
    let listed: Vec<(String, u64)> = [ann.recv().await, ann.recv().await]
        .iter()
        .map(|v| {
            assert_eq!(v["action"], "connect");
            (
                v["username"].as_str().unwrap().to_string(),
                v["fd"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed[0], ("Ada".to_string(), ada_fd));
    assert_eq!(listed[1].0, "Tom42");
    let tom_fd = listed[1].1;
    assert_ne!(tom_fd, ada_fd);
    let ann_seen = tom.recv().await;
    assert_eq!(
        (&ann_seen["username"], &ann_seen["action"]),
        (&json!("Ann"), &json!("connect"))
    );
    assert_eq!(
        ann_seen["avatar"],
        format!("{site}/avatars/owl.svg"),
        "one of our own avatars, by its URL, is ours"
    );
    assert_eq!(next_joined(&mut ada).await, ("Ann".into(), "owl".into()));

    // Old → everyone else: the new client as a message, the other old client in the old shape.
    tom.say("hello from the past").await;
    let m = next_message(&mut ada).await;
    assert_eq!(
        (m.name.as_str(), m.text.as_str()),
        ("Tom42", "hello from the past")
    );
    let at_ann = ann.recv().await;
    assert_eq!(
        at_ann,
        json!({"username": "Tom42", "avatar": "https://img.example/tom.png?size=64&amp;v=2",
               "time": hh_mm(m.ts, 0), "data": "hello from the past", "action": "send"})
    );
    tom.quiet_for(QUIET).await; // the sender never gets its own message back

    // New → old clients.
    ada.send(&send("a1", "hi Tom")).await;
    let m = ack(&mut ada, "a1").await;
    for old in [&mut tom, &mut ann] {
        assert_eq!(
            old.recv().await,
            json!({"username": "Ada", "avatar": format!("{site}/avatars/fox.svg"),
                   "time": hh_mm(m.ts, 0), "data": "hi Tom", "action": "send"})
        );
    }

    // Leaving: old → new as `left`, and old → old as `remove` with the fd of its `connect`.
    tom.close().await;
    assert!(
        matches!(ada.recv().await, ServerFrame::Left { member } if member.name == "Tom42"),
        "Tom left at once, without the grace period"
    );
    let gone = ann.recv().await;
    assert_eq!(gone["action"], "remove");
    assert_eq!(gone["fd"], tom_fd);
    for empty in ["username", "avatar", "data"] {
        assert_eq!(gone[empty], "");
    }
    let time = gone["time"].as_str().unwrap();
    assert!(time.len() == 5 && time.as_bytes()[2] == b':', "{time}");

    // The old client's message is in the room's history like any other.
    let texts: Vec<String> = room_snapshot(server.addr, "lobby")
        .await
        .recent
        .messages()
        .into_iter()
        .map(|m| format!("{}: {}", m.name, m.text))
        .collect();
    assert_eq!(texts, ["Tom42: hello from the past", "Ada: hi Tom"]);
}

#[tokio::test]
async fn old_clients_receive_every_text_field_escaped() {
    let server = TestServer::start().await;
    let mut tom = OldClient::opened(server.addr, "Tom", "").await;
    let (mut ada, _) = member_of(server.addr, "lobby", "<b>Ada</b>").await;
    let joined = tom.recv().await;
    assert_eq!(joined["username"], "&lt;b&gt;Ada&lt;/b&gt;");

    let attack = "<img src=x onerror=alert(1)>";
    ada.send(&send("x1", attack)).await;
    let stored = ack(&mut ada, "x1").await;
    assert_eq!(
        stored.text, attack,
        "stored and sent to new clients as typed"
    );
    let got = tom.recv().await;
    assert_eq!(got["data"], "&lt;img src=x onerror=alert(1)&gt;");
    assert_eq!(got["username"], "&lt;b&gt;Ada&lt;/b&gt;");

    // Between old clients too, quotes and ampersands included.
    let mut ann = OldClient::opened(server.addr, "O'Brien & \"Ann\"", "").await;
    assert_eq!(
        tom.recv().await["username"],
        "O&#39;Brien &amp; &quot;Ann&quot;"
    );
    ann.say(r#"<script>alert("x")</script> & 'y'"#).await;
    assert_eq!(
        tom.recv().await["data"],
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
    );
}

#[tokio::test]
async fn an_old_client_cannot_post_or_reopen_as_someone_else() {
    let server = TestServer::start().await;
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let mut tom = OldClient::opened(server.addr, "Tom42", "https://img.example/tom.png").await;
    next_joined(&mut ada).await;
    let mut ann = OldClient::opened(server.addr, "Ann", "").await;
    next_joined(&mut ada).await;
    for _ in 0..2 {
        ann.recv().await; // connects for Ada and Tom
    }

    tom.send_json(
        json!({"token": "simplechat", "username": "Ada", "avatar": "https://evil.example/a.png",
                         "data": "I am Ada", "time": "1:1"}),
    )
    .await;
    let m = next_message(&mut ada).await;
    assert_eq!((m.name.as_str(), m.text.as_str()), ("Tom42", "I am Ada"));
    let at_ann = ann.recv().await;
    assert_eq!(at_ann["username"], "Tom42");
    assert_eq!(at_ann["avatar"], "https://img.example/tom.png");

    // A second open frame changes nothing and announces nothing.
    tom.send_json(json!({"token": "simplechat_open", "username": "Ada", "avatar": ""}))
        .await;
    tom.say("still me").await;
    let m = next_message(&mut ada).await;
    assert_eq!((m.name.as_str(), m.text.as_str()), ("Tom42", "still me"));
    let at_ann = ann.recv().await;
    assert_eq!(
        (&at_ann["action"], &at_ann["username"]),
        (&json!("send"), &json!("Tom42"))
    );
}

#[tokio::test]
async fn taken_names_get_a_numeric_suffix_and_invalid_names_are_refused() {
    let server = TestServer::start().await;
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let _second = OldClient::opened(server.addr, "ada", "").await;
    assert_eq!(next_joined(&mut ada).await.0, "ada (2)");
    let _third = OldClient::opened(server.addr, "Ada", "").await;
    assert_eq!(next_joined(&mut ada).await.0, "Ada (3)");
    let long = "x".repeat(32);
    let _long1 = OldClient::opened(server.addr, &long, "").await;
    assert_eq!(next_joined(&mut ada).await.0, long);
    let _long2 = OldClient::opened(server.addr, &long, "").await;
    assert_eq!(
        next_joined(&mut ada).await.0,
        format!("{} (2)", "x".repeat(28)),
        "shortened to stay within 32 characters"
    );

    // A lookalike of a name online gets a suffix too, shown as typed.
    let _fullwidth = OldClient::opened(server.addr, "\u{FF21}da", "").await;
    assert_eq!(next_joined(&mut ada).await.0, "\u{FF21}da (4)");

    for bad in ["", "   ", "a\u{202E}b", &"y".repeat(33), "\u{0410}da"] {
        let mut c = OldClient::opened(server.addr, bad, "").await;
        assert_eq!(c.closed_with().await, close::SESSION_REFUSED, "{bad:?}");
    }
    ada.quiet_for(QUIET).await;
}

#[tokio::test]
async fn what_old_clients_send_wrong_is_ignored_and_loses_nothing() {
    let server = TestServer::start().await;
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let mut tom = OldClient::connect(server.addr).await;
    tom.say("before the open").await;
    tom.send_text("not json at all").await;
    tom.send_json(json!({"token": "something_else", "data": "x"}))
        .await;
    tom.send_json(json!([1, 2, 3])).await;
    tom.send_raw(Message::binary(vec![1, 2, 3])).await;
    tom.quiet_for(QUIET).await;
    ada.quiet_for(Duration::from_millis(50)).await;

    tom.open("Tom", "").await;
    assert_eq!(next_joined(&mut ada).await.0, "Tom");
    tom.send_json(json!({"token": "simplechat", "data": 42}))
        .await; // not text: ignored
    tom.say("   ").await; // blank: refused as for anyone, silently
    tom.say("after the open").await;
    assert_eq!(next_message(&mut ada).await.text, "after the open");
    assert_eq!(
        tom.recv().await["action"],
        "connect",
        "Ada, listed at the open"
    );
    tom.quiet_for(QUIET).await;
}

#[tokio::test]
async fn times_are_in_the_configured_zone_and_the_room_is_configurable() {
    let server = TestServer::with(Settings {
        time_zone: Some("Asia/Kolkata".into()),
        legacy_room: Some("old-timers".into()),
        ..Settings::default()
    })
    .await;
    let (mut ada, _) = member_of(server.addr, "old-timers", "Ada").await;
    let mut tom = OldClient::opened(server.addr, "Tom", "").await;
    assert_eq!(tom.recv().await["username"], "Ada");
    ada.send(&send("t1", "what time is it?")).await;
    let m = ack(&mut ada, "t1").await;
    assert_eq!(tom.recv().await["time"], hh_mm(m.ts, 5 * 60 + 30));
}

#[tokio::test]
async fn the_root_page_is_still_the_app_and_the_old_protocol_can_be_turned_off() {
    let server = TestServer::with(Settings {
        legacy_room: Some(String::new()),
        ..Settings::default()
    })
    .await;
    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    assert_eq!(
        OldClient::connect_from(server.addr, None).await.err(),
        Some(404)
    );
}

#[tokio::test]
async fn old_clients_are_held_to_the_same_limits() {
    let server = TestServer::with(Settings {
        rate_per_sec: Some(1),
        rate_burst: Some(2),
        flood_limit: Some(5),
        max_connections_per_ip: Some(2),
        legacy_origins: Some("https://old.example".into()),
        ..Settings::default()
    })
    .await;
    assert_eq!(
        OldClient::connect_from(server.addr, Some("https://evil.example"))
            .await
            .err(),
        Some(403),
        "an origin not listed in legacy_origins"
    );
    let mut tom = OldClient::connect_from(server.addr, Some("https://old.example"))
        .await
        .expect("a listed origin");
    let _other = OldClient::connect(server.addr).await;
    assert_eq!(
        OldClient::connect_from(server.addr, None).await.err(),
        Some(429),
        "the per-IP limit counts old clients too"
    );
    tom.open("Tom", "").await;
    for i in 0..20 {
        tom.say(&format!("flood {i}")).await;
    }
    assert_eq!(tom.closed_with().await, close::FLOODING);
    let stored = room_snapshot(server.addr, "lobby")
        .await
        .recent
        .messages()
        .len();
    assert!(stored <= 3, "only the burst was stored: {stored}");
}

#[tokio::test]
async fn json_shapes_match_the_old_server() {
    // The whole frames, parsed: exactly the fields the old pages read, no more.
    let server = TestServer::start().await;
    let mut tom = OldClient::opened(server.addr, "Tom", "https://a.example/t.png").await;
    let mut ann = OldClient::opened(server.addr, "Ann", "").await;
    let tom_sees_ann = tom.recv().await;
    let fd = tom_sees_ann["fd"].clone();
    assert!(fd.is_u64());
    assert_eq!(
        tom_sees_ann,
        json!({"token": "simplechat_open", "username": "Ann",
               "avatar": format!("http://{}/avatars/fox.svg", server.addr), "fd": fd, "action": "connect"})
    );
    let ann_sees_tom = ann.recv().await;
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&ann_sees_tom),
        ["action", "avatar", "fd", "token", "username"]
    );
    tom.say("hi").await;
    assert_eq!(
        keys(&ann.recv().await),
        ["action", "avatar", "data", "time", "username"]
    );
    drop(ann);
    let removed = tom.recv().await;
    assert_eq!(
        keys(&removed),
        ["action", "avatar", "data", "fd", "time", "username"]
    );
    assert_eq!(removed["fd"], fd);

    // A new member's leave reaches old clients as a `remove` with the fd of its `connect`.
    let (ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let ada_fd = tom.next_action("connect").await["fd"].clone();
    drop(ada);
    assert_eq!(tom.next_action("remove").await["fd"], ada_fd);
}

#[tokio::test]
async fn old_clients_see_edits_as_new_messages_and_replies_with_their_quote_and_nothing_else() {
    let server = TestServer::start().await;
    let (mut ada, _) = member_of(server.addr, "lobby", "Ada").await;
    let mut tom = OldClient::opened(server.addr, "Tom42", "").await;
    // In the room once it is told who is there.
    assert_eq!(tom.next_action("connect").await["username"], "Ada");
    ada.send(&send("a1", "<b>helo</b>")).await;
    let m = ack(&mut ada, "a1").await;
    assert_eq!(
        tom.next_action("send").await["data"],
        "&lt;b&gt;helo&lt;/b&gt;"
    );

    let frames = [
        ClientFrame::Typing,
        ClientFrame::React {
            client_id: "r1".into(),
            id: m.id,
            emoji: "👍".into(),
            on: true,
        },
        ClientFrame::Edit {
            client_id: "e1".into(),
            id: m.id,
            text: "<i>hello</i>".into(),
        },
        ClientFrame::Send {
            client_id: "a2".into(),
            text: "see \"above\"".into(),
            reply_to: Some(m.id),
        },
        ClientFrame::Delete {
            client_id: "d1".into(),
            id: m.id,
        },
        send("a3", "last"),
    ];
    for f in &frames {
        ada.send(f).await;
    }
    // Typing, the reaction and the deletion are not sent; the edit and the reply are, escaped.
    let got: Vec<String> = [tom.recv().await, tom.recv().await, tom.recv().await]
        .iter()
        .map(|v| {
            assert_eq!(
                (v["action"].as_str(), v["username"].as_str()),
                (Some("send"), Some("Ada"))
            );
            v["data"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        got,
        [
            "(edited) &lt;i&gt;hello&lt;/i&gt;",
            "[reply to Ada: &quot;&lt;i&gt;hello&lt;/i&gt;&quot;] see &quot;above&quot;",
            "last"
        ]
    );
}
