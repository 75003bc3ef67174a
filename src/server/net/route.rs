//! The WebSocket routes, `/ws/<room>` and the old protocol's `/`: check origin and limits, upgrade, then run one connection as one task that reads frames into the hub and writes the outbox out.
//!
//! One task per connection reads, writes and keeps the heartbeat (a ping every interval; a
//! connection that sends nothing within the timeout after one is closed). When it ends, the
//! member leaves the room (through [`Membership`]'s `Drop`, so even a panic cannot leave a
//! ghost member behind), what is queued is flushed with a close frame, and the socket is
//! released. Every close path ends in the socket being dropped.

use axum::body::Body;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::protocol::{close, ChatMessage, ClientFrame, ErrorCode, MessageId, ServerFrame};
use crate::rules::{name_key, validate_room};
use crate::server::chat::hub::Hub;
use crate::server::chat::outbox::{outbox, Next, Outbox, OutboxReceiver};
use crate::server::chat::room::{check_post, ConnId, JoinError, OldPeer, Room};
use crate::server::chat::session::{self, Session, SessionId};
use crate::server::http::limits::{LimitError, Permit};
use crate::server::http::proxy;
use crate::server::legacy;
use crate::server::log::sqlite::{Append, StoreError};
use crate::server::net::stream::Stream;
use crate::server::net::wire::{self, Decoder, Event, WireError, Writer};
use crate::server::ops::metrics::{CloseReason, Refusal, Rejection};
use crate::server::state::AppState;

/// Frames taken from the outbox for one write (one system call when the socket takes them).
const WRITE_BATCH: usize = 128;
/// `ServerFrame::Heartbeat` encoded, shared by every connection.
const HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;
/// How long a closing connection may take to flush what it has queued, at least.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// Who a new connection is, as far as its upgrade request tells.
enum Who {
    /// The new protocol: the session in the request's cookie, if any (the `join` frame needs one).
    Member(Option<Session>),
    /// The old protocol: nobody yet (its open frame says who).
    Old(OldPeer),
    /// The Autobahn echo harness: messages come back as sent.
    #[cfg(feature = "autobahn")]
    Echo,
}

/// An upgrade refused: counted, and answered with `status` and `text`.
fn refuse(state: &AppState, why: Refusal, status: StatusCode, text: &str) -> Response {
    state.hub.metrics().refused(why);
    (status, text.to_string()).into_response()
}

/// The accept key and the pending upgrade of a valid WebSocket upgrade request, or the
/// status and reason to refuse it with.
fn handshake(
    req: &mut Request,
) -> Result<(header::HeaderValue, hyper::upgrade::OnUpgrade), (StatusCode, &'static str)> {
    let accept = wire::accept_key(req.headers()).map_err(|why| (StatusCode::BAD_REQUEST, why))?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or((
            StatusCode::UPGRADE_REQUIRED,
            "connection cannot be upgraded",
        ))?;
    Ok((accept, on_upgrade))
}

/// `GET /ws/<room>`: refuses bad rooms, foreign origins, draining servers and connections over
/// the limits; otherwise upgrades.
pub async fn ws_route(
    Path(room): Path<String>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    let headers = req.headers();
    let Ok(room) = validate_room(&room) else {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::NOT_FOUND,
            "no such room",
        );
    };
    if !origin_allowed(headers, &state.config.allowed_origins) {
        return refuse(
            &state,
            Refusal::Origin,
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused",
        );
    }
    let session = session::from_headers(&state.keys, headers, &room);
    let peer = client_of(&state, peer, headers);
    upgrade(state, on_upgrade, accept, room, Who::Member(session), peer)
}

/// A WebSocket upgrade of `/`: an old PHP/Swoole chat client, which joins the configured
/// `legacy_room` and speaks the old protocol (see [`crate::server::legacy`]). Any origin may connect
/// unless `legacy_origins` lists them: these sockets carry no session.
pub async fn legacy_route(state: AppState, mut req: Request) -> Response {
    if state.config.legacy_room.is_empty() {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::NOT_FOUND,
            "the old protocol is off on this server",
        );
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::BAD_REQUEST,
            "no peer address",
        );
    };
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    let headers = req.headers();
    let allowed = state.config.legacy_origins.trim();
    if allowed != "*" && !origin_allowed(headers, allowed) {
        return refuse(
            &state,
            Refusal::Origin,
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused",
        );
    }
    let tls = req
        .extensions()
        .get::<crate::server::http::serve::Transport>()
        .is_some_and(|t| t.tls);
    let https = proxy::is_https(tls, peer.ip(), headers, &state.proxies);
    let peer_info = OldPeer {
        tag: SessionId::random().0.chars().take(11).collect(),
        site: site_of(headers, https).into(),
    };
    let peer = client_of(&state, peer, headers);
    let room = state.config.legacy_room.clone();
    upgrade(state, on_upgrade, accept, room, Who::Old(peer_info), peer)
}

/// An echo socket on any path, for the Autobahn conformance suite: text and binary messages
/// come back as sent, through the chat sockets' decoder, writer and connection loop. Built
/// with the `autobahn` feature only, which no release build has.
#[cfg(feature = "autobahn")]
pub async fn echo_route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    upgrade(state, on_upgrade, accept, "echo".into(), Who::Echo, peer)
}

/// The client's address: the TCP peer's, or behind a trusted proxy the one it forwards.
fn client_of(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    SocketAddr::new(
        proxy::client_addr(peer.ip(), headers, &state.proxies),
        peer.port(),
    )
}

/// `scheme://host` as the client reached this server (`https` over TLS, ours or a trusted
/// proxy's): where it finds the avatar images.
fn site_of(headers: &HeaderMap, https: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Refuses draining servers and connections over the limits; otherwise answers 101 and
/// starts the connection's task.
fn upgrade(
    state: AppState,
    on_upgrade: hyper::upgrade::OnUpgrade,
    accept: header::HeaderValue,
    room: String,
    who: Who,
    peer: SocketAddr,
) -> Response {
    if state.draining.is_cancelled() {
        return refuse(
            &state,
            Refusal::Draining,
            StatusCode::SERVICE_UNAVAILABLE,
            "server is restarting",
        );
    }
    let permit = match state.limits.acquire(peer.ip()) {
        Ok(p) => p,
        Err(e @ LimitError::PerIp) => {
            return refuse(
                &state,
                Refusal::IpLimit,
                StatusCode::TOO_MANY_REQUESTS,
                &e.to_string(),
            )
        }
        Err(e @ LimitError::Total) => {
            return refuse(
                &state,
                Refusal::TotalLimit,
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            )
        }
    };
    let tracker = state.tracker.clone();
    let start = Box::new(Start {
        on_upgrade,
        state,
        room,
        who,
        peer,
        permit,
    });
    tokio::spawn(tracker.track_future(run(start)));
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
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
    /// Until the member has joined (boxed: it is not needed after).
    session: Option<Box<Session>>,
    /// Set for an old-protocol connection.
    old: Option<Box<OldClient>>,
    outbox: Outbox,
    membership: Option<Membership>,
    rate: DefaultDirectRateLimiter,
    /// Frames refused for rate since the sender last paused for [`FLOOD_PAUSE`].
    strikes: u32,
    last_refusal: Option<Instant>,
}

/// An old-protocol connection's own state.
struct OldClient {
    peer: OldPeer,
    /// Messages sent so far: the next one's client id is `<tag>-<sent + 1>`.
    sent: u64,
}

/// Work a text frame asks for that has to wait: a join, which reads the store.
enum Waits {
    Join(Option<u64>),
    /// The old protocol's open frame.
    OpenOld {
        username: String,
        avatar: String,
    },
}

/// A sender that pauses this long after being refused is no longer counted as flooding.
const FLOOD_PAUSE: Duration = Duration::from_secs(1);

fn rate_limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

/// The upgraded socket: its frame decoder and the frames waiting to be written.
struct Socket {
    stream: Stream,
    decoder: Decoder,
    writer: Writer,
    /// A close frame is queued: nothing more may be sent after it.
    closing: bool,
    /// Messages are echoed back, not handled as chat (the Autobahn harness only).
    echo: bool,
}

/// Why reading stopped.
enum ReadEnd {
    /// The client closed its side (or the connection broke).
    Gone,
    Broken(WireError),
}

impl Socket {
    fn new(stream: Stream, max_frame_bytes: usize, echo: bool) -> Self {
        Socket {
            stream,
            decoder: if echo {
                Decoder::keeping_binary(max_frame_bytes)
            } else {
                Decoder::new(max_frame_bytes)
            },
            writer: Writer::default(),
            closing: false,
            echo,
        }
    }

    /// One read of what the socket has, decoded into `events`. The buffer is on the stack,
    /// so an idle connection holds none.
    fn read(&mut self, events: &mut VecDeque<Event>) -> Result<(), ReadEnd> {
        let mut buf = [0u8; 8192];
        match self.stream.try_read(&mut buf) {
            Ok(0) => Err(ReadEnd::Gone),
            Ok(n) => self
                .decoder
                .feed(&buf[..n], events)
                .map_err(ReadEnd::Broken),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => Err(ReadEnd::Gone),
        }
    }

    /// Anything queued or held back by TLS, not yet handed to the socket?
    fn pending(&self) -> bool {
        self.writer.pending() || self.stream.holds_output()
    }

    /// Writes as much as the socket takes now (see [`Writer::flush`]).
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush(&mut self.stream)?;
        self.stream.flush_held()
    }

    /// Queues what the outbox hands over (and what waits behind it); the close code once a
    /// close is queued.
    fn take(&mut self, first: Next, rx: &mut OutboxReceiver) -> Option<u16> {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            match item {
                Next::Frame(f) => self.writer.text(f),
                Next::Ping => self.writer.ping(),
                Next::Close(code, reason) => {
                    self.writer.close(code, &reason);
                    self.closing = true;
                    return Some(code);
                }
                Next::Done => {
                    self.writer.close(1000, "");
                    self.closing = true;
                    return Some(1000);
                }
            }
            taken += 1;
            if taken < WRITE_BATCH {
                next = rx.try_next();
            }
        }
        None
    }

    /// After the connection's work is over: writes what is queued and a close frame, then
    /// half-closes and waits for the client to close too (so that its unread bytes do not
    /// turn our close into a reset). The caller bounds how long this may take.
    async fn finish(&mut self, rx: &mut OutboxReceiver) {
        if rx.urgent() {
            self.writer.discard_unstarted();
        }
        loop {
            while self.pending() {
                if self.stream.writable().await.is_err() || self.flush().is_err() {
                    return;
                }
            }
            if self.closing {
                if !self.stream.is_tls() {
                    break;
                }
                // TLS ends with its close_notify, written like any other output.
                self.stream.close_notify();
                while self.pending() {
                    if self.stream.writable().await.is_err() || self.flush().is_err() {
                        return;
                    }
                }
                break;
            }
            let next = rx.next().await;
            self.take(next, rx);
        }
        self.stream.shutdown_write();
        let mut sink = [0u8; 1024];
        loop {
            if self.stream.readable().await.is_err() {
                return;
            }
            match self.stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// What a connection starts from. Boxed into [`run`] and unpacked there: an `async fn`'s
/// arguments would stay in its task for the connection's whole life, these only until used.
struct Start {
    on_upgrade: hyper::upgrade::OnUpgrade,
    state: AppState,
    room: String,
    who: Who,
    peer: SocketAddr,
    permit: Permit,
}

/// One connection, from the end of the upgrade until its socket is released.
async fn run(start: Box<Start>) {
    // Made in a block of its own: what only the start needs is gone from the task after it.
    let (mut socket, mut conn, tx, mut rx, mut events, first, open, opened, _permit) = {
        let Start {
            on_upgrade,
            state,
            room,
            who,
            peer,
            permit,
        } = {
            // Unboxed in a block of its own, so that the box is freed here, not when `run` ends.
            let start = start;
            *start
        };
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        // Take the socket back for reads and vectored writes: plain TCP, or TLS over it.
        use hyper_util::rt::TokioIo;
        use hyper_util::server::conn::auto::upgrade::downcast;
        let (stream, read_buf) = match downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(parts) => (Stream::Plain(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => match downcast::<TokioIo<TlsStream<TcpStream>>>(upgraded) {
                Ok(parts) => (Stream::Tls(Box::new(parts.io.into_inner())), parts.read_buf),
                Err(_) => {
                    return tracing::error!("upgraded connection is not a TCP socket; dropped")
                }
            },
        };
        #[cfg(feature = "autobahn")]
        let echo = matches!(who, Who::Echo);
        #[cfg(not(feature = "autobahn"))]
        let echo = false;
        let mut socket = Socket::new(stream, state.config.max_frame_bytes, echo);
        // What the client sent right behind its upgrade request: hyper's whole read buffer,
        // decoded now so that it is not kept for the connection's life.
        let mut events = VecDeque::new();
        let first = socket.decoder.feed(&read_buf, &mut events);
        let id = state.hub.next_conn_id();
        let opened = std::time::Instant::now();
        let (session, old) = match who {
            Who::Member(session) => (session.map(Box::new), None),
            // Boxed: it would make every connection's task bigger.
            Who::Old(peer) => (None, Some(Box::new(OldClient { peer, sent: 0 }))),
            #[cfg(feature = "autobahn")]
            Who::Echo => (None, None),
        };
        let open = state.hub.metrics().opened(old.is_some());
        let protocol = if old.is_some() { "old" } else { "current" };
        tracing::info!(conn = id, room = %room, peer = %peer, protocol, "connection opened");
        let config = state.config.clone();
        let (tx, rx) = outbox(config.outgoing_queue_frames, config.outgoing_queue_bytes);
        let conn = Connection {
            id,
            state,
            room,
            session,
            old,
            outbox: tx.clone(),
            membership: None,
            rate: rate_limiter(config.rate_per_sec, config.rate_burst),
            strikes: 0,
            last_refusal: None,
        };
        (socket, conn, tx, rx, events, first, open, opened, permit)
    };
    let ended_by = match first {
        // As in `serve`: the frames before the bad one count.
        Err(e) => match handle(&mut socket, &mut conn, &mut events) {
            Handled::End(reason) => reason,
            _ => conn.broken(e),
        },
        // Awaited where it is made: a `let` first would keep the future twice in this task.
        Ok(()) => match isolated(serve(&mut socket, &mut rx, &mut conn, &mut events)).await {
            Ok(ended) => ended,
            Err(_) => {
                tracing::error!(
                    conn = conn.id,
                    "connection handler panicked; closing this connection only"
                );
                tx.close_now(1011, "internal error");
                CloseReason::Error
            }
        },
    };
    drop(events);
    open.closed(ended_by);
    let id = conn.id;
    let pong_timeout = conn.state.config.pong_timeout_secs;
    // Leave the room first so that no more frames are queued, then flush and close.
    let room = std::mem::take(&mut conn.room);
    drop(conn);
    drop(tx);
    // A consumer cut off for falling behind gets as long to read its backlog, and so the
    // 4008 behind it, as it would have to answer a ping; any other close gets a short grace.
    let grace = match ended_by {
        CloseReason::SlowConsumer => FLUSH_GRACE.max(Duration::from_secs(pong_timeout)),
        _ => FLUSH_GRACE,
    };
    // Boxed: only a closing connection needs this state.
    let _ = Box::pin(tokio::time::timeout(grace, socket.finish(&mut rx))).await;
    tracing::info!(
        conn = id,
        room = %room,
        reason = ended_by.as_str(),
        secs = opened.elapsed().as_secs_f32(),
        "connection closed"
    );
}

/// Runs `fut`, turning a panic inside it into `Err` so that it ends one connection, not the
/// server; whatever `fut` owns (its [`Membership`]) is dropped on the way, so the member leaves.
/// (Not an `async fn`: that would hold `fut` twice, as its argument and inside `catch_unwind`.)
fn isolated<T>(fut: impl Future<Output = T>) -> impl Future<Output = Result<T, ()>> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .map(|r| r.map_err(|_| ()))
}

/// Reads frames and writes the outbox until the client goes away, breaks the protocol,
/// fails the heartbeat, or the server closes the connection. Returns what ended it; a close
/// frame, where one is due, is then queued (in `socket` or the outbox) for `finish`.
/// `events` holds what was decoded before the first read. (Arguments are references: an
/// `async fn` keeps each argument twice, and this one lives as long as its connection.)
async fn serve(
    socket: &mut Socket,
    rx: &mut OutboxReceiver,
    conn: &mut Connection,
    events: &mut VecDeque<Event>,
) -> CloseReason {
    let (interval, timeout) = {
        let c = &conn.state.config;
        (
            Duration::from_secs(c.ping_interval_secs),
            Duration::from_secs(c.pong_timeout_secs),
        )
    };
    let mut next_ping = Instant::now() + interval;
    // Set after a ping while nothing has come back: the connection must answer by then.
    let mut answer_by: Option<Instant> = None;
    // Made once and re-armed, not made anew on every turn of the loop: a new timer or
    // waiter each time would cost more than the frame being written.
    let timer = tokio::time::sleep_until(next_ping);
    tokio::pin!(timer);
    let shutdown = conn.state.shutdown.clone();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        // Events are handled in order, at once, until one has to wait for the store (a join).
        loop {
            match handle(socket, conn, events) {
                Handled::All => break,
                Handled::Wait(work) => conn.wait_for(work).await,
                Handled::End(reason) => return reason,
            }
        }
        // A failed write is a connection the client has reset or abandoned.
        if socket.pending() && socket.flush().is_err() {
            return CloseReason::Client;
        }
        let wake = answer_by.map_or(next_ping, |d| d.min(next_ping));
        if timer.deadline() != wake || timer.is_elapsed() {
            timer.as_mut().reset(wake);
        }
        let writing = socket.pending();
        // Every source is polled on each turn and every ready one handled, so none starves
        // the others. Polled, not awaited: waiting futures would sit in every idle task.
        let turn = std::future::poll_fn(|cx| {
            // Either ends the connection: then nothing more is taken from the outbox.
            if let Poll::Ready(code) = rx.poll_urgent(cx) {
                return Poll::Ready(Turn::Cut(code));
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Turn::Shutdown);
            }
            let ready = Ready {
                readable: socket.stream.poll_read_ready(cx),
                writable: if writing {
                    socket.stream.poll_write_ready(cx)
                } else {
                    Poll::Pending
                },
                next: if writing {
                    Poll::Pending
                } else {
                    rx.poll_next(cx)
                },
                timer: timer.as_mut().poll(cx).is_ready(),
            };
            if ready.any() {
                Poll::Ready(Turn::Ready(ready))
            } else {
                Poll::Pending
            }
        })
        .await;
        let ready = match turn {
            Turn::Cut(code) => {
                socket.writer.discard_unstarted();
                return code.map_or(CloseReason::Error, CloseReason::from_code);
            }
            Turn::Shutdown => {
                // Spread the reconnects of everyone over a while, so the restarted server is not stampeded.
                let spread = conn.state.config.restart_spread_ms.max(1);
                let retry = rand::Rng::gen_range(&mut rand::thread_rng(), 0..spread);
                conn.outbox.close(
                    close::SERVICE_RESTART,
                    &format!("service restart; retry_ms={retry}"),
                );
                return CloseReason::Shutdown;
            }
            Turn::Ready(ready) => ready,
        };
        // What was taken from the outbox goes to the writer first, so that no early return
        // below drops it: `finish` writes it.
        if let Poll::Ready(next) = ready.next {
            if let Some(code) = socket.take(next, rx) {
                return CloseReason::from_code(code);
            }
        }
        if let Poll::Ready(r) = ready.writable {
            if r.is_err() || socket.flush().is_err() {
                return CloseReason::Client;
            }
        }
        if let Poll::Ready(r) = ready.readable {
            if r.is_err() {
                return CloseReason::Client;
            }
            answer_by = None;
            match socket.read(events) {
                Ok(()) => {}
                Err(ReadEnd::Gone) => return CloseReason::Client,
                Err(ReadEnd::Broken(e)) => {
                    // The frames before the bad one count (a join waits no more, though).
                    if let Handled::End(reason) = handle(socket, conn, events) {
                        return reason;
                    }
                    return conn.broken(e);
                }
            }
        }
        if ready.timer {
            let now = Instant::now();
            if answer_by.is_some_and(|d| now >= d) {
                conn.outbox
                    .close_now(close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                return CloseReason::HeartbeatTimeout;
            }
            if now >= next_ping {
                // The event before the ping: it is queued only into an empty outbox, and a
                // ping queued first would always keep it out (the browser, hearing nothing,
                // reconnected every 40 s in a quiet room). Old clients have no heartbeat
                // event; their browsers answer the ping.
                if conn.old.is_none() {
                    conn.outbox.push_volatile(Utf8Bytes::from_static(HEARTBEAT));
                }
                conn.outbox.ping();
                next_ping = now + interval;
                answer_by.get_or_insert(now + timeout);
            }
        }
    }
}

/// How far [`handle`] got.
enum Handled {
    /// Every event is handled.
    All,
    /// The event just handled asks for this, which has to wait; more may follow it.
    Wait(Waits),
    End(CloseReason),
}

/// Handles decoded events in order until one asks for work that has to wait or ends the
/// connection. Once all are handled the buffer is given back: an idle connection holds none.
fn handle(socket: &mut Socket, conn: &mut Connection, events: &mut VecDeque<Event>) -> Handled {
    while let Some(event) = events.pop_front() {
        match event {
            Event::Text(text) if socket.echo => socket.writer.text(text.into()),
            Event::Binary(payload) if socket.echo => socket.writer.binary(payload),
            Event::Text(text) => {
                if conn.allow() {
                    if let Some(work) = conn.on_text(&text) {
                        return Handled::Wait(work);
                    }
                } else if conn.flooding() {
                    conn.outbox.close(close::FLOODING, "too many messages");
                    return Handled::End(CloseReason::RateLimit);
                }
            }
            Event::Binary(_) => conn.reply(ServerFrame::error(
                ErrorCode::BinaryFrame,
                "Binary frames are not supported; send JSON text",
            )),
            Event::Ping(payload) => socket.writer.pong(payload),
            Event::Pong => {}
            Event::Close(code) => {
                // Answered at once, echoing its code; what is still queued is not sent.
                socket.writer.close(code.unwrap_or(1000), "");
                socket.closing = true;
                return Handled::End(CloseReason::Client);
            }
        }
    }
    *events = VecDeque::new();
    Handled::All
}

/// What one turn of [`serve`]'s loop found.
enum Turn {
    /// `close_now` was asked for: its code, unless the request was already taken.
    Cut(Option<u16>),
    Shutdown,
    Ready(Ready),
}

/// The sources one turn of [`serve`]'s loop found ready (at least one).
struct Ready {
    readable: Poll<std::io::Result<()>>,
    writable: Poll<std::io::Result<()>>,
    next: Poll<Next>,
    timer: bool,
}

impl Ready {
    fn any(&self) -> bool {
        self.readable.is_ready() || self.writable.is_ready() || self.next.is_ready() || self.timer
    }
}

impl Connection {
    fn reply(&self, frame: ServerFrame) {
        if let ServerFrame::Error { code, .. } = &frame {
            self.state.hub.metrics().rejected(Rejection::Code(*code));
        }
        // Old clients cannot show errors (nor anything else of this protocol).
        if self.old.is_some() {
            return;
        }
        if self.outbox.push(frame.encode().into()).is_err() {
            self.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
        }
    }

    /// A frame broke the WebSocket protocol: close with its code.
    fn broken(&self, e: WireError) -> CloseReason {
        tracing::debug!(conn = self.id, error = %e, "protocol error");
        let (code, reason) = e.close();
        self.state.hub.metrics().rejected(match code {
            close::TOO_BIG => Rejection::TooBig,
            1007 => Rejection::InvalidUtf8,
            _ => Rejection::Protocol,
        });
        self.outbox.close(code, reason);
        CloseReason::ProtocolError
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

    /// Handles a text frame at once, or returns the work it asks for that has to wait.
    fn on_text(&mut self, text: &str) -> Option<Waits> {
        if self.old.is_some() {
            return self.on_old_text(text);
        }
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                self.reply(ServerFrame::error(e.code(), e.to_string()));
                return None;
            }
        };
        match frame {
            ClientFrame::Join { after } => Some(Waits::Join(after)),
            ClientFrame::Send { client_id, text } => {
                self.send(client_id, text);
                None
            }
        }
    }

    /// Does `work`. Boxed: its state should neither make every idle connection's task bigger
    /// nor cost an allocation per chat message.
    fn wait_for(&mut self, work: Waits) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        match work {
            Waits::Join(after) => Box::pin(self.join(after)),
            Waits::OpenOld { username, avatar } => Box::pin(self.open_old(username, avatar)),
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
        if self.state.config.log_message_text {
            tracing::info!(conn = self.id, room = %self.room, client_id, text, "message");
        }
        let append = Append {
            room: m.room.name().into(),
            conn: self.id,
            session: sid.0.into(),
            client_id: client_id.clone(),
            author,
            text,
            received: std::time::Instant::now(),
        };
        // The confirmation (or error) comes from the hub once the writer is done.
        match self.state.log.append(append) {
            Ok(()) => {
                let metrics = self.state.hub.metrics();
                metrics.messages_received.inc();
                if self.old.is_some() {
                    metrics.legacy_messages_received.inc();
                }
            }
            Err(e) => self.reply(refuse(e.code(), e.to_string(), client_id)),
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
        let store = self.state.log.clone();
        let (stored_last, live) = match self.stored_last().await {
            Ok(last) => last,
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
        // A member joins once per connection; what the session said now lives in the room.
        self.session = None;
        if !live {
            store.room_created(&self.room);
        }
        // History up to `upto` comes from the store; anything later is held by the room.
        let config = &self.state.config;
        let page = config.recent_messages;
        let history = match after {
            // Nothing to read: caught up, or the room has never had a message.
            _ if upto == 0 => Ok(Vec::new()),
            Some(after) if after >= upto => Ok(Vec::new()),
            Some(after) => {
                store
                    .between(&self.room, after, upto, config.max_resume_gap + 1)
                    .await
            }
            None => store.recent(&self.room, upto, page).await,
        };
        // Ids are gapless, so a resume must start right after `after`; it cannot when the gap
        // is too long, or older than what the log keeps (cluster mode trims it).
        let resumable = |gap: &Vec<ChatMessage>| match (after, gap.first()) {
            (Some(a), Some(first)) => first.id == a + 1 && gap.len() <= config.max_resume_gap,
            (Some(a), None) => a >= upto,
            (None, _) => true,
        };
        let (history, reset) = match history {
            Ok(gap) if !resumable(&gap) => match store.recent(&self.room, upto, page).await {
                Ok(r) => (r, true),
                Err(e) => return self.storage_failed(e),
            },
            Ok(h) => (h, false),
            Err(e) => return self.storage_failed(e),
        };
        let after = if reset { None } else { after };
        room.activate(self.id, session.member(), history, after, reset);
    }

    /// The room's newest stored message id, and whether the room is live here: a live room
    /// knows it, only a new one asks the store.
    async fn stored_last(&self) -> Result<(MessageId, bool), StoreError> {
        if let Some(id) = self.state.hub.room(&self.room).and_then(|r| r.known_last()) {
            return Ok((id, true));
        }
        Ok((self.state.log.last_id(&self.room).await?, false))
    }

    /// A text frame of an old-protocol connection. What the old server ignored is ignored
    /// here too: anything unreadable, a message before the open, a second open.
    fn on_old_text(&mut self, text: &str) -> Option<Waits> {
        match legacy::decode(text) {
            legacy::Incoming::Open { username, avatar } if self.membership.is_none() => {
                return Some(Waits::OpenOld { username, avatar });
            }
            legacy::Incoming::Message { data } if self.membership.is_some() => {
                if let Some(old) = &mut self.old {
                    old.sent += 1;
                    let client_id = format!("{}-{}", old.peer.tag, old.sent);
                    self.send(client_id, data);
                }
            }
            _ => self.state.hub.metrics().rejected(Rejection::OldIgnored),
        }
        None
    }

    /// The open frame: joins the room under the name it gives (with a numeric suffix if
    /// that is taken), or closes with 4001 if the name breaks the rules.
    async fn open_old(&mut self, username: String, avatar: String) {
        let Some(peer) = self.old.as_ref().map(|o| o.peer.clone()) else {
            return;
        };
        let member = match legacy::identity(&username, &avatar) {
            Ok(m) => m,
            Err(e) => {
                self.state
                    .hub
                    .metrics()
                    .rejected(Rejection::Code(ErrorCode::SessionInvalid));
                return self.outbox.close(close::SESSION_REFUSED, &e.to_string());
            }
        };
        let (stored_last, live) = match self.stored_last().await {
            Ok(last) => last,
            Err(e) => return self.storage_failed(e),
        };
        let sid = SessionId::random();
        let hold_ms = self.state.config.name_reservation_secs * 1000;
        let log = self.state.log.clone();
        let hub = self.state.hub.clone();
        for n in 1..=legacy::MAX_NAME_SUFFIX {
            let name = match n {
                1 => member.name.clone(),
                n => legacy::with_suffix(&member.name, n),
            };
            let key = name_key(&name);
            // In cluster mode the name must be free on every node.
            match log.hold_name(&self.room, &key, &sid, hold_ms).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return self.storage_failed(e),
            }
            let session = Session {
                sid: sid.clone(),
                room: self.room.clone(),
                name,
                avatar: member.avatar.clone(),
                exp: 0,
            };
            let joined = hub.join_old(
                &self.room,
                self.id,
                &session,
                self.outbox.clone(),
                stored_last,
                peer.clone(),
            );
            match joined {
                Ok(room) => {
                    self.membership = Some(Membership {
                        hub,
                        room,
                        conn: self.id,
                    });
                    if !live {
                        log.room_created(&self.room);
                    }
                    return;
                }
                Err(JoinError::NameTaken) => log.release_name(&self.room, &key, &sid).await,
                Err(e @ JoinError::RoomFull) => {
                    log.release_name(&self.room, &key, &sid).await;
                    return self.outbox.close(close::SESSION_REFUSED, &e.to_string());
                }
            }
        }
        self.outbox
            .close(close::SESSION_REFUSED, &JoinError::NameTaken.to_string());
    }

    fn storage_failed(&self, e: crate::server::log::sqlite::StoreError) {
        tracing::error!(conn = self.id, error = %e, "store read failed while joining");
        self.reply(ServerFrame::error(
            ErrorCode::StorageFailed,
            "Could not read the room's history; try again",
        ));
        self.outbox.close(1011, "storage error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Member;
    use crate::server::chat::outbox::outbox;
    use crate::server::chat::room::RoomLimits;
    use crate::server::chat::session::{SessionId, SessionKeys};

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
    fn the_shared_heartbeat_is_the_encoded_frame() {
        assert_eq!(HEARTBEAT, ServerFrame::Heartbeat.encode());
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
