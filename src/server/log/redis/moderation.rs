//! Moderation in the Redis log: the moderation step as one script, the fields, the audit records.
//!
//! A moderation entry is a change in the room's stream like an edit, appended by its own
//! script (sharing [`PRELUDE`]) that also removes messages, writes the room's moderation
//! fields (`chat:{room}:mod`) and pushes the audit record (`chat:{room}:audit`, newest
//! first), all in one atomic step. A removed message is deleted and marked `<id>:r`.

use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::protocol::moderation::MAX_CLEARED;
use crate::protocol::pages::AuditEntry;
use crate::protocol::{Change, ChangeAction, ChatMessage, MessageId};
use crate::server::log::redis::stream::{
    audit_key, body_key, channel, client_key, floor_key, log_key, mod_key, redis_error, rx_prefix,
    seq_key, PRELUDE, ROOMS_KEY,
};
use crate::server::log::redis::RedisLog;
use crate::server::log::types::{now_ms, Append, Moderation, StoreError};
use crate::server::log::AUDIT_KEPT;

/// Most stream entries a clear looks through, newest first.
const CLEAR_SCAN: usize = 10_000;
/// Entries `session_of` looks through, newest first.
const NAME_WINDOW: usize = 1000;
/// How far before a clear's start it still looks (node clocks may differ a little).
const CLOCK_SLACK_MS: i64 = 60_000;

/// Appends a moderation entry unless its client id was seen. KEYS seq, log, client-id key,
/// body, floor, mod, audit; ARGV entry JSON from `{"id":0,` up to a clear's ids, the JSON
/// after them, stream length, channel, dedup seconds, session, kind (`remove`, `clear`,
/// other), target, require ("1") with its field and value, clear's session ("": none) and
/// since, most cleared, most scanned, clock slack, reactions prefix, role JSON, audit kept,
/// then writes as field, set ("1"), value. Returns as the append script does.
const MODERATE: &str = r#"
if string.sub(ARGV[1], 1, 8) ~= '{"id":0,' then return redis.error_reply('bad entry') end
local prior = redis.call('GET', KEYS[3])
if prior then return {0, prior} end
if ARGV[9] == '1' and redis.call('HGET', KEYS[6], ARGV[10]) ~= ARGV[11] then
  return {2, 'stale'}
end
local function remove(n)
  redis.call('HDEL', KEYS[4], n, n .. ':e')
  redis.call('HSET', KEYS[4], n .. ':d', '1', n .. ':r', '1')
  redis.call('DEL', ARGV[17] .. n)
end
local ids = {}
if ARGV[7] == 'remove' then
  local t = ARGV[8]
  local e = redis.call('XRANGE', KEYS[2], t .. '-0', t .. '-0')[1]
  local f = e and fields_of(e[2])
  if not (f and f.m) or redis.call('HEXISTS', KEYS[4], t .. ':d') == 1 then
    return {2, 'no_such_message'}
  end
  remove(t)
elseif ARGV[7] == 'clear' and ARGV[12] ~= '' then
  local since, most, left = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
  local oldest = since - tonumber(ARGV[16])
  local from, newest = '+', {}
  while left > 0 and #newest < most do
    local step = math.min(left, 500)
    local batch = redis.call('XREVRANGE', KEYS[2], from, '-', 'COUNT', step)
    local stop = false
    for _, e in ipairs(batch) do
      local f = fields_of(e[2])
      local json = f.m or f.c or ''
      local ts = tonumber(string.match(json, '"ts":(%-?%d+)') or '0')
      if ts < oldest then stop = true break end
      local n = string.match(e[1], '^(%d+)')
      if f.m and f.s == ARGV[12] and ts >= since
          and redis.call('HEXISTS', KEYS[4], n .. ':d') == 0 then
        newest[#newest + 1] = n
        if #newest >= most then stop = true break end
      end
    end
    left = left - #batch
    if stop or #batch < step then break end
    from = '(' .. batch[#batch][1]
  end
  for i = #newest, 1, -1 do
    ids[#ids + 1] = newest[i]
    remove(newest[i])
  end
end
for i = 20, #ARGV - 2, 3 do
  if ARGV[i + 1] == '1' then
    redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[6], ARGV[i])
  end
end
local id = redis.call('INCR', KEYS[1])
local json = '{"id":' .. id .. string.sub(ARGV[1], 8) .. table.concat(ids, ',') .. ARGV[2]
local fields = {'c', json, 's', ARGV[6]}
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', unpack(fields))
redis.call('SET', KEYS[3], id, 'EX', ARGV[5])
redis.call('LPUSH', KEYS[7], '{"change":' .. json .. ',"role":' .. ARGV[18] .. '}')
redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[19]) - 1)
local rec = cjson.encode(record(KEYS[2], KEYS[4], ARGV[17], id .. '-0', fields))
redis.call('PUBLISH', ARGV[4], rec)
clean(KEYS[2], KEYS[4], ARGV[17], KEYS[5])
return {1, rec}
"#;

/// The moderation script's source.
pub(super) fn script() -> &'static str {
    static SOURCE: LazyLock<String> = LazyLock::new(|| format!("{PRELUDE}{MODERATE}"));
    &SOURCE
}

/// Audit records of a list, newest first: KEYS audit; ARGV before (0: none), limit.
const AUDIT: &str = r#"
local before, want, out, at = tonumber(ARGV[1]), tonumber(ARGV[2]), {}, 0
while #out < want do
  local batch = redis.call('LRANGE', KEYS[1], at, at + 255)
  for _, r in ipairs(batch) do
    local id = tonumber(string.match(r, '^{"change":{"id":(%d+)') or '0')
    if #out < want and (before == 0 or id < before) then out[#out + 1] = r end
  end
  if #batch < 256 then break end
  at = at + 256
end
return out
"#;

/// The entry JSON of `m` with id 0, split where a clear's ids go (after `"ids":[`).
fn json_parts(a: &Append, m: &Moderation) -> (String, String) {
    let mut action = m.action.clone();
    if let ChangeAction::Clear { ids, .. } = &mut action {
        ids.clear();
    }
    let change = Change {
        id: 0,
        ts: now_ms(),
        target: m.target,
        name: a.author.name.clone(),
        avatar: a.author.avatar.clone(),
        client_id: Some(a.client_id.clone()),
        action,
    };
    // Cannot fail for these types; an empty head is refused by the script.
    let json = serde_json::to_string(&change).unwrap_or_default();
    // Quotes inside strings are escaped: the first `"ids":[]` is the key.
    let cut = matches!(m.action, ChangeAction::Clear { .. })
        .then(|| json.find(r#""ids":[]"#))
        .flatten();
    match cut {
        Some(at) => {
            let (head, tail) = json.split_at(at + r#""ids":["#.len());
            (head.to_string(), tail.to_string())
        }
        None => (json, String::new()),
    }
}

/// Adds moderation step `m` of `a` to `pipe`, run by the script `sha`.
pub(super) fn push(
    pipe: &mut redis::Pipeline,
    sha: &str,
    a: &Append,
    m: &Moderation,
    stream_len: usize,
    dedup_secs: u64,
) {
    let (head, tail) = json_parts(a, m);
    let kind = match m.action {
        ChangeAction::Remove { .. } => "remove",
        ChangeAction::Clear { .. } => "clear",
        _ => "other",
    };
    let (require, field, value) = match &m.require {
        Some((f, v)) => ("1", f.as_str(), v.as_str()),
        None => ("0", "", ""),
    };
    let (clear_session, since) = match &m.clear {
        Some((s, t)) => (s.as_str(), *t),
        None => ("", 0),
    };
    let role = serde_json::to_string(&m.role).unwrap_or_else(|_| "null".into());
    let room = &a.room;
    let cmd = pipe
        .cmd("EVALSHA")
        .arg(sha)
        .arg(7)
        .arg(seq_key(room))
        .arg(log_key(room))
        .arg(client_key(room, &a.session, &a.client_id))
        .arg(body_key(room))
        .arg(floor_key(room))
        .arg(mod_key(room))
        .arg(audit_key(room))
        .arg(head)
        .arg(tail)
        .arg(stream_len)
        .arg(channel(room))
        .arg(dedup_secs)
        .arg(&*a.session)
        .arg(kind)
        .arg(m.target)
        .arg(require)
        .arg(field)
        .arg(value)
        .arg(clear_session)
        .arg(since)
        .arg(MAX_CLEARED)
        .arg(CLEAR_SCAN)
        .arg(CLOCK_SLACK_MS)
        .arg(rx_prefix(room))
        .arg(role)
        .arg(AUDIT_KEPT);
    for (f, v) in &m.writes {
        cmd.arg(f)
            .arg(if v.is_some() { "1" } else { "0" })
            .arg(v.as_deref().unwrap_or(""));
    }
}

/// A stream entry as XRANGE answers it.
type StreamEntry = (String, HashMap<String, String>);

impl RedisLog {
    /// Every moderation field of `room`, by field name.
    pub async fn moderation(&self, room: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> =
            conn.hgetall(mod_key(room)).await.map_err(redis_error)?;
        let mut all: Vec<(String, String)> = all.into_iter().collect();
        all.sort();
        Ok(all)
    }

    /// Sets (`Some`) or deletes one moderation field of `room`; with `only_if_absent`,
    /// sets only a missing one. Returns whether it wrote.
    pub async fn set_moderation(
        &self,
        room: &str,
        field: &str,
        value: Option<&str>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let key = mod_key(room);
        let written: i64 = match (value, only_if_absent) {
            (None, _) => conn.hdel(key, field).await,
            (Some(v), true) => conn.hset_nx(key, field, v).await,
            (Some(v), false) => conn.hset(key, field, v).await.map(|_: i64| 1),
        }
        .map_err(redis_error)?;
        Ok(written > 0)
    }

    /// Up to `limit` audit records of `room` with ids below `before`, newest first.
    pub async fn audit(
        &self,
        room: &str,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        if before == Some(0) {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(AUDIT));
        let records: Vec<String> = SCRIPT
            .key(audit_key(room))
            .arg(before.unwrap_or(0))
            .arg(limit.min(AUDIT_KEPT))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        records
            .iter()
            .map(|r| serde_json::from_str(r).map_err(|e| StoreError::Redis(e.to_string())))
            .collect()
    }

    /// The session that last posted as exactly `name` among the room's newest entries.
    pub async fn session_of(&self, room: &str, name: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let entries: Vec<StreamEntry> = redis::cmd("XREVRANGE")
            .arg(log_key(room))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(NAME_WINDOW)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(entries.into_iter().find_map(|(_, mut f)| {
            let m: ChatMessage = serde_json::from_str(f.get("m")?).ok()?;
            (m.name == name).then(|| f.remove("s")).flatten()
        }))
    }

    /// The session holding `name_key` in `room` on a live node, if any (read only).
    pub async fn name_holder(
        &self,
        room: &str,
        name_key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.presence.name_holder(room, name_key).await
    }

    /// The rooms made through joins, and those with a log.
    pub async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut rooms: Vec<String> = conn.smembers(ROOMS_KEY).await.map_err(redis_error)?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("chat:{*}:seq")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            rooms.extend(keys.iter().filter_map(|k| {
                k.strip_prefix("chat:{")
                    .and_then(|r| r.strip_suffix("}:seq"))
                    .map(str::to_string)
            }));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        rooms.sort();
        rooms.dedup();
        Ok(rooms)
    }
}
