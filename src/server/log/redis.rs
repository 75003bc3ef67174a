//! Cluster mode on Redis: the message log every node shares (a stream per room, ids from one counter per room), pipelined appends, and the relay that hands each node every room's messages in order, exactly once. Presence is in `presence.rs`.
//!
//! An append runs one Lua script: it looks up the client id (a re-send is confirmed again, not
//! stored twice), takes the room's next id, adds the message to the room's stream (trimmed to
//! `redis_stream_len`) and publishes it on `chat:msg:<room>`. All of it is one atomic step in
//! Redis, so ids are gapless and every node sees the same order. Nodes deliver only what the
//! relay hands them, the sender's own node included: its confirmation is its copy.
//!
//! Pub/sub may drop messages (a reconnect, a slow subscriber). The relay knows each room's last
//! delivered id, so a message further ahead first makes it read the missed ones from the
//! stream; after a reconnect it reads every live room's stream past that id. Appends queue for
//! one task that sends whatever is waiting as one pipeline, so Redis round trips do not set
//! the rate.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::protocol::{ChatMessage, MessageId};
use crate::server::chat::hub::Hub;
use crate::server::log::presence::Presence;
use crate::server::log::sqlite::{now_ms, Append, Delivery, Outcome, StoreError, QUEUE};

/// Most appends sent to Redis in one pipeline.
const PIPELINE: usize = 512;
/// How long a client id is remembered, to confirm a re-send instead of storing it twice.
const DEDUP_SECS: u64 = 7 * 24 * 3600;
/// Pause between attempts to reach Redis again.
const RETRY: Duration = Duration::from_millis(500);
/// How long the receipt time of a message is kept for the relay to find.
const RECEIPT_KEPT: Duration = Duration::from_secs(60);
/// How long a readiness answer stands.
const PROBE_FRESH: Duration = Duration::from_secs(1);
/// Stream entries read per step while looking for the end of a stream's expired part.
const TRIM_SCAN: usize = 500;
/// How often the retention task trims the streams.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Takes the room's next id and logs and publishes the message, unless its client id was
/// seen: KEYS seq, log, client-id key; ARGV message JSON starting `{"id":0,`, stream length,
/// channel, dedup seconds. Returns {1, json} when stored, {0, json or ""} for a re-send.
const APPEND: &str = r#"
local prior = redis.call('GET', KEYS[3])
if prior then
  local e = redis.call('XRANGE', KEYS[2], prior .. '-0', prior .. '-0')
  if e[1] then return {0, e[1][2][2]} end
  return {0, ''}
end
local id = redis.call('INCR', KEYS[1])
local msg = '{"id":' .. id .. string.sub(ARGV[1], 8)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0', 'm', msg)
redis.call('SET', KEYS[3], id, 'EX', ARGV[4])
redis.call('PUBLISH', ARGV[3], msg)
return {1, msg}
"#;

/// The rooms made through joins, counted against `max_rooms`.
const ROOMS_KEY: &str = "chat:rooms";
/// Channels carry `chat:msg:<room>`; the relay subscribes to them all.
const CHANNELS: &str = "chat:msg:*";

/// Starts a task that trims every room's stream of messages older than `days`, now and every
/// minute (each node does it; trimming twice is harmless).
pub fn spawn_retention(log: Arc<RedisLog>, days: u64) -> tokio::task::JoinHandle<()> {
    let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        loop {
            match log.trim_older(now_ms().saturating_sub(keep_ms)).await {
                Ok(0) => {}
                Ok(trimmed) => tracing::info!(trimmed, days, "retention: trimmed old messages"),
                Err(e) => tracing::warn!(error = %e, "retention: trimming the streams failed"),
            }
            tokio::time::sleep(TRIM_INTERVAL).await;
        }
    })
}

/// The stream id right after `id` (`5-0` → `5-1`).
fn next_stream_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    Some(format!("{ms}-{}", seq.parse::<u64>().ok()?.checked_add(1)?))
}

fn seq_key(room: &str) -> String {
    // The braces keep a room's keys in one slot, should the Redis be a Redis Cluster.
    format!("chat:{{{room}}}:seq")
}

fn log_key(room: &str) -> String {
    format!("chat:{{{room}}}:log")
}

fn client_key(room: &str, session: &str, client_id: &str) -> String {
    format!("chat:{{{room}}}:cid:{session}:{client_id}")
}

fn channel(room: &str) -> String {
    format!("chat:msg:{room}")
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// The shared message log.
pub struct RedisLog {
    conn: ConnectionManager,
    client: redis::Client,
    tx: mpsc::Sender<Append>,
    stream_len: usize,
    /// Receipt times of messages being appended here, by room and client id, for the fan-out
    /// latency of those the relay delivers.
    received: Mutex<HashMap<(Arc<str>, String), Instant>>,
    /// Rooms the relay should read up on (a room just created here may have missed a message).
    catch_up: mpsc::UnboundedSender<String>,
    relay_up: AtomicBool,
    probe: Mutex<Option<(Instant, Result<(), String>)>>,
    /// Members and names across nodes.
    presence: Arc<Presence>,
}

impl RedisLog {
    /// Connects to `url`, starts the append task, the relay and presence for `hub`.
    pub async fn start(
        url: &str,
        stream_len: usize,
        presence_ttl: Duration,
        hub: Arc<Hub>,
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
        let log = Arc::new(RedisLog {
            presence,
            conn,
            client,
            tx,
            stream_len,
            received: Mutex::new(HashMap::new()),
            catch_up,
            relay_up: AtomicBool::new(false),
            probe: Mutex::new(None),
        });
        tokio::spawn(append_loop(log.clone(), rx, hub.clone()));
        tokio::spawn(relay(log.clone(), catch_up_rx, hub));
        Ok(log)
    }

    /// Trims every room's stream of the messages stamped before `before_ms` (stream ids are
    /// message ids, not times, so the stamps are read); returns how many went.
    pub async fn trim_older(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let mut logs: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("chat:{*}:log")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            logs.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut trimmed = 0;
        for log in logs {
            loop {
                let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
                    .arg(&log)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(TRIM_SCAN)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                let expired = entries
                    .iter()
                    .take_while(|(_, fields)| {
                        fields
                            .get("m")
                            .and_then(|m| serde_json::from_str::<ChatMessage>(m).ok())
                            .is_some_and(|m| m.ts < before_ms)
                    })
                    .count();
                if expired == 0 {
                    break;
                }
                // Everything before the first entry kept, or up to the last one read.
                let min_id = match entries.get(expired).or(entries.last()) {
                    Some((id, _)) if expired < entries.len() => id.clone(),
                    Some((id, _)) => match next_stream_id(id) {
                        Some(next) => next,
                        None => break,
                    },
                    None => break,
                };
                let n: usize = redis::cmd("XTRIM")
                    .arg(&log)
                    .arg("MINID")
                    .arg(&min_id)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                trimmed += n;
                if expired < entries.len() || n == 0 {
                    break;
                }
            }
        }
        Ok(trimmed)
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

    /// Messages of `room` in the id range, oldest first: `XRANGE` (or `XREVRANGE` for the
    /// newest `limit`, when `newest` is set), with `(` marking an exclusive bound.
    async fn range(
        &self,
        room: &str,
        from: String,
        to: String,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let mut conn = self.conn.clone();
        let (cmd, a, b) = if newest {
            ("XREVRANGE", to, from)
        } else {
            ("XRANGE", from, to)
        };
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd(cmd)
            .arg(log_key(room))
            .arg(a)
            .arg(b)
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let mut out = entries
            .into_iter()
            .filter_map(|(_, fields)| fields.get("m").and_then(|m| serde_json::from_str(m).ok()))
            .collect::<Vec<ChatMessage>>();
        if newest {
            out.reverse();
        }
        Ok(out)
    }

    /// The `limit` newest messages of `room` with ids up to `upto`, oldest first.
    pub async fn recent(
        &self,
        room: &str,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let to = if upto == u64::MAX {
            "+".to_string()
        } else {
            format!("{upto}-0")
        };
        self.range(room, "-".into(), to, limit, true).await
    }

    /// Up to `limit` messages of `room` older than `before`, oldest first.
    pub async fn before(
        &self,
        room: &str,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.range(room, "-".into(), format!("({before}-0"), limit, true)
            .await
    }

    /// Up to `limit` messages of `room` with `after < id <= upto`, oldest first.
    pub async fn between(
        &self,
        room: &str,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.range(
            room,
            format!("({after}-0"),
            format!("{upto}-0"),
            limit,
            false,
        )
        .await
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

    fn received(&self, room: &Arc<str>, client_id: Option<&str>) -> Option<Instant> {
        let client_id = client_id?;
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(room.clone(), client_id.to_string()))
    }
}

/// The message as the script takes it: its JSON with id 0, which the script replaces.
fn unnumbered(append: &Append) -> Option<String> {
    let m = ChatMessage {
        id: 0,
        ts: now_ms(),
        name: append.author.name.clone(),
        avatar: append.author.avatar.clone(),
        text: append.text.clone(),
        client_id: Some(append.client_id.clone()),
    };
    let json = serde_json::to_string(&m).ok()?;
    json.starts_with(r#"{"id":0,"#).then_some(json)
}

/// Sends what is queued to Redis, a pipeline at a time. Stored messages reach their room
/// through the relay; re-sends and failures are answered to the sender here.
async fn append_loop(log: Arc<RedisLog>, mut rx: mpsc::Receiver<Append>, hub: Arc<Hub>) {
    let sha = redis::Script::new(APPEND).get_hash().to_string();
    let mut batch = Vec::with_capacity(PIPELINE);
    while rx.recv_many(&mut batch, PIPELINE).await > 0 {
        let mut results = send_batch(&log, &sha, &batch).await;
        if results
            .iter()
            .any(|r| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)))
        {
            // Redis restarted and forgot the script: load it and send the batch again (a
            // message already stored is then confirmed as a re-send).
            let mut conn = log.conn.clone();
            let loaded: RedisResult<String> = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(APPEND)
                .query_async(&mut conn)
                .await;
            if loaded.is_ok() {
                results = send_batch(&log, &sha, &batch).await;
            }
        }
        for (append, result) in batch.drain(..).zip(results) {
            let outcome = match result {
                Ok((1, _)) => continue, // the relay delivers it
                Ok((_, json)) => match serde_json::from_str::<ChatMessage>(&json) {
                    Ok(m) => Outcome::Duplicate(m),
                    Err(_) => Outcome::Failed(StoreError::Redis(
                        "a re-send of a message no longer kept".into(),
                    )),
                },
                Err(e) => {
                    tracing::warn!(error = %e, room = %append.room, "append to Redis failed");
                    log.received
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(append.room.clone(), append.client_id.clone()));
                    Outcome::Failed(redis_error(e))
                }
            };
            hub.deliver(append, outcome);
        }
    }
}

async fn send_batch(
    log: &RedisLog,
    sha: &str,
    batch: &[Append],
) -> Vec<RedisResult<(i64, String)>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    {
        let mut received = log.received.lock().unwrap_or_else(|e| e.into_inner());
        // Messages of rooms no longer served here are never relayed back: forget them.
        if received.len() > 1024 {
            received.retain(|_, at| at.elapsed() < RECEIPT_KEPT);
        }
        for a in batch {
            received.insert((a.room.clone(), a.client_id.clone()), a.received);
        }
    }
    for a in batch {
        let json = unnumbered(a).unwrap_or_default();
        pipe.cmd("EVALSHA")
            .arg(sha)
            .arg(3)
            .arg(seq_key(&a.room))
            .arg(log_key(&a.room))
            .arg(client_key(&a.room, &a.session, &a.client_id))
            .arg(json)
            .arg(log.stream_len)
            .arg(channel(&a.room))
            .arg(DEDUP_SECS);
    }
    let mut conn = log.conn.clone();
    match pipe
        .query_async::<Vec<RedisResult<(i64, String)>>>(&mut conn)
        .await
    {
        Ok(results) if results.len() == batch.len() => results,
        Ok(_) => batch
            .iter()
            .map(|_| Err((redis::ErrorKind::Client, "short reply from Redis").into()))
            .collect(),
        Err(e) => batch
            .iter()
            .map(|_| {
                Err(redis::RedisError::from((
                    e.kind(),
                    "pipeline failed",
                    e.to_string(),
                )))
            })
            .collect(),
    }
}

/// Subscribes to every room's channel and delivers, in id order and once each, what this
/// node's rooms have not had yet; reads missed messages from the streams. Reconnects forever.
async fn relay(log: Arc<RedisLog>, mut catch_up: mpsc::UnboundedReceiver<String>, hub: Arc<Hub>) {
    use futures::StreamExt;
    let mut failures = 0u32;
    loop {
        let subscribed = match log.client.get_async_pubsub().await {
            Ok(mut p) => p.psubscribe(CHANNELS).await.map(|()| p),
            Err(e) => Err(e),
        };
        let pubsub = match subscribed {
            Ok(p) => p,
            Err(e) => {
                log.relay_up.store(false, Ordering::Relaxed);
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
        log.relay_up.store(true, Ordering::Relaxed);
        tracing::info!("relaying messages from Redis");
        // Whatever was published while this node was not subscribed.
        for room in hub.room_names() {
            read_up(&log, &hub, &room, None).await;
        }
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    let room = msg.get_channel_name().trim_start_matches("chat:msg:").to_string();
                    match serde_json::from_slice::<ChatMessage>(msg.get_payload_bytes()) {
                        Ok(m) => read_up(&log, &hub, &room, Some(m)).await,
                        Err(e) => tracing::warn!(error = %e, %room, "unreadable message on Redis"),
                    }
                }
                Some(room) = catch_up.recv() => read_up(&log, &hub, &room, None).await,
            }
        }
        log.relay_up.store(false, Ordering::Relaxed);
        tracing::warn!("lost the Redis subscription; reconnecting");
        tokio::time::sleep(RETRY).await;
    }
}

/// Delivers to `room` (if it lives here) the messages after its last delivered one: read from
/// the stream when `next` is not the very next one (or there is no `next`), then `next`.
async fn read_up(log: &RedisLog, hub: &Hub, room: &str, next: Option<ChatMessage>) {
    let Some(live) = hub.room(room) else { return };
    // A room that only holds a reservation gets its history when someone joins.
    let Some(last) = live.known_last() else {
        return;
    };
    let needs_reading = match &next {
        Some(m) if m.id <= last => return,
        Some(m) => m.id > last + 1,
        None => true,
    };
    let name: Arc<str> = room.into();
    if needs_reading {
        let upto = next.as_ref().map_or(u64::MAX, |m| m.id - 1);
        let to = if upto == u64::MAX {
            "+".to_string()
        } else {
            format!("{upto}-0")
        };
        match log
            .range(room, format!("({last}-0"), to, usize::MAX >> 1, false)
            .await
        {
            Ok(missed) => {
                for m in missed {
                    let received = log.received(&name, m.client_id.as_deref());
                    hub.deliver_stored(&live, m, received);
                }
            }
            Err(e) => {
                // Delivering `next` now would skip the missed ones for good; the next message
                // or the resubscription after this (Redis is likely away) reads them all.
                tracing::warn!(error = %e, %room, "cannot read missed messages");
                return;
            }
        }
    }
    if let Some(m) = next {
        if m.id > live.last_delivered() {
            let received = log.received(&name, m.client_id.as_deref());
            hub.deliver_stored(&live, m, received);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Member;

    #[test]
    fn the_script_gets_json_it_can_number() {
        let a = Append {
            room: "lobby".into(),
            conn: 1,
            session: "s".into(),
            client_id: "c1".into(),
            author: Member {
                name: "Ada".into(),
                avatar: "fox".into(),
            },
            text: r#"{"id":0, quotes" and braces}"#.into(),
            received: Instant::now(),
        };
        let json = unnumbered(&a).unwrap();
        // What the script does, in Rust.
        let numbered = format!(r#"{{"id":42{}"#, &json[7..]);
        let m: ChatMessage = serde_json::from_str(&numbered).unwrap();
        assert_eq!(m.id, 42);
        assert_eq!(m.text, a.text);
        assert_eq!(m.client_id.as_deref(), Some("c1"));
    }

    #[test]
    fn a_rooms_keys_share_a_slot() {
        assert_eq!(seq_key("lobby"), "chat:{lobby}:seq");
        assert_eq!(log_key("lobby"), "chat:{lobby}:log");
        assert!(client_key("lobby", "s", "c").starts_with("chat:{lobby}:"));
    }
}
