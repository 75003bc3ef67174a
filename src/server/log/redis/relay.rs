//! The relay: hands this node's rooms every entry of the shared log, in order, exactly once, and other nodes' typing.
//!
//! Nodes deliver only what the relay hands them, the sender's own node included: its
//! confirmation is its copy. Pub/sub may drop messages (a reconnect, a slow subscriber). The
//! relay knows each room's last delivered id, so a message further ahead first makes it read
//! the missed ones from the stream; after a reconnect it reads every live room's stream past
//! that id.

use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::server::log::presence::LiveRooms;
use crate::server::log::redis::append::Receipts;
use crate::server::log::redis::stream::{
    entry_of, read, stream_id, Walk, CHANNELS, TYPING_CHANNELS,
};
use crate::server::log::types::{Delivery, Entry};

/// Pause between attempts to reach Redis again.
const RETRY: Duration = Duration::from_millis(500);

/// What the relay task works with.
pub(super) struct Relay {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    pub receipts: Arc<Receipts>,
    /// Set while subscribed, for the readiness check.
    pub up: Arc<AtomicBool>,
    pub delivery: Arc<dyn Delivery>,
    pub rooms: Arc<dyn LiveRooms>,
    /// This node's id: its own typing comes back on the channel and is skipped.
    pub node: String,
}

impl Relay {
    /// Subscribes to every room's channel and delivers, in id order and once each, what this
    /// node's rooms have not had yet; reads missed messages from the streams, and reads up
    /// the rooms named on `catch_up`. Reconnects forever.
    pub(super) async fn run(self, mut catch_up: mpsc::UnboundedReceiver<String>) {
        use futures::StreamExt;
        let mut failures = 0u32;
        loop {
            let subscribed = match self.client.get_async_pubsub().await {
                Ok(mut p) => match p.psubscribe(CHANNELS).await {
                    Ok(()) => p.psubscribe(TYPING_CHANNELS).await.map(|()| p),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let pubsub = match subscribed {
                Ok(p) => p,
                Err(e) => {
                    self.up.store(false, Ordering::Relaxed);
                    // Once per outage, not twice a second.
                    if failures == 0 {
                        tracing::warn!(error = %e, "cannot subscribe to Redis; retrying");
                    }
                    failures += 1;
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            failures = 0;
            self.up.store(true, Ordering::Relaxed);
            tracing::info!("relaying messages from Redis");
            // Whatever was published while this node was not subscribed.
            for room in self.rooms.room_names() {
                self.read_up(&room, None).await;
            }
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break };
                        let channel = msg.get_channel_name();
                        if let Some(room) = channel.strip_prefix("chat:typing:") {
                            self.typing(room, msg.get_payload_bytes());
                            continue;
                        }
                        let room = channel.trim_start_matches("chat:msg:").to_string();
                        let entry = serde_json::from_slice::<Vec<String>>(msg.get_payload_bytes())
                            .ok()
                            .and_then(|r| entry_of(&r));
                        match entry {
                            Some(e) => {
                                self.delivery.heard(&room, &e);
                                self.read_up(&room, Some(e)).await
                            }
                            None => tracing::warn!(%room, "unreadable entry on Redis"),
                        }
                    }
                    Some(room) = catch_up.recv() => self.read_up(&room, None).await,
                }
            }
            self.up.store(false, Ordering::Relaxed);
            tracing::warn!("lost the Redis subscription; reconnecting");
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Hands another node's typing (`<node>\n<name>`) to `room`.
    fn typing(&self, room: &str, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        if let Some((node, name)) = text.split_once('\n') {
            if node != self.node {
                self.delivery.deliver_typing(room, name);
            }
        }
    }

    /// Delivers to `room` (if it lives here) the entries after its last delivered one: read
    /// from the stream when `next` is not the very next one (or there is no `next`), then
    /// `next`.
    async fn read_up(&self, room: &str, next: Option<Entry>) {
        // A room that only holds a reservation gets its history when someone joins.
        let Some(last) = self.rooms.delivered_upto(room) else {
            return;
        };
        let needs_reading = match &next {
            Some(e) if e.id() <= last => return,
            Some(e) => e.id() > last + 1,
            None => true,
        };
        let name: Arc<str> = room.into();
        if needs_reading {
            let upto = next.as_ref().map_or(u64::MAX, |e| e.id() - 1);
            let walk = Walk {
                newest: false,
                messages_only: false,
            };
            let (from, to) = (format!("({last}-0"), stream_id(upto));
            match read(&self.conn, room, from, to, usize::MAX >> 1, walk).await {
                Ok(missed) => {
                    for e in missed {
                        let received = self.receipts.take(&name, e.client_id());
                        self.delivery.deliver_committed(room, e, received);
                    }
                }
                Err(e) => {
                    // Delivering `next` now would skip the missed ones for good; the next
                    // entry or the resubscription after this (Redis is likely away) reads
                    // them all.
                    tracing::warn!(error = %e, %room, "cannot read missed entries");
                    return;
                }
            }
        }
        if let Some(e) = next {
            if self
                .rooms
                .delivered_upto(room)
                .is_some_and(|last| e.id() > last)
            {
                let received = self.receipts.take(&name, e.client_id());
                self.delivery.deliver_committed(room, e, received);
            }
        }
    }
}
