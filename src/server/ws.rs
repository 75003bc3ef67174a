//! The WebSocket route `/ws/<room>`: upgrades, then runs one connection: a reader that feeds the hub and a writer that drains the outbox.
//!
//! The reader and the writer are tied together: when either ends, the connection ends, its
//! member leaves the room (through [`Membership`]'s `Drop`, so even a panic cannot leave a
//! ghost member behind) and the socket is released.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use super::app::AppState;
use super::hub::Hub;
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

/// `GET /ws/<room>`: refuses bad rooms and draining servers, otherwise upgrades.
pub async fn ws_route(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let Ok(room) = validate_room(&room) else {
        return (StatusCode::NOT_FOUND, "no such room").into_response();
    };
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is restarting").into_response();
    }
    let session = session::from_headers(&state.keys, &headers, &room);
    let max = state.config.max_frame_bytes;
    let tracker = state.tracker.clone();
    ws.max_frame_size(max)
        .max_message_size(max)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| tracker.track_future(run(socket, state, room, session)))
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
}

async fn run(socket: WebSocket, state: AppState, room: String, session: Option<Session>) {
    let id = state.hub.next_conn_id();
    let (sink, stream) = socket.split();
    let (tx, rx) = outbox(state.config.outgoing_queue_frames);
    let shutdown = state.shutdown.clone();
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let mut conn = Connection {
        id,
        state,
        room,
        session,
        outbox: tx.clone(),
        membership: None,
    };
    tracing::debug!(conn = id, room = %conn.room, "connection open");

    let reading = AssertUnwindSafe(read_loop(stream, &mut conn)).catch_unwind();
    let ended_by = tokio::select! {
        r = reading => match r {
            Ok(()) => "client",
            Err(_) => {
                tracing::error!(conn = id, "connection handler panicked; closing this connection only");
                tx.close(1011, "internal error");
                "panic"
            }
        },
        _ = &mut writer => "writer",
        _ = shutdown.cancelled() => {
            tx.close(close::SERVICE_RESTART, "service restart");
            "shutdown"
        }
    };
    // Leave the room first so that no more frames are queued, then let the writer flush.
    let room = conn.room.clone();
    drop(conn);
    drop(tx);
    if !writer.is_finished()
        && tokio::time::timeout(FLUSH_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    tracing::debug!(conn = id, room = %room, ended_by, "connection closed");
}

async fn read_loop(mut stream: SplitStream<WebSocket>, conn: &mut Connection) {
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(text)) => conn.on_text(text.as_str()).await,
            Ok(Message::Binary(_)) => conn.reply(ServerFrame::error(
                ErrorCode::BinaryFrame,
                "Binary frames are not supported; send JSON text",
            )),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) => return,
            Err(err) => {
                tracing::debug!(conn = conn.id, %err, "read error");
                let (code, reason) = close_for(err);
                conn.outbox.close(code, reason);
                return;
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
            Some(after) if after >= upto => Ok((Vec::new(), false)),
            Some(after) => store
                .between(&self.room, after, upto, config.max_resume_gap + 1)
                .await
                .map(|gap| (gap, false)),
            None => store
                .recent(&self.room, upto, page)
                .await
                .map(|r| (r, false)),
        };
        let (history, reset) = match history {
            Ok((gap, _)) if gap.len() > config.max_resume_gap => {
                match store.recent(&self.room, upto, page).await {
                    Ok(r) => (r, true),
                    Err(e) => return self.storage_failed(e),
                }
            }
            Ok(h) => h,
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
        match rx.next().await {
            Next::Frame(frame) => {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
                let mut closing = None;
                for _ in 1..WRITE_BATCH {
                    match rx.try_next() {
                        Some(Next::Frame(frame)) => {
                            if sink.feed(Message::Text(frame)).await.is_err() {
                                return;
                            }
                        }
                        Some(Next::Close(code, reason)) => {
                            closing = Some((code, reason));
                            break;
                        }
                        Some(Next::Done) | None => break,
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                if let Some((code, reason)) = closing {
                    return send_close(&mut sink, code, reason).await;
                }
            }
            Next::Close(code, reason) => return send_close(&mut sink, code, reason).await,
            Next::Done => {
                let _ = sink.close().await;
                return;
            }
        }
    }
}

async fn send_close(sink: &mut SplitSink<WebSocket, Message>, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}
