//! Where a room's log lives in Redis: its keys, its channels, and reads of its entries in their newest state.
//!
//! A room's stream holds one entry per log id: a message (`m`: its JSON without its text,
//! `s`: the session that posted it, `r`: the message it replies to) or a change (`c`: its
//! JSON, an edit without its text). A message's text lives in the room's body hash (field
//! `<id>`, beside `<id>:e` when edited, `<id>:d` once deleted and `<id>:r` once removed by
//! a moderator), so that a deletion removes it from the store: stream entries cannot be
//! rewritten. Reactions are a sorted set per message, `rx:<id>`, of `emoji \x1f name`
//! scored by their change's id. A room's moderation fields are the hash `mod`, its audit
//! records the list `audit` (see `moderation.rs`).
//!
//! Reads and appends run Lua scripts that share [`PRELUDE`]: `record` turns an entry into
//! a list of strings with its newest state (the same list is published), which
//! [`entry_of`] reads; `clean` drops the bodies of entries the stream's length cap trimmed.

use redis::aio::ConnectionManager;

use crate::protocol::{Change, ChangeAction, ChatMessage, MessageId, Quote};
use crate::server::log::types::{Entry, StoreError};

/// The rooms made through joins, counted against `max_rooms`.
pub(super) const ROOMS_KEY: &str = "chat:rooms";
/// Channels carry `chat:msg:<room>`; the relay subscribes to them all.
pub(super) const CHANNELS: &str = "chat:msg:*";
/// Typing crosses nodes on `chat:typing:<room>` (never stored).
pub(super) const TYPING_CHANNELS: &str = "chat:typing:*";

pub(super) fn seq_key(room: &str) -> String {
    // The braces keep a room's keys in one slot, should the Redis be a Redis Cluster.
    format!("chat:{{{room}}}:seq")
}

pub(super) fn log_key(room: &str) -> String {
    format!("chat:{{{room}}}:log")
}

/// Message texts and their edited and deleted marks.
pub(super) fn body_key(room: &str) -> String {
    format!("chat:{{{room}}}:body")
}

/// Reactions of a message are `rx:<id>` under this prefix.
pub(super) fn rx_prefix(room: &str) -> String {
    format!("chat:{{{room}}}:rx:")
}

/// The oldest id whose body may still be kept (below it, bodies were cleaned).
pub(super) fn floor_key(room: &str) -> String {
    format!("chat:{{{room}}}:floor")
}

/// The room's moderation fields (a hash).
pub(super) fn mod_key(room: &str) -> String {
    format!("chat:{{{room}}}:mod")
}

/// The room's audit records, newest first (a list).
pub(super) fn audit_key(room: &str) -> String {
    format!("chat:{{{room}}}:audit")
}

pub(super) fn client_key(room: &str, session: &str, client_id: &str) -> String {
    format!("chat:{{{room}}}:cid:{session}:{client_id}")
}

pub(super) fn channel(room: &str) -> String {
    format!("chat:msg:{room}")
}

pub(super) fn typing_channel(room: &str) -> String {
    format!("chat:typing:{room}")
}

pub(super) fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// Lua shared by every script. `record(log, body, rx, id, fields)` lists entry `id` (its
/// stream fields flattened) as strings: for a message `m, json, text, has_text, edited,
/// deleted, reply_to, quote_name, quote_text, quote_gone, reactions, removed`; for a change `c, json,
/// text of its message` (for edits). `clean(log, body, rx, floor)` drops the bodies and
/// reactions of entries no longer in the stream.
pub(super) const PRELUDE: &str = r#"
local function fields_of(list)
  local f = {}
  for i = 1, #list, 2 do f[list[i]] = list[i + 1] end
  return f
end
local function record(log, body, rx, id, list)
  local f = fields_of(list)
  local n = string.match(id, '^(%d+)')
  if f.c then
    local target = string.match(f.c, '"target":(%d+)') or '0'
    return {'c', f.c, redis.call('HGET', body, target) or ''}
  end
  if not f.m then return nil end
  local text = redis.call('HGET', body, n)
  local has = '1'
  if not text then text, has = '', '0' end
  local edited = redis.call('HGET', body, n .. ':e') or ''
  local deleted = tostring(redis.call('HEXISTS', body, n .. ':d'))
  local r = f.r or '0'
  local qname, qtext, qgone = '', '', '1'
  if r ~= '0' then
    local o = redis.call('XRANGE', log, r .. '-0', r .. '-0')[1]
    local om = o and fields_of(o[2]).m
    if om then
      local head = cjson.decode(om)
      qname = head.name or ''
      if redis.call('HEXISTS', body, r .. ':d') == 0 then
        qtext = redis.call('HGET', body, r) or head.text or ''
        qgone = '0'
      end
    end
  end
  local reactions = ''
  if deleted == '0' then
    reactions = table.concat(redis.call('ZRANGE', rx .. n, 0, -1), '\30')
  end
  local removed = tostring(redis.call('HEXISTS', body, n .. ':r'))
  return {'m', f.m, text, has, edited, deleted, r, qname, qtext, qgone, reactions, removed}
end
local function clean(log, body, rx, floor)
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if not first then return end
  local oldest = tonumber(string.match(first[1], '^(%d+)'))
  local from = redis.call('GET', floor)
  if not from then
    redis.call('SET', floor, oldest)
    return
  end
  from = tonumber(from)
  if from >= oldest then return end
  for i = from, oldest - 1 do
    redis.call('HDEL', body, i, i .. ':e', i .. ':d', i .. ':r')
    redis.call('DEL', rx .. i)
  end
  redis.call('SET', floor, oldest)
end
"#;

/// Reads entries: KEYS log, body; ARGV from, to, count, newest first ("1"), messages only
/// ("1"), reactions prefix. Returns records (see [`PRELUDE`]), in stream order.
const READ: &str = r#"
local out = {}
local want = tonumber(ARGV[3])
local cmd, a, b = 'XRANGE', ARGV[1], ARGV[2]
if ARGV[4] == '1' then cmd, a, b = 'XREVRANGE', ARGV[2], ARGV[1] end
while #out < want do
  local step = math.min(want - #out, 512)
  local batch = redis.call(cmd, KEYS[1], a, b, 'COUNT', step)
  for _, e in ipairs(batch) do
    if #out < want and (ARGV[5] ~= '1' or fields_of(e[2]).m) then
      local rec = record(KEYS[1], KEYS[2], ARGV[6], e[1], e[2])
      if rec then out[#out + 1] = rec end
    end
  end
  if #batch < step then break end
  a = '(' .. batch[#batch][1]
end
return out
"#;

/// The read script's source.
fn read_script() -> &'static redis::Script {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(&format!("{PRELUDE}{READ}")));
    &SCRIPT
}

/// How [`read`] walks a stream.
#[derive(Clone, Copy)]
pub(super) struct Walk {
    /// The newest `count` first (returned oldest first).
    pub newest: bool,
    /// Messages only, skipping changes (counted in `count` otherwise).
    pub messages_only: bool,
}

/// Up to `count` entries of `room` between the stream ids `from` and `to` (`-`, `+`, or
/// `(` for an exclusive bound), oldest first, in their newest state.
pub(super) async fn read(
    conn: &ConnectionManager,
    room: &str,
    from: String,
    to: String,
    count: usize,
    walk: Walk,
) -> Result<Vec<Entry>, StoreError> {
    let mut conn = conn.clone();
    let records: Vec<Vec<String>> = read_script()
        .key(log_key(room))
        .key(body_key(room))
        .arg(from)
        .arg(to)
        .arg(count.min(1 << 40))
        .arg(if walk.newest { "1" } else { "0" })
        .arg(if walk.messages_only { "1" } else { "0" })
        .arg(rx_prefix(room))
        .invoke_async(&mut conn)
        .await
        .map_err(redis_error)?;
    let mut out: Vec<Entry> = records.iter().filter_map(|r| entry_of(r)).collect();
    if walk.newest {
        out.reverse();
    }
    Ok(out)
}

/// The stream id of log id `id` (`u64::MAX`: the end).
pub(super) fn stream_id(id: MessageId) -> String {
    if id == u64::MAX {
        "+".to_string()
    } else {
        format!("{id}-0")
    }
}

/// An entry from a record of the scripts (see [`PRELUDE`]).
pub(super) fn entry_of(rec: &[String]) -> Option<Entry> {
    match rec.first()?.as_str() {
        "c" => {
            let mut change: Change = serde_json::from_str(rec.get(1)?).ok()?;
            if let ChangeAction::Edit { text } = &mut change.action {
                text.clone_from(rec.get(2)?);
            }
            Some(Entry::Change(change))
        }
        "m" if rec.len() >= 11 => {
            let mut m: ChatMessage = serde_json::from_str(&rec[1]).ok()?;
            // A message stored before texts moved to the body hash keeps its own.
            if rec[3] == "1" {
                m.text.clone_from(&rec[2]);
            }
            m.edited = rec[4].parse().ok();
            // Records of nodes from before removals have no removed mark.
            m.removed = rec.get(11).is_some_and(|r| r == "1");
            if rec[5] == "1" {
                m.deleted = true;
                m.text.clear();
                m.edited = None;
            }
            let to: MessageId = rec[6].parse().unwrap_or(0);
            if to > 0 {
                m.reply_to = Some(match rec[9].as_str() {
                    "0" => Quote::of(to, &rec[7], &rec[8]),
                    _ => Quote::gone(to, &rec[7]),
                });
            }
            for pair in rec[10].split('\u{1e}').filter(|p| !p.is_empty()) {
                if let Some((emoji, name)) = pair.split_once('\u{1f}') {
                    m.react(emoji, name, true);
                }
            }
            Some(Entry::Message(m))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_keys_share_a_slot() {
        assert_eq!(seq_key("lobby"), "chat:{lobby}:seq");
        assert_eq!(log_key("lobby"), "chat:{lobby}:log");
        assert!(client_key("lobby", "s", "c").starts_with("chat:{lobby}:"));
        assert!(body_key("lobby").starts_with("chat:{lobby}:"));
        assert!(rx_prefix("lobby").starts_with("chat:{lobby}:"));
    }

    #[test]
    fn records_read_as_entries_in_their_newest_state() {
        let rec = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let head = r#"{"id":7,"ts":1,"name":"Ann","avatar":"fox","text":""}"#;
        let m = entry_of(&rec(&[
            "m",
            head,
            "hi",
            "1",
            "9",
            "0",
            "3",
            "Ben",
            "first",
            "0",
            "👍\u{1f}Ben\u{1e}👍\u{1f}Cy",
        ]));
        let Some(Entry::Message(m)) = m else {
            panic!("{m:?}")
        };
        assert_eq!((m.text.as_str(), m.edited), ("hi", Some(9)));
        assert_eq!(m.reply_to, Some(Quote::of(3, "Ben", "first")));
        assert_eq!(m.reactions[0].names, ["Ben", "Cy"]);
        let gone = entry_of(&rec(&["m", head, "", "0", "", "1", "0", "", "", "1", ""]));
        assert!(matches!(gone, Some(Entry::Message(m)) if m.deleted && m.text.is_empty()));
        let edit =
            r#"{"id":8,"ts":2,"target":7,"name":"Ann","avatar":"fox","action":"edit","text":""}"#;
        let c = entry_of(&rec(&["c", edit, "newest"]));
        assert!(
            matches!(c, Some(Entry::Change(c)) if c.action == ChangeAction::Edit { text: "newest".into() })
        );
        assert_eq!(entry_of(&rec(&["x"])), None);
    }
}
