//! One connection's life as one task: it reads frames into the chat, writes its outbox out, and keeps the heartbeat.
//!
//! A ping goes out every interval; a connection that sends nothing within the timeout after
//! one is closed. When the task ends, the member leaves the room (through `Membership`'s
//! `Drop`, so even a panic cannot leave a ghost member behind), what is queued is flushed
//! with a close frame, and the socket is released. Every close path ends in the socket
//! being dropped.

use futures::FutureExt;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::protocol::{close, ErrorCode};
use crate::server::chat::codec::{Codec, Event as ChatEvent};
use crate::server::chat::outbox::{outbox, Next, OutboxReceiver};
use crate::server::chat::session::Session;
use crate::server::http::limits::Permit;
use crate::server::net::client::{Connection, Flooding, Waits};
use crate::server::net::socket::{ReadEnd, Socket};
use crate::server::net::stream::Stream;
use crate::server::net::wire::Event;
use crate::server::ops::metrics::CloseReason;
use crate::server::state::AppState;
use std::sync::Arc;

/// How long a closing connection may take to flush what it has queued, at least.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// What a connection starts from. Boxed into [`run`] and unpacked there: an `async fn`'s
/// arguments would stay in its task for the connection's whole life, these only until used.
pub(crate) struct Start {
    pub on_upgrade: hyper::upgrade::OnUpgrade,
    pub state: AppState,
    pub room: String,
    /// The session of the upgrade request, if it had one (boxed: not needed once joined).
    pub session: Option<Box<Session>>,
    /// Its wire format; `None` for the Autobahn echo harness.
    pub codec: Option<Arc<dyn Codec>>,
    pub peer: SocketAddr,
    pub permit: Permit,
}

/// One connection, from the end of the upgrade until its socket is released.
pub(crate) async fn run(start: Box<Start>) {
    // Made in a block of its own: what only the start needs is gone from the task after it.
    let (mut socket, mut conn, tx, mut rx, mut events, first, open, opened, _permit) = {
        // Unboxed in a block of its own, so that the box is freed here, not when `run` ends.
        let start: Start = {
            let start = start;
            *start
        };
        let (state, room, codec, peer) = (start.state, start.room, start.codec, start.peer);
        let upgraded = match start.on_upgrade.await {
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
        let echo = codec.is_none();
        let codec = codec.unwrap_or_else(crate::server::net::codec::codec);
        let mut socket = Socket::new(stream, state.config.max_frame_bytes, echo);
        // What the client sent right behind its upgrade request: hyper's whole read buffer,
        // decoded now so that it is not kept for the connection's life.
        let mut events = VecDeque::new();
        let first = socket.decoder.feed(&read_buf, &mut events);
        let id = state.hub.next_conn_id();
        let opened = std::time::Instant::now();
        let open = state.hub.metrics().opened(codec.legacy());
        let protocol = if codec.legacy() { "old" } else { "current" };
        tracing::info!(conn = id, room = %room, peer = %peer, protocol, "connection opened");
        let config = &state.config;
        let (tx, rx) = outbox(config.outgoing_queue_frames, config.outgoing_queue_bytes);
        let conn = Connection::new(
            id,
            state,
            room.into(),
            start.session,
            codec,
            tx.clone(),
            peer.ip(),
        );
        (
            socket,
            conn,
            tx,
            rx,
            events,
            first,
            open,
            opened,
            start.permit,
        )
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
                let retry = rand::Rng::random_range(&mut rand::rng(), 0..spread);
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
                if let Some(frame) = conn.codec.heartbeat() {
                    conn.outbox.push_volatile(frame);
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
            Event::Text(text) => match conn.on_text(&text) {
                Ok(Some(work)) => return Handled::Wait(work),
                Ok(None) => {}
                Err(Flooding) => {
                    conn.outbox.close(close::FLOODING, "too many messages");
                    return Handled::End(CloseReason::RateLimit);
                }
            },
            Event::Binary(_) => conn.reply(ChatEvent::Error {
                code: ErrorCode::BinaryFrame,
                message: "Binary frames are not supported; send JSON text",
                client_id: None,
            }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Member, ServerFrame};
    use crate::server::chat::hub::Hub;
    use crate::server::chat::join::Membership;
    use crate::server::chat::room::Line;
    use crate::server::chat::room::RoomLimits;
    use crate::server::chat::session::SessionKeys;
    use crate::server::ids::SessionId;
    use std::sync::Arc;

    fn current() -> Arc<dyn crate::server::chat::codec::Codec> {
        crate::server::net::codec::codec()
    }

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
        let (room, _) = hub
            .join("lobby", 1, &bob, Line::new(bob_tx, current()), 0)
            .unwrap();
        room.activate(
            1,
            bob.member(),
            crate::server::chat::room::History::default(),
            false,
        );

        let doomed = {
            let hub = hub.clone();
            async move {
                let ada = keys.issue(SessionId::random(), "lobby", &member("Ada"));
                let (tx, _rx) = outbox(16, 1 << 20);
                let (room, _) = hub
                    .join("lobby", 2, &ada, Line::new(tx, current()), 0)
                    .unwrap();
                let _membership = Membership::new(hub.clone(), room, 2);
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
}
