//! Appends to the shared log: one Lua script per message, sent a pipeline at a time.
//!
//! The script looks up the client id (a re-send is confirmed again, not stored twice), takes
//! the room's next id, adds the message to the room's stream (trimmed to `redis_stream_len`)
//! and publishes it on `chat:msg:<room>`, all as one atomic step in Redis. Appends queue for
//! one task that sends whatever is waiting as one pipeline, so Redis round trips do not set
//! the rate. Stored messages reach their room through the relay; re-sends and failures are
//! answered here.

use redis::aio::ConnectionManager;
use redis::RedisResult;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::protocol::ChatMessage;
use crate::server::log::redis::stream::{channel, client_key, log_key, redis_error, seq_key};
use crate::server::log::types::{now_ms, Action, Append, Delivery, Entry, Outcome, StoreError};

/// Most appends sent to Redis in one pipeline.
const PIPELINE: usize = 512;
/// How long a client id is remembered, to confirm a re-send instead of storing it twice.
const DEDUP_SECS: u64 = 7 * 24 * 3600;
/// How long the receipt time of a message is kept for the relay to find.
const RECEIPT_KEPT: Duration = Duration::from_secs(60);

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

/// Receipt times of messages being appended here, by room and client id, for the fan-out
/// latency of those the relay delivers.
#[derive(Default)]
pub(super) struct Receipts(Mutex<HashMap<(Arc<str>, String), Instant>>);

impl Receipts {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(Arc<str>, String), Instant>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes when each message of `batch` was received.
    fn note(&self, batch: &[Append]) {
        let mut received = self.map();
        // Messages of rooms no longer served here are never relayed back: forget them.
        if received.len() > 1024 {
            received.retain(|_, at| at.elapsed() < RECEIPT_KEPT);
        }
        for a in batch {
            received.insert((a.room.clone(), a.client_id.clone()), a.received);
        }
    }

    /// Forgets a message that was not stored.
    fn forget(&self, append: &Append) {
        self.map()
            .remove(&(append.room.clone(), append.client_id.clone()));
    }

    /// When this node received the message with `client_id` in `room`, if it did.
    pub(super) fn take(&self, room: &Arc<str>, client_id: Option<&str>) -> Option<Instant> {
        let client_id = client_id?;
        self.map().remove(&(room.clone(), client_id.to_string()))
    }
}

/// What the append task works with.
pub(super) struct Appends {
    pub conn: ConnectionManager,
    pub stream_len: usize,
    pub receipts: Arc<Receipts>,
    pub delivery: Arc<dyn Delivery>,
}

/// The message as the script takes it: its JSON with id 0, which the script replaces.
fn unnumbered(append: &Append) -> Option<String> {
    let Action::Post { text, .. } = &append.action else {
        return None;
    };
    let m = ChatMessage {
        id: 0,
        ts: now_ms(),
        name: append.author.name.clone(),
        avatar: append.author.avatar.clone(),
        text: text.clone(),
        client_id: Some(append.client_id.clone()),
        ..ChatMessage::default()
    };
    let json = serde_json::to_string(&m).ok()?;
    json.starts_with(r#"{"id":0,"#).then_some(json)
}

impl Appends {
    /// Sends what is queued to Redis, a pipeline at a time. Stored messages reach their room
    /// through the relay; re-sends and failures are answered to the sender here.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Append>) {
        let sha = redis::Script::new(APPEND).get_hash().to_string();
        let mut batch = Vec::with_capacity(PIPELINE);
        while rx.recv_many(&mut batch, PIPELINE).await > 0 {
            let mut results = self.send_batch(&sha, &batch).await;
            if results
                .iter()
                .any(|r| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)))
            {
                // Redis restarted and forgot the script: load it and send the batch again (a
                // message already stored is then confirmed as a re-send).
                let mut conn = self.conn.clone();
                let loaded: RedisResult<String> = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(APPEND)
                    .query_async(&mut conn)
                    .await;
                if loaded.is_ok() {
                    results = self.send_batch(&sha, &batch).await;
                }
            }
            for (append, result) in batch.drain(..).zip(results) {
                let outcome = match result {
                    Ok((1, _)) => continue, // the relay delivers it
                    Ok((_, json)) => match serde_json::from_str::<ChatMessage>(&json) {
                        Ok(m) => Outcome::Duplicate(Entry::Message(m)),
                        Err(_) => Outcome::Failed(StoreError::Redis(
                            "a re-send of a message no longer kept".into(),
                        )),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, room = %append.room, "append to Redis failed");
                        self.receipts.forget(&append);
                        Outcome::Failed(redis_error(e))
                    }
                };
                self.delivery.deliver(append, outcome);
            }
        }
    }

    async fn send_batch(&self, sha: &str, batch: &[Append]) -> Vec<RedisResult<(i64, String)>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        self.receipts.note(batch);
        for a in batch {
            let json = unnumbered(a).unwrap_or_default();
            pipe.cmd("EVALSHA")
                .arg(sha)
                .arg(3)
                .arg(seq_key(&a.room))
                .arg(log_key(&a.room))
                .arg(client_key(&a.room, &a.session, &a.client_id))
                .arg(json)
                .arg(self.stream_len)
                .arg(channel(&a.room))
                .arg(DEDUP_SECS);
        }
        let mut conn = self.conn.clone();
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
            action: Action::Post {
                text: r#"{"id":0, quotes" and braces}"#.into(),
                reply_to: None,
            },
            received: Instant::now(),
        };
        let json = unnumbered(&a).unwrap();
        // What the script does, in Rust.
        let numbered = format!(r#"{{"id":42{}"#, &json[7..]);
        let m: ChatMessage = serde_json::from_str(&numbered).unwrap();
        assert_eq!(m.id, 42);
        assert_eq!(m.text, r#"{"id":0, quotes" and braces}"#);
        assert_eq!(m.client_id.as_deref(), Some("c1"));
    }
}
