//! Test harness: a real server on 127.0.0.1:0, HTTP for server functions, tokio-tungstenite sockets.
#![allow(dead_code)]

pub mod nodes;
pub mod old;
pub mod process;
pub mod raw;
pub mod redis_server;

use chatroom::protocol::pages::JoinOutcome;
use chatroom::protocol::{ClientFrame, ServerFrame};
use chatroom::server::config::{Config, Settings};
use chatroom::server::{app, AppState};
use futures::{SinkExt, StreamExt};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub addr: SocketAddr,
    /// The plain-HTTP redirect to https, when started with one.
    pub redirect_addr: Option<SocketAddr>,
    /// Holds the database folder for as long as the server lives.
    pub dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(Settings::default()).await
    }

    /// A server on `settings`, with its database in a fresh temporary folder unless one is set.
    pub async fn with(settings: Settings) -> TestServer {
        Self::with_tls(settings, None, false).await
    }

    /// Like [`TestServer::with`], serving https with `tls` if given, and with a plain-HTTP
    /// redirect listener if `redirect`.
    pub async fn with_tls(
        settings: Settings,
        tls: Option<std::sync::Arc<chatroom::server::http::tls::Tls>>,
        redirect: bool,
    ) -> TestServer {
        let (listener, state, dir) = prepare(settings).await;
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let redirect = match redirect {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let redirect_addr = redirect.as_ref().map(|l| l.local_addr().unwrap());
        let listeners = app::Listeners {
            public: listener,
            admin: None,
            redirect,
            tls,
        };
        let task = tokio::spawn(app::serve_listeners(listeners, state, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            redirect_addr,
            dir,
            stop: Some(tx),
            task,
        }
    }

    /// A server on `settings` that serves the router `route` makes of its state instead of
    /// the app's (the Autobahn echo socket).
    pub async fn with_router(
        settings: Settings,
        route: impl FnOnce(AppState) -> axum::Router,
    ) -> TestServer {
        let (listener, state, dir) = prepare(settings).await;
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let app = route(state).into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        TestServer {
            addr,
            redirect_addr: None,
            dir,
            stop: Some(tx),
            task: tokio::spawn(serve.into_future()),
        }
    }

    /// Starts the drain, as SIGTERM does, and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task ends")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Calls the `join_room` server function; returns its outcome and the session cookie (`name=value`).
    pub async fn join(
        &self,
        room: &str,
        name: &str,
        avatar: &str,
    ) -> (JoinOutcome, Option<String>) {
        join_http(self.addr, room, name, avatar).await
    }

    /// Joins through the server function, opens a socket with the cookie and joins the room on it.
    pub async fn member(&self, room: &str, name: &str, avatar: &str) -> (Client, String) {
        let (outcome, cookie) = self.join(room, name, avatar).await;
        assert!(matches!(outcome, JoinOutcome::Joined(_)), "{outcome:?}");
        let cookie = cookie.expect("session cookie");
        let c = Client::joined(self.addr, room, &cookie, None).await;
        (c, cookie)
    }
}

/// The state of a test server on `settings`, and a listener on a free port of 127.0.0.1. The
/// database is in a fresh temporary folder (returned) unless `settings` names one, and the
/// limits that tests of other things would trip over are lifted unless set.
async fn prepare(
    mut settings: Settings,
) -> (tokio::net::TcpListener, AppState, Option<tempfile::TempDir>) {
    let dir = if settings.data_path.is_none() {
        let dir = tempfile::tempdir().unwrap();
        settings.data_path = Some(dir.path().join("chat.db"));
        Some(dir)
    } else {
        None
    };
    if settings.presence_grace_ms.is_none() {
        settings.presence_grace_ms = Some(0);
    }
    // Tests that send fast are not about the rate limit; those that are set it. Likewise
    // the per-address limits (every test client comes from 127.0.0.1) and /metrics.
    settings.rate_per_sec.get_or_insert(1_000_000);
    settings.rate_burst.get_or_insert(1_000_000);
    settings.joins_per_minute.get_or_insert(1_000_000);
    settings.join_burst.get_or_insert(1_000_000);
    settings.max_reservations_per_ip.get_or_insert(1_000_000);
    settings.new_rooms_per_hour.get_or_insert(1_000_000);
    settings.metrics_public.get_or_insert(true);
    let config = Config::resolve(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let leptos = leptos::prelude::LeptosOptions::builder()
        .output_name("chatroom")
        .site_addr(listener.local_addr().unwrap())
        .build();
    let state = AppState::new(config, leptos).await.expect("store opens");
    (listener, state, dir)
}

/// Calls the `join_room` server function of the server at `addr`; returns its outcome and the session cookie (`name=value`).
pub async fn join_http(
    addr: SocketAddr,
    room: &str,
    name: &str,
    avatar: &str,
) -> (JoinOutcome, Option<String>) {
    join_http_with(addr, room, name, avatar, None).await
}

/// Like [`join_http`], from a browser that holds session cookie `cookie` (`name=value`).
pub async fn join_http_with(
    addr: SocketAddr,
    room: &str,
    name: &str,
    avatar: &str,
    cookie: Option<&str>,
) -> (JoinOutcome, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/api/join"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("room", room), ("name", name), ("avatar", avatar)]));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "join answered {}",
        resp.status()
    );
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let outcome: JoinOutcome = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    (outcome, cookie)
}

/// Calls `join_room` from source address `from` (127.0.0.x); returns the status and the body.
pub async fn join_from(
    addr: SocketAddr,
    from: std::net::IpAddr,
    room: &str,
    name: &str,
) -> (u16, String) {
    let resp = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap()
        .post(format!("http://{addr}/api/join"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("room", room), ("name", name), ("avatar", "fox")]))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Calls the server function `/api/<endpoint>` of the server at `addr` with form fields; returns the body.
pub async fn call(addr: SocketAddr, endpoint: &str, fields: &[(&str, &str)]) -> String {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/{endpoint}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{endpoint}: {}", resp.status());
    resp.text().await.unwrap()
}

/// The first-paint snapshot of `room` (members, online count, recent messages) from `addr`.
pub async fn room_snapshot(
    addr: SocketAddr,
    room: &str,
) -> chatroom::protocol::pages::RoomSnapshot {
    serde_json::from_str(&call(addr, "room", &[("room", room)]).await).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct Client {
    pub ws: Socket,
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str, cookie: Option<&str>) -> Client {
        let mut req = format!("ws://{addr}/ws/{room}")
            .into_client_request()
            .unwrap();
        if let Some(c) = cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Client { ws }
    }

    /// Connects with `cookie` and joins with resume point `after`; returns once welcomed.
    pub async fn joined(addr: SocketAddr, room: &str, cookie: &str, after: Option<u64>) -> Client {
        Self::joined_with_history(addr, room, cookie, after).await.0
    }

    /// Like [`Client::joined`], also returning the welcome's history and reset flag.
    pub async fn joined_with_history(
        addr: SocketAddr,
        room: &str,
        cookie: &str,
        after: Option<u64>,
    ) -> (Client, Vec<chatroom::protocol::ChatMessage>, bool) {
        let mut c = Client::connect(addr, room, Some(cookie)).await;
        c.send(&ClientFrame::Join { after }).await;
        match c.recv().await {
            ServerFrame::Welcome { recent, reset, .. } => (c, recent, reset),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.ws.send(Message::text(frame.encode())).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// The next server frame (pings and pongs skipped).
    pub async fn recv(&mut self) -> ServerFrame {
        ServerFrame::decode(&next_text(&mut self.ws).await).expect("valid server frame")
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        close_code(&mut self.ws).await
    }

    /// Asserts that nothing arrives within `d`.
    pub async fn quiet_for(&mut self, d: Duration) {
        assert_quiet(&mut self.ws, d).await
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next text frame on `ws` (pings and pongs skipped).
pub async fn next_text(ws: &mut Socket) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("no socket error");
        match msg {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Waits for the server's close frame on `ws` and returns its code.
pub async fn close_code(ws: &mut Socket) -> u16 {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
            Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Asserts that no text frame arrives on `ws` within `d`.
pub async fn assert_quiet(ws: &mut Socket, d: Duration) {
    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(d, ws.next()).await {
        panic!("unexpected frame {t}");
    }
}

/// How often the polls below look again.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok`, and returns that value. Panics if `within` passes
/// first, naming `what` and showing the last `Err` (what was seen instead).
pub async fn poll_until<T, E, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("not within {within:?}: {what}; last seen: {seen:?}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// Polls `check` until it is true; panics naming `what` if `within` passes first.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    poll_until(within, what, || {
        let fut = check();
        async move { fut.await.then_some(()).ok_or("false") }
    })
    .await
}

/// Polls `value` until it equals `want`; panics naming `what` and the last value otherwise.
pub async fn becomes<T, F, Fut>(within: Duration, what: &str, want: T, mut value: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let want = &want;
    poll_until(within, what, || {
        let fut = value();
        async move {
            let got = fut.await;
            if got == *want {
                Ok(())
            } else {
                Err(got)
            }
        }
    })
    .await
}

/// Polls until a fresh join of `room` with `cookie` shows exactly the history `ids` (within 10 s).
pub async fn history_becomes(addr: SocketAddr, room: &str, cookie: &str, ids: &[u64]) {
    let what = format!("the history of {room} becomes {ids:?}");
    becomes(Duration::from_secs(10), &what, ids.to_vec(), || async {
        let (_c, recent, _) = Client::joined_with_history(addr, room, cookie, None).await;
        recent.iter().map(|m| m.id).collect::<Vec<u64>>()
    })
    .await
}

/// The value of the unlabelled sample `name` on the `/metrics` of the server at `addr`.
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The status `GET url` answers with (0 if there is no answer).
pub async fn status_of(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Joins `room` on the server at `addr` through the real HTTP API and socket; returns the client and its cookie.
pub async fn member_of(addr: SocketAddr, room: &str, name: &str) -> (Client, String) {
    let (outcome, cookie) = join_http(addr, room, name, "fox").await;
    assert!(matches!(outcome, JoinOutcome::Joined(_)), "{outcome:?}");
    let cookie = cookie.expect("cookie");
    (Client::joined(addr, room, &cookie, None).await, cookie)
}

/// A `send` frame.
pub fn send(client_id: &str, text: &str) -> ClientFrame {
    ClientFrame::Send {
        client_id: client_id.into(),
        text: text.into(),
        reply_to: None,
    }
}

/// Waits for the confirmation of `client_id`, skipping other frames.
pub async fn ack(c: &mut Client, client_id: &str) -> chatroom::protocol::ChatMessage {
    loop {
        match c.recv().await {
            ServerFrame::Message(m) if m.client_id.as_deref() == Some(client_id) => return m,
            ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => continue,
        }
    }
}

/// The next change `c` receives (messages, presence and typing skipped; errors fail).
pub async fn next_change(c: &mut Client) -> chatroom::protocol::Change {
    loop {
        match c.recv().await {
            ServerFrame::Change(ch) => return ch,
            ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
}

/// The next error `c` receives, with its client id.
pub async fn next_error(c: &mut Client) -> (chatroom::protocol::ErrorCode, Option<String>) {
    loop {
        if let ServerFrame::Error {
            code, client_id, ..
        } = c.recv().await
        {
            return (code, client_id);
        }
    }
}
