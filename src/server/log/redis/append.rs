//! Appends to the shared log: one Lua script per message or change, sent a pipeline at a time.
//!
//! The script looks up the client id (a re-send is confirmed again, not stored twice),
//! checks a change against its message (it exists, is not deleted, and an edit or deletion
//! comes from the session that posted it), takes the room's next id, adds the entry to the
//! room's stream (trimmed to `redis_stream_len`), updates the message's body or reactions
//! and publishes the entry's record on `chat:msg:<room>`, all as one atomic step in Redis.
//! Appends queue for one task that sends whatever is waiting as one pipeline, so Redis round
//! trips do not set the rate. Stored entries reach their room through the relay; re-sends,
//! refusals and failures are answered here.

use redis::aio::ConnectionManager;
use redis::RedisResult;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::protocol::{Change, ChangeAction, ChatMessage};
use crate::server::log::redis::moderation;
use crate::server::log::redis::stream::{
    body_key, channel, client_key, floor_key, log_key, read, redis_error, rx_prefix, seq_key,
    stream_id, Walk, PRELUDE,
};
use crate::server::log::types::{
    now_ms, Action, Append, Delivery, Outcome, Refusal, StoreError, MAX_REACTIONS,
};

/// Most appends sent to Redis in one pipeline.
const PIPELINE: usize = 512;
/// How long a client id is remembered, to confirm a re-send instead of storing it twice.
const DEDUP_SECS: u64 = 7 * 24 * 3600;
/// How long the receipt time of a message is kept for the relay to find.
const RECEIPT_KEPT: Duration = Duration::from_secs(60);

/// Appends an entry unless its client id was seen. KEYS seq, log, client-id key, body,
/// floor, reactions of the target; ARGV entry JSON starting `{"id":0,`, stream length,
/// channel, dedup seconds, session, action (`post`, `edit`, `delete`, `react`), target (or
/// the message replied to, 0 for none), text, emoji, on ("1"), reactor's name, most
/// reactions, reactions prefix, now. Returns {1, record JSON} when stored, {0, id} for a
/// re-send, {2, refusal} when refused.
const APPEND: &str = r#"
local prior = redis.call('GET', KEYS[3])
if prior then return {0, prior} end
local action, target = ARGV[6], ARGV[7]
if target ~= '0' then
  local e = redis.call('XRANGE', KEYS[2], target .. '-0', target .. '-0')[1]
  local f = e and fields_of(e[2])
  if not (f and f.m) or redis.call('HEXISTS', KEYS[4], target .. ':d') == 1 then
    return {2, 'no_such_message'}
  end
  if (action == 'edit' or action == 'delete') and f.s ~= ARGV[5] then
    return {2, 'not_author'}
  end
end
local member = ARGV[9] .. '\31' .. ARGV[11]
if action == 'react' and ARGV[10] == '1' and not redis.call('ZSCORE', KEYS[6], member)
    and redis.call('ZCARD', KEYS[6]) >= tonumber(ARGV[12]) then
  return {2, 'too_many_reactions'}
end
local id = redis.call('INCR', KEYS[1])
local json = '{"id":' .. id .. string.sub(ARGV[1], 8)
local fields
if action == 'post' then
  fields = {'m', json, 's', ARGV[5], 'r', target}
  redis.call('HSET', KEYS[4], id, ARGV[8])
else
  fields = {'c', json, 's', ARGV[5]}
  if action == 'edit' then
    redis.call('HSET', KEYS[4], target, ARGV[8], target .. ':e', ARGV[14])
  elseif action == 'delete' then
    redis.call('HDEL', KEYS[4], target, target .. ':e')
    redis.call('HSET', KEYS[4], target .. ':d', '1')
    redis.call('DEL', KEYS[6])
  elseif ARGV[10] == '1' then
    redis.call('ZADD', KEYS[6], 'NX', id, member)
  else
    redis.call('ZREM', KEYS[6], member)
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id .. '-0', unpack(fields))
redis.call('SET', KEYS[3], id, 'EX', ARGV[4])
local rec = cjson.encode(record(KEYS[2], KEYS[4], ARGV[13], id .. '-0', fields))
redis.call('PUBLISH', ARGV[3], rec)
clean(KEYS[2], KEYS[4], ARGV[13], KEYS[5])
return {1, rec}
"#;

/// The append script.
fn script() -> &'static str {
    static SOURCE: LazyLock<String> = LazyLock::new(|| format!("{PRELUDE}{APPEND}"));
    &SOURCE
}

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

/// The entry as the script takes it: its JSON with id 0 (which the script replaces) and
/// without text (which goes to the body hash).
fn unnumbered(a: &Append) -> Option<String> {
    let (name, avatar) = (a.author.name.clone(), a.author.avatar.clone());
    let client_id = Some(a.client_id.clone());
    let (ts, id) = (now_ms(), 0);
    let json = match &a.action {
        Action::Moderate(_) => return None,
        Action::Post { .. } => serde_json::to_string(&ChatMessage {
            id,
            ts,
            name,
            avatar,
            client_id,
            ..ChatMessage::default()
        }),
        Action::Edit { target, .. } | Action::Delete { target } | Action::React { target, .. } => {
            let action = match &a.action {
                Action::Edit { .. } => ChangeAction::Edit {
                    text: String::new(),
                },
                Action::React { emoji, on, .. } => ChangeAction::React {
                    emoji: emoji.clone(),
                    on: *on,
                },
                _ => ChangeAction::Delete,
            };
            serde_json::to_string(&Change {
                id,
                ts,
                target: *target,
                name,
                avatar,
                client_id,
                action,
            })
        }
    }
    .ok()?;
    json.starts_with(r#"{"id":0,"#).then_some(json)
}

/// The script's action name, target, text, emoji and `on` for `a`.
fn script_args(a: &Append) -> (&'static str, u64, &str, &str, bool) {
    match &a.action {
        Action::Post { text, reply_to } => ("post", reply_to.unwrap_or(0), text, "", false),
        Action::Edit { target, text } => ("edit", *target, text, "", false),
        Action::Delete { target } => ("delete", *target, "", "", false),
        Action::React { target, emoji, on } => ("react", *target, "", emoji, *on),
        Action::Moderate(m) => ("mod", m.target, "", "", false),
    }
}

/// A refusal as the script names it.
fn refusal(name: &str) -> Refusal {
    match name {
        "not_author" => Refusal::NotAuthor,
        "stale" => Refusal::Stale,
        "too_many_reactions" => Refusal::TooManyReactions,
        _ => Refusal::NoSuchMessage,
    }
}

impl Appends {
    /// Sends what is queued to Redis, a pipeline at a time. Stored messages reach their room
    /// through the relay; re-sends and failures are answered to the sender here.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Append>) {
        let shas = [
            redis::Script::new(script()).get_hash().to_string(),
            redis::Script::new(moderation::script())
                .get_hash()
                .to_string(),
        ];
        let mut batch = Vec::with_capacity(PIPELINE);
        while rx.recv_many(&mut batch, PIPELINE).await > 0 {
            let mut results = self.send_batch(&shas, &batch).await;
            if results
                .iter()
                .any(|r| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)))
            {
                // Redis restarted and forgot the script: load it and send the batch again (a
                // message already stored is then confirmed as a re-send).
                let mut conn = self.conn.clone();
                let mut loaded: RedisResult<String> = Ok(String::new());
                for source in [script(), moderation::script()] {
                    if loaded.is_ok() {
                        loaded = redis::cmd("SCRIPT")
                            .arg("LOAD")
                            .arg(source)
                            .query_async(&mut conn)
                            .await;
                    }
                }
                if loaded.is_ok() {
                    results = self.send_batch(&shas, &batch).await;
                }
            }
            for (append, result) in batch.drain(..).zip(results) {
                let outcome = match result {
                    Ok((1, _)) => continue, // the relay delivers it
                    Ok((0, id)) => self.earlier(&append, &id).await,
                    Ok((_, name)) => {
                        self.receipts.forget(&append);
                        Outcome::Refused(refusal(&name))
                    }
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

    /// A re-send's confirmation: entry `id` as it is now.
    async fn earlier(&self, append: &Append, id: &str) -> Outcome {
        self.receipts.forget(append);
        let id: u64 = id.parse().unwrap_or(0);
        let walk = Walk {
            newest: false,
            messages_only: false,
        };
        let (from, to) = (stream_id(id), stream_id(id));
        match read(&self.conn, &append.room, from, to, 1, walk).await {
            Ok(mut found) if !found.is_empty() => Outcome::Duplicate(found.remove(0)),
            Ok(_) => Outcome::Failed(StoreError::Redis(
                "a re-send of an entry no longer kept".into(),
            )),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Runs each append's script (`shas`: the append's and the moderation's), one pipeline.
    async fn send_batch(
        &self,
        shas: &[String; 2],
        batch: &[Append],
    ) -> Vec<RedisResult<(i64, String)>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        self.receipts.note(batch);
        let now = now_ms().to_string();
        let sha = &shas[0];
        for a in batch {
            if let Action::Moderate(m) = &a.action {
                moderation::push(&mut pipe, &shas[1], a, m, self.stream_len, DEDUP_SECS);
                continue;
            }
            let json = unnumbered(a).unwrap_or_default();
            let (action, target, text, emoji, on) = script_args(a);
            pipe.cmd("EVALSHA")
                .arg(sha)
                .arg(6)
                .arg(seq_key(&a.room))
                .arg(log_key(&a.room))
                .arg(client_key(&a.room, &a.session, &a.client_id))
                .arg(body_key(&a.room))
                .arg(floor_key(&a.room))
                .arg(format!("{}{target}", rx_prefix(&a.room)))
                .arg(json)
                .arg(self.stream_len)
                .arg(channel(&a.room))
                .arg(DEDUP_SECS)
                .arg(&*a.session)
                .arg(action)
                .arg(target)
                .arg(text)
                .arg(emoji)
                .arg(if on { "1" } else { "0" })
                .arg(&a.author.name)
                .arg(MAX_REACTIONS)
                .arg(rx_prefix(&a.room))
                .arg(&now);
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
        assert_eq!(m.text, "", "the text goes to the body hash, not the stream");
        assert_eq!(m.client_id.as_deref(), Some("c1"));
        let edit = Append {
            action: Action::Edit {
                target: 7,
                text: "secret".into(),
            },
            ..a
        };
        let json = unnumbered(&edit).unwrap();
        assert!(!json.contains("secret"));
        let c: Change = serde_json::from_str(&format!(r#"{{"id":43{}"#, &json[7..])).unwrap();
        assert_eq!((c.id, c.target), (43, 7));
        assert!(
            json.contains(r#""target":7"#),
            "the script finds the target"
        );
    }
}
