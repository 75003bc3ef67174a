//! The WebSocket route `/ws/<room>`: checks origin and limits, upgrades, then runs one connection: a reader that feeds the hub and a writer that drains the outbox.
//!
//! The reader and the writer are tied together: when either ends, the connection ends, its
//! member leaves the room (through [`Membership`]'s `Drop`, so even a panic cannot leave a
//! ghost member behind) and the socket is released. The reader also keeps the heartbeat: a
//! ping every interval, and a connection that sends nothing within the timeout after one is
//! closed. Every close path ends in the socket being dropped.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::app::AppState;
use super::hub::Hub;
use super::limits::{LimitError, Permit};
use super::outbox::{outbox, Next, Outbox, OutboxReceiver};
use super::room::{check_post, ConnId, Room};
use super::session::{self, Session};
use super::store::Append;
use crate::protocol::{close, ClientFrame, ErrorCode, ServerFrame};
use crate::rules::validate_room;

/// Frames written to a socket in one batch (one flush, usually one syscall).
const WRITE_BATCH: usize = 64;
/// How long a closing connection may take to flush what it has queued.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// `GET /ws/<room>`: refuses bad rooms, foreign origins, draining servers and connections over
/// the limits; otherwise upgrades.
pub async fn ws_route(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Ok(room) = validate_room(&room) else {
        return (StatusCode::NOT_FOUND, "no such room").into_response();
    };
    if !origin_allowed(&headers, &state.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is restarting").into_response();
    }
    let permit = match state.limits.acquire(peer.ip()) {
        Ok(p) => p,
        Err(e @ LimitError::PerIp) => {
            return (StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
        Err(e @ LimitError::Total) => {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    };
    let session = session::from_headers(&state.keys, &headers, &room);
    let max = state.config.max_frame_bytes;
    let tracker = state.tracker.clone();
    ws.max_frame_size(max)
        .max_message_size(max)
        // Small buffers: an idle connection keeps them (tungstenite never shrinks them).
        .read_buffer_size(2 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(state.config.outgoing_queue_bytes.max(64 * 1024))
        .on_upgrade(move |socket| tracker.track_future(run(socket, state, room, session, permit)))
}

/// Is the page that opens this socket allowed to? Browsers always send `Origin` on a
/// WebSocket upgrade; clients that send none (scripts, tests) are not pages, so no cookie of
/// a user's can be riding along.
pub fn origin_allowed(headers: &HeaderMap, allowed: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if !allowed.trim().is_empty() {
        return allowed
            .split(',')
            .map(|o| o.trim().trim_end_matches('/'))
            .any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')));
    }
    // Same origin: the Origin's host:port is the Host the request was sent to.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Membership of one connection in a room; leaving happens on drop, whatever ended the connection.
struct Membership {
    hub: Arc<Hub>,
    room: Arc<Room>,
    conn: ConnId,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, self.conn);
    }
}

/// One connection's reader state.
struct Connection {
    id: ConnId,
    state: AppState,
    room: String,
    session: Option<Session>,
    outbox: Outbox,
    membership: Option<Membership>,
    rate: DefaultDirectRateLimiter,
    /// Frames refused for rate since the sender last paused for [`FLOOD_PAUSE`].
    strikes: u32,
    last_refusal: Option<Instant>,
}

/// A sender that pauses this long after being refused is no longer counted as flooding.
const FLOOD_PAUSE: Duration = Duration::from_secs(1);

fn rate_limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

async fn run(
    socket: WebSocket,
    state: AppState,
    room: String,
    session: Option<Session>,
    _permit: Permit,
) {
    let id = state.hub.next_conn_id();
    let opened = std::time::Instant::now();
    let (sink, stream) = socket.split();
    let config = state.config.clone();
    let (tx, rx) = outbox(config.outgoing_queue_frames, config.outgoing_queue_bytes);
    let shutdown = state.shutdown.clone();
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let mut conn = Connection {
        id,
        state,
        room,
        session,
        outbox: tx.clone(),
        membership: None,
        rate: rate_limiter(config.rate_per_sec, config.rate_burst),
        strikes: 0,
        last_refusal: None,
    };
    let heartbeat = Heartbeat {
        interval: Duration::from_secs(config.ping_interval_secs),
        timeout: Duration::from_secs(config.pong_timeout_secs),
    };

    let reading = isolated(read_loop(stream, &mut conn, heartbeat));
    let ended_by = tokio::select! {
        r = reading => match r {
            Ok(ended) => ended,
            Err(_) => {
                tracing::error!(conn = id, "connection handler panicked; closing this connection only");
                tx.close_now(1011, "internal error");
                "panic"
            }
        },
        _ = &mut writer => "writer",
        _ = tx.closed_now() => "closed by server",
        _ = shutdown.cancelled() => {
            // Spread the reconnects of everyone over a while, so the restarted server is not stampeded.
            let spread = config.restart_spread_ms.max(1);
            let retry = rand::Rng::gen_range(&mut rand::thread_rng(), 0..spread);
            tx.close(close::SERVICE_RESTART, &format!("service restart; retry_ms={retry}"));
            "shutdown"
        }
    };
    // Leave the room first so that no more frames are queued, then let the writer flush.
    let room = std::mem::take(&mut conn.room);
    drop(conn);
    drop(tx);
    if !writer.is_finished()
        && tokio::time::timeout(FLUSH_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    tracing::info!(
        conn = id,
        room = %room,
        ended_by,
        secs = opened.elapsed().as_secs_f32(),
        "connection closed"
    );
}

/// Runs `fut`, turning a panic inside it into `Err` so that it ends one connection, not the
/// server; whatever `fut` owns (its [`Membership`]) is dropped on the way, so the member leaves.
async fn isolated<T>(fut: impl std::future::Future<Output = T>) -> Result<T, ()> {
    AssertUnwindSafe(fut).catch_unwind().await.map_err(|_| ())
}

#[derive(Clone, Copy)]
struct Heartbeat {
    interval: Duration,
    timeout: Duration,
}

/// Reads frames until the client goes away, breaks the protocol, or fails the heartbeat.
/// Returns what ended it.
async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    conn: &mut Connection,
    hb: Heartbeat,
) -> &'static str {
    let heartbeat = ServerFrame::Heartbeat.encode();
    let mut next_ping = Instant::now() + hb.interval;
    // Set after a ping while nothing has come back: the connection must answer by then.
    let mut answer_by: Option<Instant> = None;
    loop {
        let wake = answer_by.map_or(next_ping, |d| d.min(next_ping));
        tokio::select! {
            msg = stream.next() => {
                answer_by = None;
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if conn.allow() {
                            conn.on_text(text.as_str()).await;
                        } else if conn.flooding() {
                            conn.outbox.close(close::FLOODING, "too many messages");
                            return "flooding";
                        }
                    }
                    Some(Ok(Message::Binary(_))) => conn.reply(ServerFrame::error(
                        ErrorCode::BinaryFrame,
                        "Binary frames are not supported; send JSON text",
                    )),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => return "client",
                    Some(Err(err)) => {
                        tracing::debug!(conn = conn.id, %err, "read error");
                        let (code, reason) = close_for(err);
                        conn.outbox.close(code, reason);
                        return "protocol error";
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if answer_by.is_some_and(|d| now >= d) {
                    conn.outbox.close_now(close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                    return "heartbeat timeout";
                }
                if now >= next_ping {
                    conn.outbox.ping();
                    conn.outbox.push_volatile(heartbeat.clone().into());
                    next_ping = now + hb.interval;
                    answer_by.get_or_insert(now + hb.timeout);
                }
            }
        }
    }
}

/// The close code that answers a read error (axum wraps tungstenite's error type).
fn close_for(err: axum::Error) -> (u16, &'static str) {
    let inner = err.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => (close::TOO_BIG, "frame too big"),
        Some(tungstenite::Error::Utf8(_)) => (1007, "invalid UTF-8"),
        _ => (1002, "protocol error"),
    }
}

impl Connection {
    fn reply(&self, frame: ServerFrame) {
        if self.outbox.push(frame.encode().into()).is_err() {
            self.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
        }
    }

    /// Takes a token for one more frame; counts a refusal when there is none.
    fn allow(&mut self) -> bool {
        if self.rate.check().is_ok() {
            return true;
        }
        let now = Instant::now();
        if self.last_refusal.is_some_and(|t| now - t >= FLOOD_PAUSE) {
            self.strikes = 0;
        }
        self.last_refusal = Some(now);
        self.strikes += 1;
        false
    }

    /// After a refusal: still only fast, or a flood? Fast gets told to slow down.
    fn flooding(&self) -> bool {
        if self.strikes >= self.state.config.flood_limit {
            return true;
        }
        let per_sec = self.state.config.rate_per_sec;
        self.reply(ServerFrame::error(
            ErrorCode::RateLimited,
            format!("Slow down: at most {per_sec} messages a second"),
        ));
        false
    }

    async fn on_text(&mut self, text: &str) {
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => return self.reply(ServerFrame::error(e.code(), e.to_string())),
        };
        match frame {
            ClientFrame::Join { after } => self.join(after).await,
            ClientFrame::Send { client_id, text } => self.send(client_id, text),
        }
    }

    fn send(&mut self, client_id: String, text: String) {
        let refuse = |code: ErrorCode, message: String, client_id: String| ServerFrame::Error {
            code,
            message,
            client_id: Some(client_id),
        };
        let Some(m) = &self.membership else {
            return self.reply(ServerFrame::error(
                ErrorCode::NotJoined,
                "Join the room before sending",
            ));
        };
        let checked = check_post(&client_id, &text, self.state.config.max_message_chars)
            .and_then(|()| m.room.author(self.id));
        let (author, sid) = match checked {
            Ok(a) => a,
            Err(e) => return self.reply(refuse(e.code(), e.to_string(), client_id)),
        };
        let append = Append {
            room: m.room.name().into(),
            conn: self.id,
            session: sid.0.into(),
            client_id: client_id.clone(),
            author,
            text,
        };
        // The confirmation (or error) comes from the hub once the writer is done.
        if let Err(e) = self.state.appender.append(append) {
            self.reply(refuse(e.code(), e.to_string(), client_id));
        }
    }

    async fn join(&mut self, after: Option<u64>) {
        if self.membership.is_some() {
            return self.reply(ServerFrame::error(
                ErrorCode::AlreadyJoined,
                "Already joined on this connection",
            ));
        }
        let Some(session) = self.session.clone() else {
            self.reply(ServerFrame::error(
                ErrorCode::SessionInvalid,
                "No valid session for this room: join again",
            ));
            return self.outbox.close(close::SESSION_REFUSED, "no session");
        };
        let store = self.state.store.clone();
        let stored_last = match store.last_id(&self.room).await {
            Ok(id) => id,
            Err(e) => return self.storage_failed(e),
        };
        let hub = self.state.hub.clone();
        let (room, upto) = match hub.join(
            &self.room,
            self.id,
            &session,
            self.outbox.clone(),
            stored_last,
        ) {
            Ok(joined) => joined,
            Err(e) => {
                self.reply(ServerFrame::error(e.code(), e.to_string()));
                return self.outbox.close(close::SESSION_REFUSED, "cannot join");
            }
        };
        self.membership = Some(Membership {
            hub,
            room: room.clone(),
            conn: self.id,
        });
        // History up to `upto` comes from the store; anything later is held by the room.
        let config = &self.state.config;
        let page = config.recent_messages;
        let history = match after {
            Some(after) if after >= upto => Ok(Vec::new()),
            Some(after) => {
                store
                    .between(&self.room, after, upto, config.max_resume_gap + 1)
                    .await
            }
            None => store.recent(&self.room, upto, page).await,
        };
        let (history, reset) = match history {
            Ok(gap) if gap.len() > config.max_resume_gap => {
                match store.recent(&self.room, upto, page).await {
                    Ok(r) => (r, true),
                    Err(e) => return self.storage_failed(e),
                }
            }
            Ok(h) => (h, false),
            Err(e) => return self.storage_failed(e),
        };
        let after = if reset { None } else { after };
        room.activate(self.id, session.member(), history, after, reset);
    }

    fn storage_failed(&self, e: super::store::StoreError) {
        tracing::error!(conn = self.id, error = %e, "history read failed");
        self.reply(ServerFrame::error(
            ErrorCode::StorageFailed,
            "Could not read the room's history; try again",
        ));
        self.outbox.close(1011, "storage error");
    }
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut rx: OutboxReceiver) {
    loop {
        let first = rx.next().await;
        // Write what is waiting behind it too, then flush once.
        let mut item = Some(first);
        let mut written = 0;
        while let Some(next) = item.take() {
            match next {
                Next::Frame(frame) => {
                    if sink.feed(Message::Text(frame)).await.is_err() {
                        return;
                    }
                }
                Next::Ping => {
                    if sink.feed(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Next::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
                Next::Done => {
                    let _ = sink.close().await;
                    return;
                }
            }
            written += 1;
            if written < WRITE_BATCH {
                item = rx.try_next();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Member;
    use crate::server::outbox::outbox;
    use crate::server::room::RoomLimits;
    use crate::server::session::{SessionId, SessionKeys};

    #[tokio::test]
    async fn a_panicking_connection_ends_alone_and_its_member_leaves() {
        let hub = Arc::new(Hub::new(
            RoomLimits::default(),
            Duration::from_secs(60),
            Duration::ZERO,
        ));
        let keys = SessionKeys::new("k", 60);
        let member = |name: &str| Member {
            name: name.into(),
            avatar: "fox".into(),
        };
        let bob = keys.issue(SessionId::random(), "lobby", &member("Bob"));
        let (bob_tx, mut bob_rx) = outbox(16, 1 << 20);
        let (room, _) = hub.join("lobby", 1, &bob, bob_tx, 0).unwrap();
        room.activate(1, bob.member(), vec![], None, false);

        let doomed = {
            let hub = hub.clone();
            async move {
                let ada = keys.issue(SessionId::random(), "lobby", &member("Ada"));
                let (tx, _rx) = outbox(16, 1 << 20);
                let (room, _) = hub.join("lobby", 2, &ada, tx, 0).unwrap();
                let _membership = Membership {
                    hub: hub.clone(),
                    room,
                    conn: 2,
                };
                panic!("a bug in one handler");
            }
        };
        assert!(isolated(doomed).await.is_err());
        let names: Vec<String> = hub.members("lobby").0.into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["Bob"], "Ada left; Bob and the room go on");
        let mut frames = Vec::new();
        while let Some(Next::Frame(f)) = bob_rx.try_next() {
            frames.push(ServerFrame::decode(f.as_str()).unwrap());
        }
        assert!(
            matches!(frames.last(), Some(ServerFrame::Left { member }) if member.name == "Ada")
        );
    }

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_may_open_sockets() {
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            ""
        ));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "127.0.0.1:3000"),
            ""
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "127.0.0.1:3000"),
            ""
        ));
        assert!(
            origin_allowed(&headers(None, "127.0.0.1:3000"), ""),
            "not a page"
        );
        let list = "https://chat.example.com, https://other.example";
        assert!(origin_allowed(
            &headers(Some("https://other.example"), "internal:3000"),
            list
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "internal:3000"),
            list
        ));
    }
}
