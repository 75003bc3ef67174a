//! The browser's live connection to a room (gloo-net), reconnecting with backoff.
//!
//! It joins `/ws/<room>` and feeds the server's frames to the room model; a heartbeat only
//! resets the silence timer and never reaches the model.
//!
//! After a drop it retries with exponential backoff and jitter (first try within 1 s, at most
//! 30 s apart; at once when the browser comes back online), joins again with its resume point
//! (the last log id seen), and once the welcome has replayed what it missed, re-sends every
//! message and change still pending under the same client ids, so that each is stored once.
//! `typing` frames go to the model's typing list with the time they came. A kick (4010) or a
//! ban (4011) ends the connection for good, with the moderator's reason for the page to show.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use leptos::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::live_room::LiveRoom;
use crate::model::{reconnect_delay_ms, ConnState, Parts};
use crate::protocol::{close, ClientFrame, ServerFrame};
use crate::standing::Removed;

/// Network changes the browser reports.
enum Wake {
    Offline,
    Online,
}

/// Controls one room's connection.
pub struct SocketHandle {
    tx: UnboundedSender<ClientFrame>,
    stopped: Arc<AtomicBool>,
    listeners: Arc<Mutex<Vec<WindowListenerHandle>>>,
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
        if let Ok(mut l) = self.listeners.lock() {
            for handle in l.drain(..) {
                handle.remove();
            }
        }
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
pub fn connect(room: String, model: LiveRoom) -> SocketHandle {
    let (tx, rx) = unbounded();
    let (wake_tx, wake_rx) = unbounded();
    let stopped = Arc::new(AtomicBool::new(false));
    let listeners = vec![
        {
            let wake = wake_tx.clone();
            window_event_listener_untyped("offline", move |_| {
                let _ = wake.unbounded_send(Wake::Offline);
            })
        },
        window_event_listener_untyped("online", move |_| {
            let _ = wake_tx.unbounded_send(Wake::Online);
        }),
    ];
    leptos::task::spawn_local(run(room, model, rx, wake_rx, stopped.clone()));
    SocketHandle {
        tx,
        stopped,
        listeners: Arc::new(Mutex::new(listeners)),
    }
}

/// Why one connection ended.
enum Ended {
    /// Dropped or closed by the server: try again.
    Retry,
    /// The server is restarting and asked for this delay (ms) before reconnecting.
    RetryAfter(u32),
    /// The server refused this session: back to the join form.
    Refused,
    /// A moderator kicked or banned this member: stay offline and say why.
    Removed(Removed),
    /// The view went away.
    Stopped,
}

async fn run(
    room: String,
    model: LiveRoom,
    mut rx: UnboundedReceiver<ClientFrame>,
    mut wake: UnboundedReceiver<Wake>,
    stopped: Arc<AtomicBool>,
) {
    let mut attempt: u32 = 0;
    loop {
        if stopped.load(Ordering::Relaxed) {
            return;
        }
        let state = if attempt == 0 {
            ConnState::Connecting
        } else {
            ConnState::Reconnecting
        };
        let _ = model.change(|m| m.set_conn(state));
        let ended = match socket_url(&room).and_then(|url| WebSocket::open(&url).ok()) {
            Some(ws) => session(ws, model, &mut rx, &mut wake, &mut attempt).await,
            None => Ended::Retry,
        };
        match ended {
            Ended::Stopped => return,
            Ended::Refused => {
                let _ = model.change(|m| m.set_conn(ConnState::Offline));
                return;
            }
            Ended::Removed(removed) => {
                let _ = model.change(|m| {
                    m.standing.removed = Some(removed);
                    m.set_conn(ConnState::Offline) | Parts::STANDING
                });
                return;
            }
            Ended::Retry | Ended::RetryAfter(_) => {}
        }
        if stopped.load(Ordering::Relaxed) {
            return;
        }
        attempt += 1;
        let _ = model.change(|m| m.set_conn(ConnState::Reconnecting));
        let delay = match ended {
            Ended::RetryAfter(ms) => ms,
            _ => reconnect_delay_ms(attempt, js_sys::Math::random()),
        };
        let mut timer = gloo_timers::future::TimeoutFuture::new(delay).fuse();
        // Wait out the delay, unless the browser says it is back online.
        loop {
            futures::select! {
                _ = timer => break,
                w = wake.next() => match w {
                    Some(Wake::Online) => break,
                    Some(Wake::Offline) => continue,
                    None => return,
                },
            }
        }
    }
}

async fn send(
    write: &mut futures::stream::SplitSink<WebSocket, Message>,
    frame: &ClientFrame,
) -> bool {
    write.send(Message::Text(frame.encode())).await.is_ok()
}

/// Runs one socket from join to close.
async fn session(
    ws: WebSocket,
    model: LiveRoom,
    rx: &mut UnboundedReceiver<ClientFrame>,
    wake: &mut UnboundedReceiver<Wake>,
    attempt: &mut u32,
) -> Ended {
    let (mut write, mut read) = ws.split();
    let Some(after) = model.try_with_untracked(|m| m.last_id) else {
        return Ended::Stopped;
    };
    if !send(&mut write, &ClientFrame::Join { after }).await {
        return Ended::Retry;
    }
    // Until the welcome, sends wait in `rx`; pending ones are re-sent after it anyway.
    let mut welcomed = false;
    let mut last_heard = js_sys::Date::now();
    loop {
        // A server that says nothing for this long (not even a heartbeat) is gone.
        let Some(silence) = model.try_with_untracked(|m| m.silence_ms as f64) else {
            return Ended::Stopped;
        };
        let left = (silence - (js_sys::Date::now() - last_heard)).max(0.0) as u32;
        let mut silent = gloo_timers::future::TimeoutFuture::new(left).fuse();
        futures::select! {
            _ = silent => return Ended::Retry,
            incoming = read.next().fuse() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = js_sys::Date::now();
                    let Ok(frame) = ServerFrame::decode(&text) else { continue };
                    // A heartbeat only proves the server is there: the views have nothing to redraw.
                    if matches!(frame, ServerFrame::Heartbeat) {
                        continue;
                    }
                    if let ServerFrame::Typing { name } = &frame {
                        let now = js_sys::Date::now();
                        if model.change(|m| m.heard_typing(name, now)).is_none() {
                            return Ended::Stopped;
                        }
                        continue;
                    }
                    let welcome = matches!(frame, ServerFrame::Welcome { .. });
                    if model.change(|m| m.apply(frame)).is_none() {
                        return Ended::Stopped;
                    }
                    if welcome {
                        *attempt = 0;
                        welcomed = true;
                        // Drop queued sends: what is still pending after the replay goes now.
                        while rx.try_recv().is_ok() {}
                        let Some((pending, changes)) = model
                            .try_with_untracked(|m| (m.pending.clone(), m.pending_changes.clone()))
                        else {
                            return Ended::Stopped;
                        };
                        let sends = pending.into_iter().map(|p| ClientFrame::Send {
                            client_id: p.client_id,
                            text: p.text,
                            reply_to: p.reply_to,
                        });
                        // A claim link's token goes once, after the welcome.
                        let mut claim = None;
                        model.change(|m| {
                            if let Some(token) = m.standing.claim.take() {
                                let client_id = super::new_client_id();
                                m.standing.note_sent(client_id.clone());
                                claim = Some(ClientFrame::Claim { client_id, token });
                            }
                            Parts::NONE
                        });
                        if claim.is_some() {
                            super::claim::forget_in_url();
                        }
                        for frame in sends.chain(changes.into_iter().map(|c| c.frame)).chain(claim) {
                            if !send(&mut write, &frame).await {
                                return Ended::Retry;
                            }
                        }
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(ev))) => {
                    return match ev.code {
                        close::SESSION_REFUSED => Ended::Refused,
                        close::KICKED | close::BANNED => Ended::Removed(Removed {
                            banned: ev.code == close::BANNED,
                            reason: ev.reason,
                        }),
                        close::SERVICE_RESTART => Ended::RetryAfter(
                            crate::protocol::restart_delay_ms(&ev.reason).unwrap_or(1000),
                        ),
                        _ => Ended::Retry,
                    };
                }
                Some(Err(_)) | None => return Ended::Retry,
            },
            outgoing = rx.next() => match outgoing {
                Some(frame) if welcomed => {
                    if !send(&mut write, &frame).await {
                        return Ended::Retry;
                    }
                }
                // Before the welcome: it stays pending and is sent after it.
                Some(_) => {}
                None => {
                    let _ = write.close().await;
                    return Ended::Stopped;
                }
            },
            w = wake.next() => match w {
                Some(Wake::Offline) => return Ended::Retry,
                Some(Wake::Online) => {}
                None => return Ended::Stopped,
            },
        }
    }
}
