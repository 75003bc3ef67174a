//! Where a room's messages live in Redis: its keys, its channel, and reads of its stream.

use redis::aio::ConnectionManager;
use std::collections::HashMap;

use crate::protocol::ChatMessage;
use crate::server::log::types::StoreError;

/// The rooms made through joins, counted against `max_rooms`.
pub(super) const ROOMS_KEY: &str = "chat:rooms";
/// Channels carry `chat:msg:<room>`; the relay subscribes to them all.
pub(super) const CHANNELS: &str = "chat:msg:*";

pub(super) fn seq_key(room: &str) -> String {
    // The braces keep a room's keys in one slot, should the Redis be a Redis Cluster.
    format!("chat:{{{room}}}:seq")
}

pub(super) fn log_key(room: &str) -> String {
    format!("chat:{{{room}}}:log")
}

pub(super) fn client_key(room: &str, session: &str, client_id: &str) -> String {
    format!("chat:{{{room}}}:cid:{session}:{client_id}")
}

pub(super) fn channel(room: &str) -> String {
    format!("chat:msg:{room}")
}

pub(super) fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// Messages of `room` in the id range, oldest first: `XRANGE` (or `XREVRANGE` for the
/// newest `limit`, when `newest` is set), with `(` marking an exclusive bound.
pub(super) async fn range(
    conn: &ConnectionManager,
    room: &str,
    from: String,
    to: String,
    limit: usize,
    newest: bool,
) -> Result<Vec<ChatMessage>, StoreError> {
    let mut conn = conn.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_keys_share_a_slot() {
        assert_eq!(seq_key("lobby"), "chat:{lobby}:seq");
        assert_eq!(log_key("lobby"), "chat:{lobby}:log");
        assert!(client_key("lobby", "s", "c").starts_with("chat:{lobby}:"));
    }
}
