//! Cluster-wide presence on Redis: each node lists its members with an expiry it keeps renewing, reads the other nodes' members into its rooms every second, and holds each name for one session across all nodes.
//!
//! A room's members are a hash, `chat:{room}:presence`, with one field per member and node
//! (`<name key>|<node>`) holding the member, its session and an expiry. A node that dies stops
//! renewing its fields, so its members leave every other node's list once they expire, within
//! `presence_ttl_secs`. A name is held by a key of its own, `chat:{room}:name:<name key>`,
//! taken with `SET` only if free or already this session's, so two nodes cannot give one name
//! to two people.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedReceiver;

use super::hub::Hub;
use super::room::{PresenceChange, RemoteMembers};
use super::session::SessionId;
use super::store::StoreError;
use crate::protocol::Member;

/// How often a node reads the other nodes' members.
const SYNC: Duration = Duration::from_secs(1);

/// Takes or renews a name for a session unless another one holds it: KEYS name; ARGV sid, ms.
const HOLD: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// Frees a name if this session holds it: KEYS name; ARGV sid.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

fn presence_key(room: &str) -> String {
    format!("chat:{{{room}}}:presence")
}

fn name_lock(room: &str, key: &str) -> String {
    format!("chat:{{{room}}}:name:{key}")
}

/// A member present on this node: (room, name key) → (member, session).
type Key = (String, String);
type Who = (Member, SessionId);

/// One member on one node, as stored in the presence hash.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    avatar: String,
    sid: String,
    /// Milliseconds since the Unix epoch after which the entry no longer counts.
    until: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This node's part of cluster-wide presence.
pub struct Presence {
    conn: ConnectionManager,
    /// This node's id in presence fields: random per start.
    node: String,
    ttl: Duration,
}

impl Presence {
    pub fn new(conn: ConnectionManager, ttl: Duration) -> Presence {
        let node: u64 = rand::random();
        Presence {
            conn,
            node: format!("{node:016x}"),
            ttl,
        }
    }

    /// Holds `name` in `room` for session `sid` for `for_ms`; false if another session has it.
    pub async fn hold_name(
        &self,
        room: &str,
        name_key: &str,
        sid: &SessionId,
        for_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = redis::cmd("EVAL")
            .arg(HOLD)
            .arg(1)
            .arg(name_lock(room, name_key))
            .arg(&sid.0)
            .arg(for_ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        Ok(held == 1)
    }

    /// Until `changes` ends: shares this node's members and reads the others' into `hub`.
    pub async fn run(
        self: Arc<Self>,
        hub: Arc<Hub>,
        mut changes: UnboundedReceiver<PresenceChange>,
    ) {
        // This node's members: (room, key) → (member, session).
        let mut here: HashMap<Key, Who> = HashMap::new();
        let mut tick = tokio::time::interval(SYNC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = (self.ttl.as_secs() / 5).max(1);
        let mut ticks = 0u64;
        let mut healthy = true;
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let Some(change) = change else { return };
                    let written = match change {
                        PresenceChange::Here { room, key, member, sid } => {
                            let (k, who) = ((room, key), (member, sid));
                            let r = self.write(&[(&k, &who)]).await;
                            here.insert(k, who);
                            r
                        }
                        PresenceChange::Gone { room, key, sid } => {
                            here.remove(&(room.clone(), key.clone()));
                            self.remove(&room, &key, &sid).await
                        }
                    };
                    healthy = self.note(healthy, written);
                }
                _ = tick.tick() => {
                    ticks += 1;
                    if ticks.is_multiple_of(every) || !healthy {
                        let all: Vec<(&Key, &Who)> = here.iter().collect();
                        let written = self.write(&all).await;
                        healthy = self.note(healthy, written);
                    }
                    if healthy {
                        let read = self.read_into(&hub).await;
                        healthy = self.note(healthy, read);
                    }
                }
            }
        }
    }

    /// Logs the first failure of a run of them, and the recovery.
    fn note(&self, healthy: bool, result: redis::RedisResult<()>) -> bool {
        match (healthy, result) {
            (true, Err(e)) => {
                tracing::warn!(error = %e, "cannot share presence through Redis");
                false
            }
            (false, Ok(())) => {
                tracing::info!("sharing presence through Redis again");
                true
            }
            (_, r) => r.is_ok(),
        }
    }

    /// Writes (or renews) these members' entries and name holds, in one pipeline.
    async fn write(&self, members: &[(&Key, &Who)]) -> redis::RedisResult<()> {
        if members.is_empty() {
            return Ok(());
        }
        // Entries expire two sync periods before the TTL, so that others see them go within it.
        let valid = self.ttl.saturating_sub(2 * SYNC).max(SYNC);
        let until = now_ms() + valid.as_millis() as i64;
        let mut pipe = redis::pipe();
        for &((room, key), (member, sid)) in members {
            let entry = Entry {
                name: member.name.clone(),
                avatar: member.avatar.clone(),
                sid: sid.0.clone(),
                until,
            };
            let json = serde_json::to_string(&entry).unwrap_or_default();
            pipe.cmd("HSET")
                .arg(presence_key(room))
                .arg(format!("{key}|{}", self.node))
                .arg(json)
                .ignore();
            pipe.cmd("EVAL")
                .arg(HOLD)
                .arg(1)
                .arg(name_lock(room, key))
                .arg(&sid.0)
                .arg(self.ttl.as_millis() as u64)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    async fn remove(&self, room: &str, key: &str, sid: &SessionId) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("HDEL")
            .arg(presence_key(room))
            .arg(format!("{key}|{}", self.node))
            .ignore();
        pipe.cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(name_lock(room, key))
            .arg(&sid.0)
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Reads every live room's members on other nodes into it; drops expired entries.
    async fn read_into(&self, hub: &Hub) -> redis::RedisResult<()> {
        let rooms = hub.room_names();
        if rooms.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.cmd("HGETALL").arg(presence_key(room));
        }
        let mut conn = self.conn.clone();
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let now = now_ms();
        let mut expired = redis::pipe();
        let mut any_expired = false;
        for (room, fields) in rooms.iter().zip(hashes) {
            let mut remote = RemoteMembers::new();
            for (field, json) in fields {
                let Some((key, node)) = field.rsplit_once('|') else {
                    continue;
                };
                let Ok(e) = serde_json::from_str::<Entry>(&json) else {
                    continue;
                };
                if e.until < now {
                    expired
                        .cmd("HDEL")
                        .arg(presence_key(room))
                        .arg(&field)
                        .ignore();
                    any_expired = true;
                    continue;
                }
                if node == self.node {
                    continue;
                }
                let member = Member {
                    name: e.name,
                    avatar: e.avatar,
                };
                remote
                    .entry(key.to_string())
                    .or_insert_with(|| (member, SessionId(e.sid), BTreeSet::new()))
                    .2
                    .insert(node.to_string());
            }
            if let Some(r) = hub.room(room) {
                r.sync_remote(&remote);
            }
        }
        if any_expired {
            expired.query_async::<()>(&mut conn).await?;
        }
        Ok(())
    }
}
