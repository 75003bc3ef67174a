//! Per-address abuse limits over real HTTP: each refuses clearly, and members already in the room chat on.

mod common;

use chatroom::server::config::Settings;
use common::{ack, join_from, send, TestServer};
use std::net::IpAddr;

const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

fn joined(answer: &(u16, String)) -> bool {
    answer.0 == 200 && answer.1.contains("Joined")
}

/// A member already in `room` still chats.
async fn regulars_unaffected(server: &TestServer, room: &str) {
    let (mut ada, _) = server.member(room, "Regular", "owl").await;
    ada.send(&send("r1", "still here")).await;
    assert_eq!(ack(&mut ada, "r1").await.text, "still here");
}

#[tokio::test]
async fn too_many_joins_from_one_address_are_refused_with_429() {
    let server = TestServer::with(Settings {
        joins_per_minute: Some(1),
        join_burst: Some(3),
        ..Default::default()
    })
    .await;
    for i in 0..3 {
        assert!(joined(
            &join_from(server.addr, TWO, "lobby", &format!("Bot{i}")).await
        ));
    }
    let (status, body) = join_from(server.addr, TWO, "lobby", "Bot3").await;
    assert_eq!(status, 429);
    assert!(body.contains("Too many joins from your address"), "{body}");
    // Another address is not held back.
    assert!(joined(&join_from(server.addr, ONE, "lobby", "Ann").await));
}

#[tokio::test]
async fn one_address_cannot_squat_more_names_than_its_share() {
    let server = TestServer::with(Settings {
        max_reservations_per_ip: Some(2),
        ..Default::default()
    })
    .await;
    assert!(joined(
        &join_from(server.addr, TWO, "lobby", "Squat1").await
    ));
    assert!(joined(
        &join_from(server.addr, TWO, "lobby", "Squat2").await
    ));
    let (status, body) = join_from(server.addr, TWO, "lobby", "Squat3").await;
    assert_eq!(status, 429);
    assert!(body.contains("holds too many names"), "{body}");
    assert!(joined(&join_from(server.addr, ONE, "lobby", "Ann").await));
}

#[tokio::test]
async fn one_address_makes_only_so_many_new_rooms() {
    let server = TestServer::with(Settings {
        new_rooms_per_hour: Some(2),
        ..Default::default()
    })
    .await;
    regulars_unaffected(&server, "lobby").await;
    assert!(joined(&join_from(server.addr, TWO, "spam-1", "Bot").await));
    assert!(joined(&join_from(server.addr, TWO, "spam-2", "Bot").await));
    let (status, body) = join_from(server.addr, TWO, "spam-3", "Bot").await;
    assert_eq!(status, 429);
    assert!(body.contains("too many new rooms"), "{body}");
    // Joining a room that exists is not making one.
    assert!(joined(&join_from(server.addr, TWO, "lobby", "Bot").await));
    assert!(joined(&join_from(server.addr, ONE, "fresh", "Ann").await));
    regulars_unaffected(&server, "lobby").await;
}

#[tokio::test]
async fn a_server_full_of_rooms_refuses_new_ones_but_not_joins_to_old_ones() {
    let server = TestServer::with(Settings {
        max_rooms: Some(2),
        ..Default::default()
    })
    .await;
    // Two rooms with a history.
    for room in ["one", "two"] {
        let (mut c, _) = server.member(room, "Ann", "fox").await;
        c.send(&send("h", "hello")).await;
        ack(&mut c, "h").await;
    }
    let (status, body) = join_from(server.addr, TWO, "three", "Bob").await;
    assert_eq!(status, 503);
    assert!(body.contains("as many rooms as it keeps"), "{body}");
    assert!(joined(&join_from(server.addr, TWO, "two", "Bob").await));
    regulars_unaffected(&server, "one").await;
}
