//! The message log all nodes share in cluster mode, on Redis.
//!
//! A stream per room, with ids from one counter per room.
//!
//! An append (`append.rs`) runs one Lua script that dedups, numbers, logs and publishes the
//! message as one atomic step in Redis, so ids are gapless and every node sees the same
//! order. The relay (`relay.rs`) hands each node every room's messages in order, exactly
//! once; retention (`retention.rs`) trims the streams. Moderation steps run their own
//! script (`moderation.rs`). Presence is in `presence.rs`.

mod append;
mod moderation;
mod relay;
mod retention;
mod stream;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::protocol::{ChatMessage, MessageId};
use crate::server::log::presence::{LiveRooms, Presence};
use crate::server::log::redis::append::{Appends, Receipts};
use crate::server::log::redis::relay::Relay;
use crate::server::log::redis::retention::spawn_retention;
use crate::server::log::redis::stream::{
    read, redis_error, seq_key, stream_id, typing_channel, Walk, ROOMS_KEY,
};
use crate::server::log::types::{Append, Delivery, Entry, StoreError, QUEUE};

/// How long a readiness answer stands.
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// The shared message log.
pub struct RedisLog {
    conn: ConnectionManager,
    tx: mpsc::Sender<Append>,
    /// Rooms the relay should read up on (a room just created here may have missed a message).
    catch_up: mpsc::UnboundedSender<String>,
    /// Set by the relay while it is subscribed.
    relay_up: Arc<AtomicBool>,
    probe: Mutex<Option<(Instant, Result<(), String>)>>,
    /// Members and names across nodes.
    presence: Arc<Presence>,
}

impl RedisLog {
    /// Connects to `url`, starts the append task, the relay and presence for `hub`: the
    /// hub takes what is stored, and tells presence and the relay about its rooms.
    pub async fn start<H: Delivery + LiveRooms>(
        url: &str,
        stream_len: usize,
        presence_ttl: Duration,
        hub: Arc<H>,
    ) -> Result<Arc<RedisLog>, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        // Fail fast while Redis is away, so that a sender hears "not stored" in a second or
        // two rather than waiting; the manager goes on reconnecting in the background.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Redis(format!("no answer from {url} within 5 s")))?
        .map_err(redis_error)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (catch_up, catch_up_rx) = mpsc::unbounded_channel();
        let presence = Arc::new(Presence::new(conn.clone(), presence_ttl));
        let (changes, changes_rx) = mpsc::unbounded_channel();
        hub.share_presence(changes);
        tokio::spawn(presence.clone().run(hub.clone(), changes_rx));
        let receipts = Arc::new(Receipts::default());
        let relay_up = Arc::new(AtomicBool::new(false));
        let appends = Appends {
            conn: conn.clone(),
            stream_len,
            receipts: receipts.clone(),
            delivery: hub.clone(),
        };
        tokio::spawn(appends.run(rx));
        let relay = Relay {
            client,
            conn: conn.clone(),
            receipts,
            up: relay_up.clone(),
            delivery: hub.clone(),
            rooms: hub,
            node: presence.node().to_string(),
        };
        tokio::spawn(relay.run(catch_up_rx));
        Ok(Arc::new(RedisLog {
            presence,
            conn,
            tx,
            catch_up,
            relay_up,
            probe: Mutex::new(None),
        }))
    }

    /// Starts a task that trims every room's stream of messages older than `days`, now and
    /// every minute.
    pub fn start_retention(&self, days: u64) -> tokio::task::JoinHandle<()> {
        spawn_retention(self.conn.clone(), days)
    }

    /// Queues `append` without waiting; fails when too many wait already.
    pub fn append(&self, append: Append) -> Result<(), StoreError> {
        self.tx.try_send(append).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })
    }

    pub fn is_idle(&self) -> bool {
        self.tx.capacity() == self.tx.max_capacity()
    }

    /// Asks the relay to read `room` up to its newest message (call after creating it here).
    pub fn catch_up(&self, room: &str) {
        let _ = self.catch_up.send(room.to_string());
    }

    /// Members and names across nodes.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The newest message id of `room` (0 if none).
    pub async fn last_id(&self, room: &str) -> Result<MessageId, StoreError> {
        let mut conn = self.conn.clone();
        let id: Option<u64> = conn.get(seq_key(room)).await.map_err(redis_error)?;
        Ok(id.unwrap_or(0))
    }

    /// How many rooms were made through joins in the cluster (the set `chat:rooms`).
    pub async fn room_count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        conn.scard(ROOMS_KEY).await.map_err(redis_error)
    }

    /// Was `room` made through a join on any node?
    pub async fn room_noted(&self, room: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        conn.sismember(ROOMS_KEY, room).await.map_err(redis_error)
    }

    /// Counts `room` as made, for [`RedisLog::room_count`].
    pub async fn note_room(&self, room: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.sadd(ROOMS_KEY, room).await.map_err(redis_error)
    }

    /// The `limit` newest messages of `room` with ids up to `upto`, oldest first.
    pub async fn recent(
        &self,
        room: &str,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.messages(room, "-".into(), stream_id(upto), limit)
            .await
    }

    /// Up to `limit` messages of `room` older than `before`, oldest first.
    pub async fn before(
        &self,
        room: &str,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.messages(room, "-".into(), format!("({before}-0"), limit)
            .await
    }

    /// The newest `limit` messages of `room` between two stream ids.
    async fn messages(
        &self,
        room: &str,
        from: String,
        to: String,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let walk = Walk {
            newest: true,
            messages_only: true,
        };
        let entries = read(&self.conn, room, from, to, limit, walk).await?;
        Ok(entries
            .into_iter()
            .filter_map(Entry::into_message)
            .collect())
    }

    /// Up to `limit` entries of `room` with `after < id <= upto`, oldest first.
    pub async fn between(
        &self,
        room: &str,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let walk = Walk {
            newest: false,
            messages_only: false,
        };
        read(
            &self.conn,
            room,
            format!("({after}-0"),
            stream_id(upto),
            limit,
            walk,
        )
        .await
    }

    /// Tells the other nodes that `name` is typing in `room` (fire and forget).
    pub fn typing(&self, room: &str, name: &str) {
        let mut conn = self.conn.clone();
        let (channel, payload) = (
            typing_channel(room),
            format!("{}\n{name}", self.presence.node()),
        );
        tokio::spawn(async move {
            let _: redis::RedisResult<()> = conn.publish(channel, payload).await;
        });
    }

    /// The secret that signs sessions, the same on every node: the first node's.
    pub async fn session_secret(&self) -> Result<Vec<u8>, StoreError> {
        let mut conn = self.conn.clone();
        let mut secret = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        let _: bool = redis::cmd("SET")
            .arg("chat:session_secret")
            .arg(&secret)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map(|r| r.is_some())
            .map_err(redis_error)?;
        conn.get("chat:session_secret").await.map_err(redis_error)
    }

    /// Could a message be stored and relayed now? Redis answers and the relay is subscribed.
    /// At most one probe a second; later calls get the last answer.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        if let Some((at, r)) = self
            .probe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if at.elapsed() < PROBE_FRESH {
                return r.clone().map_err(StoreError::Redis);
            }
        }
        let mut conn = self.conn.clone();
        let ping = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let result = match ping {
            Err(_) => Err("Redis does not answer".to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(_)) if !self.relay_up.load(Ordering::Relaxed) => {
                Err("not subscribed to Redis yet".to_string())
            }
            Ok(Ok(_)) => Ok(()),
        };
        *self.probe.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), result.clone()));
        result.map_err(StoreError::Redis)
    }
}
