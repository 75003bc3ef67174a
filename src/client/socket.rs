//! The browser's live connection to `/ws/<room>` (gloo-net): joins, feeds server frames to the room model, and reconnects with backoff.
//!
//! After a drop it retries with exponential backoff and jitter (first try within 1 s, at most
//! 30 s apart), joins again with its resume point, and re-sends every message still pending,
//! under the same client ids, so that the server confirms each exactly once.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use leptos::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::model::{reconnect_delay_ms, ConnState, RoomModel};
use crate::protocol::{close, ClientFrame, ServerFrame};

/// Controls one room's connection.
pub struct SocketHandle {
    tx: UnboundedSender<ClientFrame>,
    stopped: Arc<AtomicBool>,
}

impl SocketHandle {
    /// Where the composer sends frames.
    pub fn sender(&self) -> UnboundedSender<ClientFrame> {
        self.tx.clone()
    }

    /// Closes the connection for good (leaving the view).
    pub fn close(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.tx.close_channel();
    }
}

fn socket_url(room: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/ws/{room}", location.host().ok()?))
}

/// Opens the connection for `room` and keeps it open until the handle is closed.
pub fn connect(room: String, model: RwSignal<RoomModel>) -> SocketHandle {
    let (tx, rx) = unbounded();
    let stopped = Arc::new(AtomicBool::new(false));
    let handle = SocketHandle {
        tx,
        stopped: stopped.clone(),
    };
    leptos::task::spawn_local(run(room, model, rx, stopped));
    handle
}

/// Why one connection ended.
enum Ended {
    /// Dropped or closed by the server: try again.
    Retry,
    /// The server refused this session: back to the join form.
    Refused,
    /// The view went away.
    Stopped,
}

async fn run(
    room: String,
    model: RwSignal<RoomModel>,
    mut rx: UnboundedReceiver<ClientFrame>,
    stopped: Arc<AtomicBool>,
) {
    let mut attempt: u32 = 0;
    loop {
        if stopped.load(Ordering::Relaxed) {
            return;
        }
        let _ = model.try_update(|m| {
            m.conn = if attempt == 0 {
                ConnState::Connecting
            } else {
                ConnState::Reconnecting
            }
        });
        let ended = match socket_url(&room).and_then(|url| WebSocket::open(&url).ok()) {
            Some(ws) => session(ws, model, &mut rx, &mut attempt).await,
            None => Ended::Retry,
        };
        match ended {
            Ended::Stopped => return,
            Ended::Refused => {
                let _ = model.try_update(|m| m.conn = ConnState::Offline);
                return;
            }
            Ended::Retry => {}
        }
        if stopped.load(Ordering::Relaxed) {
            return;
        }
        attempt += 1;
        let _ = model.try_update(|m| m.conn = ConnState::Reconnecting);
        let delay = reconnect_delay_ms(attempt, js_sys::Math::random());
        gloo_timers::future::TimeoutFuture::new(delay).await;
    }
}

/// Runs one socket from join to close.
async fn session(
    ws: WebSocket,
    model: RwSignal<RoomModel>,
    rx: &mut UnboundedReceiver<ClientFrame>,
    attempt: &mut u32,
) -> Ended {
    let (mut write, mut read) = ws.split();
    let after = model.with_untracked(|m| m.last_id);
    if write
        .send(Message::Text(ClientFrame::Join { after }.encode()))
        .await
        .is_err()
    {
        return Ended::Retry;
    }
    // Frames queued while offline are covered by the pending list, re-sent below.
    while rx.try_recv().is_ok() {}
    let pending = model.with_untracked(|m| m.pending.clone());
    for p in pending {
        let frame = ClientFrame::Send {
            client_id: p.client_id,
            text: p.text,
        };
        if write.send(Message::Text(frame.encode())).await.is_err() {
            return Ended::Retry;
        }
    }
    loop {
        futures::select! {
            incoming = read.next().fuse() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(frame) = ServerFrame::decode(&text) {
                        if matches!(frame, ServerFrame::Welcome { .. }) {
                            *attempt = 0;
                        }
                        if model.try_update(|m| m.apply(frame)).is_none() {
                            return Ended::Stopped;
                        }
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(ev))) => {
                    return if ev.code == close::SESSION_REFUSED { Ended::Refused } else { Ended::Retry };
                }
                Some(Err(_)) | None => return Ended::Retry,
            },
            outgoing = rx.next() => match outgoing {
                Some(frame) => {
                    if write.send(Message::Text(frame.encode())).await.is_err() {
                        return Ended::Retry;
                    }
                }
                None => {
                    let _ = write.close().await;
                    return Ended::Stopped;
                }
            },
        }
    }
}
