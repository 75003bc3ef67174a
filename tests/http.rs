//! Plain HTTP under abuse: half-sent requests and idle connections are closed in time, one address cannot hold more than its share of connections, oversized or malformed server-function calls get 413 or 400 with a message, and forwarded addresses count only from trusted proxies.

mod common;

use chatroom::protocol::pages::JoinOutcome;
use chatroom::server::config::Settings;
use common::{eventually, join_http, poll_until, TestServer};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from `source`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or `within` passes); returns what came and
/// whether it closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&all).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&all).into_owned(), true),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends a keep-alive `GET path` on `s` and reads its whole response (`Content-Length` bodies only).
async fn get_on(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&all).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
        let n = tokio::time::timeout(common::WAIT, s.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before the response was complete");
        all.extend_from_slice(&buf[..n]);
    }
}

fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn half_sent_requests_are_closed_within_the_header_timeout_while_pages_still_load() {
    let server = TestServer::with(Settings {
        http_header_timeout_secs: Some(1),
        max_http_connections_per_ip: Some(10_000),
        ..Settings::default()
    })
    .await;
    // 300 clients that send half a request line, and 50 that send nothing at all.
    let mut slow = Vec::new();
    for i in 0..350 {
        let mut s = connect_from("127.0.0.1", server.addr).await;
        if i < 300 {
            s.write_all(b"GET / HT").await.unwrap();
        }
        slow.push(s);
    }
    let started = Instant::now();
    // Meanwhile pages load, from the same address too.
    let page = client_from("127.0.0.1")
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let health = client_from("127.0.0.2")
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Every slow one is closed within the timeout (and some slack), none answered with a page.
    for (i, s) in slow.iter_mut().enumerate() {
        let (text, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(
            closed,
            "slow connection {i} still open after {:?}",
            started.elapsed()
        );
        assert!(!text.contains("200 OK"), "{text}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::with(Settings {
        http_idle_timeout_secs: Some(1),
        ..Settings::default()
    })
    .await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    // Two requests on one connection: it is kept alive between them.
    assert!(get_on(&mut s, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get_on(&mut s, "/healthz").await.ends_with("ok"));
    let idle_from = Instant::now();
    let (rest, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "still open after {:?}", idle_from.elapsed());
    assert_eq!(rest, "", "closed without another response");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle"
    );
}

#[tokio::test]
async fn the_per_address_cap_refuses_extra_connections_while_other_addresses_load_pages() {
    let server = TestServer::with(Settings {
        max_http_connections_per_ip: Some(4),
        ..Settings::default()
    })
    .await;
    // Four kept-alive connections from one address, each having been served.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from("127.0.0.1", server.addr).await;
        assert!(get_on(&mut s, "/healthz").await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // A fifth from that address is answered 429 and closed at once.
    let mut extra = connect_from("127.0.0.1", server.addr).await;
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(2)).await;
    assert!(closed, "the extra connection was not closed");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 429"),
        "{text}"
    );
    // Another address still gets pages.
    let page = client_from("127.0.0.2")
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // One of the four goes: there is room again.
    drop(held.pop());
    eventually(common::WAIT, "room after a connection closed", || async {
        let mut s = connect_from("127.0.0.1", server.addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (text, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
        text.starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn oversized_and_malformed_server_function_calls_get_413_and_400_with_a_message() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(server.url("/api/join"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let big = post(vec![b'a'; 50 << 20]).await.unwrap();
    assert_eq!(big.status(), 413);
    let text = big.text().await.unwrap();
    assert!(text.contains("too large"), "{text}");
    assert!(!text.contains("length limit"), "no internal text: {text}");

    let malformed = post(b"room=lobby&avatar=owl".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let text = malformed.text().await.unwrap();
    assert!(
        text.contains("Malformed request") && text.contains("name"),
        "{text}"
    );
    let garbage = post(vec![0xff, 0xfe, b'%', b'%']).await.unwrap();
    assert_eq!(garbage.status(), 400);

    // The server is still up and joins work.
    let (outcome, cookie) = join_http(server.addr, "lobby", "Ada", "owl").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)), "{outcome:?}");
    assert!(cookie.is_some());
}

/// Sends a WebSocket upgrade for `/ws/<room>` from `source` with `X-Forwarded-For: forwarded`;
/// returns the HTTP status and the open connection.
async fn upgrade_via(
    addr: SocketAddr,
    source: &str,
    forwarded: &str,
    room: &str,
) -> (u16, TcpStream) {
    let mut s = connect_from(source, addr).await;
    let req = format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Forwarded-For: {forwarded}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(common::WAIT, s.read(&mut byte))
            .await
            .expect("an answer in time")
            .unwrap();
        if n == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, s)
}

#[tokio::test]
async fn forwarded_addresses_and_schemes_count_only_from_trusted_proxies() {
    let server = TestServer::with(Settings {
        max_connections_per_ip: Some(2),
        trust_proxy: Some("127.0.0.1".into()),
        ..Settings::default()
    })
    .await;
    let mut open = Vec::new();
    // Through the trusted proxy: the cap counts each forwarded client apart.
    for _ in 0..2 {
        let (status, s) = upgrade_via(server.addr, "127.0.0.1", "203.0.113.5", "r").await;
        assert_eq!(status, 101);
        open.push(s);
    }
    let (status, _) = upgrade_via(server.addr, "127.0.0.1", "203.0.113.5", "r").await;
    assert_eq!(status, 429, "a third socket of the same client");
    // A spoofed entry left of the proxy's own is not believed.
    let (status, _) = upgrade_via(server.addr, "127.0.0.1", "1.2.3.4, 203.0.113.5", "r").await;
    assert_eq!(status, 429);
    let (status, s) = upgrade_via(server.addr, "127.0.0.1", "203.0.113.6", "r").await;
    assert_eq!(status, 101, "another client behind the same proxy");
    open.push(s);
    // From an untrusted peer the header is ignored: the peer's own address is capped.
    for _ in 0..2 {
        let (status, s) = upgrade_via(server.addr, "127.0.0.2", "198.51.100.1", "r").await;
        assert_eq!(status, 101);
        open.push(s);
    }
    let (status, _) = upgrade_via(server.addr, "127.0.0.2", "198.51.100.2", "r").await;
    assert_eq!(
        status, 429,
        "a new forwarded address does not help an untrusted peer"
    );

    // The session cookie is Secure when the trusted proxy says the client used https.
    let join = |source: &str, proto: &str| {
        client_from(source)
            .post(server.url("/api/join"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", proto)
            .body(format!(
                "room=lobby&name=N{}&avatar=owl",
                source.replace('.', "")
            ))
            .send()
    };
    let cookie = |r: &reqwest::Response| {
        r.headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let trusted = join("127.0.0.1", "https").await.unwrap();
    assert!(
        cookie(&trusted).contains("; Secure"),
        "{}",
        cookie(&trusted)
    );
    let untrusted = join("127.0.0.2", "https").await.unwrap();
    assert!(!cookie(&untrusted).is_empty());
    assert!(
        !cookie(&untrusted).contains("Secure"),
        "{}",
        cookie(&untrusted)
    );
}

#[tokio::test]
async fn three_thousand_half_requests_from_one_address_cannot_lock_out_others() {
    use common::process::ServerProcess;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("chat.db"),
        &["--http-header-timeout-secs", "2"],
    );
    let health = client_from("127.0.0.2")
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let baseline = server.open_fds();
    let mut slow = Vec::new();
    for _ in 0..3000 {
        let mut s = connect_from("127.0.0.1", server.addr).await;
        let _ = s.write_all(b"GET / HT").await;
        slow.push(s);
    }
    // The server holds at most its per-address share of them (128 by default) ...
    let held = server.open_fds().saturating_sub(baseline);
    assert!(held <= 128 + 16, "{held} descriptors held for one address");
    // ... and another address is served meanwhile.
    let page = client_from("127.0.0.2")
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Within the header timeout (and some slack) every held one is closed.
    let what = "the held descriptors are closed";
    poll_until(Duration::from_secs(6), what, || async {
        let held = server.open_fds().saturating_sub(baseline);
        if held <= 2 {
            Ok(())
        } else {
            Err(format!("{held} descriptors still open"))
        }
    })
    .await;
}

#[tokio::test]
async fn refused_server_function_calls_are_logged_with_the_status_the_client_got() {
    use common::process::ServerProcess;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("chat.db"), &[]);
    let answer = reqwest::Client::new()
        .post(format!("http://{}/api/join", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Anyone may send these: they are the client's fault, not errors of the server's.
    let line = poll_until(
        Duration::from_secs(5),
        "a request line with status=400",
        || {
            let lines = server.log_lines();
            let line = lines.iter().find(|l| l.contains("status=400")).cloned();
            async move { line.ok_or(lines) }
        },
    )
    .await;
    assert!(!line.contains("ERROR"), "{line}");
    let lines = server.log_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("status=500") || l.contains("ERROR")),
        "{lines:#?}"
    );
}
