//! Cluster-wide presence on Redis: who is in each room on any node, and who holds each name.
//!
//! Each node lists its members per room, keeps a liveness key alive, reads the rooms whose
//! members changed into its own, and holds each name for one session across all nodes.
//!
//! - A room's members are a hash, `chat:{room}:presence`, with one field per member and node
//!   (`<name key>|<node>`) holding the member and its session.
//! - Each write marks the room in `chat:presence:changed`, a sorted set scored by a counter
//!   (`chat:presence:version`), so a node reads only the rooms that changed since its last
//!   look, plus those it just created: a second's work is a few commands, not a read of
//!   every room.
//! - Each node renews `chat:node:<id>` every second with a lifetime a little under
//!   `presence_ttl_secs`. When a node's key is gone, the others drop its members (and its
//!   fields) at once: a killed node's members leave every list within the TTL.
//! - A name is held by `chat:{room}:name:<name key>` = `<session>|<node>`. It can be taken only
//!   if it is free, already this session's, or held by a node that is gone. A reservation
//!   expires; a present member's hold lasts until it leaves here.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::protocol::{Member, MessageId};
use crate::server::ids::SessionId;
use crate::server::log::types::StoreError;

/// A change of who is present on this node, for cluster mode to share with the other nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceChange {
    /// `member` (with session `sid`) is now present here in `room`.
    Here {
        room: String,
        key: String,
        member: Member,
        sid: SessionId,
    },
    /// The member under `key` is no longer present here.
    Gone {
        room: String,
        key: String,
        sid: SessionId,
    },
}

/// Members present on other nodes, by name key: the member, its session and those nodes.
pub type RemoteMembers = HashMap<String, (Member, SessionId, BTreeSet<String>)>;

/// This node's live rooms as cluster mode sees them (the hub): for presence, and for the
/// relay that hands each room the messages it has not had yet.
pub trait LiveRooms: Send + Sync + 'static {
    /// The names of the rooms that live here.
    fn room_names(&self) -> Vec<String>;

    /// The newest message id `room` has had here: `None` if it does not live here, or only
    /// holds a reservation (it reads its history when someone joins).
    fn delivered_upto(&self, room: &str) -> Option<MessageId>;

    /// Shows `room`, if it lives here, the members present on other nodes.
    fn sync_remote(&self, room: &str, remote: &RemoteMembers);

    /// Has every room report who becomes present here, and who leaves, to `sink`.
    fn share_presence(&self, sink: UnboundedSender<PresenceChange>);
}

/// How often a node renews its liveness and reads what changed.
const TICK: Duration = Duration::from_secs(1);
/// How long marks of changed rooms are kept: far longer than a tick.
const CHANGES_KEPT: i64 = 100_000;

/// Takes a name for `<sid>|<node>` unless another session holds it on a live node: KEYS name
/// lock; ARGV sid, node, ms (0: no expiry). A holder's node is live while `chat:node:<node>`
/// exists.
const HOLD: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local sid, node = string.match(v, '^(.*)|([^|]*)$')
  if sid ~= ARGV[1] and node and redis.call('EXISTS', 'chat:node:' .. node) == 1 then
    return 0
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
end
return 1
"#;

/// Frees a name lock if it holds exactly ARGV[1]: KEYS name lock.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Marks rooms (ARGV) as changed, under the next version number.
const MARK: &str = r#"
local v = redis.call('INCR', 'chat:presence:version')
for i = 1, #ARGV do redis.call('ZADD', 'chat:presence:changed', v, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', 'chat:presence:changed', '-inf', v - tonumber(KEYS[1]))
return v
"#;

fn presence_key(room: &str) -> String {
    format!("chat:{{{room}}}:presence")
}

fn name_lock(room: &str, key: &str) -> String {
    format!("chat:{{{room}}}:name:{key}")
}

fn node_key(node: &str) -> String {
    format!("chat:node:{node}")
}

/// One member on one node, as stored in the presence hash.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    avatar: String,
    sid: String,
}

/// This node's part of cluster-wide presence.
pub struct Presence {
    conn: ConnectionManager,
    /// This node's id: random per start.
    node: String,
    ttl: Duration,
}

/// What the presence task knows between ticks.
struct View {
    /// Read everything again (at start, and after losing Redis).
    reset: bool,
    /// The version of the newest change read.
    version: i64,
    /// The other nodes' members of each room served here, as last read.
    remote: HashMap<String, RemoteMembers>,
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

    /// Holds `name_key` in `room` for session `sid` for `for_ms` (a reservation); false if
    /// another session on a live node has it.
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
            .arg(&self.node)
            .arg(for_ms.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        Ok(held == 1)
    }

    /// Lets go of this node's hold on a name for `sid`, if it is still that (best effort: a
    /// reservation expires anyway).
    pub async fn release_name(&self, room: &str, name_key: &str, sid: &SessionId) {
        let mut conn = self.conn.clone();
        let released: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(name_lock(room, name_key))
            .arg(format!("{}|{}", sid.0, self.node))
            .query_async(&mut conn)
            .await;
        if let Err(e) = released {
            tracing::debug!(error = %e, "cannot release a name hold");
        }
    }

    /// The session holding `name_key` in `room` on a live node, if any; changes nothing.
    pub async fn name_holder(
        &self,
        room: &str,
        name_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let held: Option<String> = redis::cmd("GET")
            .arg(name_lock(room, name_key))
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        let Some((sid, node)) = held.as_deref().and_then(|v| v.rsplit_once('|')) else {
            return Ok(None);
        };
        let live: bool = redis::cmd("EXISTS")
            .arg(node_key(node))
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        Ok(live.then(|| sid.to_string()))
    }

    /// Everyone present in `room` on any node, once each (for the operator; not in join order).
    pub async fn members(&self, room: &str) -> Result<Vec<Member>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(presence_key(room))
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut members: Vec<Member> = fields
            .iter()
            .filter_map(|(field, json)| {
                let (key, _) = field.rsplit_once('|')?;
                let e = serde_json::from_str::<Entry>(json).ok()?;
                seen.insert(key.to_string()).then_some(Member {
                    name: e.name,
                    avatar: e.avatar,
                })
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(members)
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lifetime of this node's liveness key: two ticks under the TTL, so that the others
    /// notice a dead node within it.
    fn alive_for(&self) -> Duration {
        self.ttl.saturating_sub(2 * TICK).max(2 * TICK)
    }

    /// Until `changes` ends: shares this node's members and reads the others' into `rooms`.
    pub async fn run(
        self: Arc<Self>,
        rooms: Arc<dyn LiveRooms>,
        mut changes: UnboundedReceiver<PresenceChange>,
    ) {
        // This node's members, to write again after Redis lost them.
        let mut here: HashMap<(String, String), (Member, SessionId)> = HashMap::new();
        let mut view = View {
            reset: true,
            version: 0,
            remote: HashMap::new(),
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let Some(change) = change else { return };
                    let mut batch = vec![change];
                    while let Ok(more) = changes.try_recv() {
                        batch.push(more);
                    }
                    for change in &batch {
                        match change {
                            PresenceChange::Here { room, key, member, sid } => {
                                here.insert((room.clone(), key.clone()), (member.clone(), sid.clone()));
                            }
                            PresenceChange::Gone { room, key, .. } => {
                                here.remove(&(room.clone(), key.clone()));
                            }
                        }
                    }
                    let written = self.write(&batch, &view).await;
                    healthy = self.note(healthy, written);
                    if !healthy {
                        view.reset = true;
                    }
                }
                _ = tick.tick() => {
                    if !healthy {
                        // Redis may have restarted without our entries: write them all again.
                        let all: Vec<PresenceChange> = here
                            .iter()
                            .map(|((room, key), (member, sid))| PresenceChange::Here {
                                room: room.clone(),
                                key: key.clone(),
                                member: member.clone(),
                                sid: sid.clone(),
                            })
                            .collect();
                        let written = self.write(&all, &view).await;
                        healthy = self.note(healthy, written);
                    }
                    let read = self.tick(&*rooms, &mut view).await;
                    healthy = self.note(healthy, read);
                    if !healthy {
                        view.reset = true;
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

    /// Writes these changes of this node's members, and marks their rooms, in one pipeline.
    /// A member who leaves here but is still on another node (tabs behind a balancer) hands
    /// its name to that node rather than freeing it.
    async fn write(&self, changes: &[PresenceChange], view: &View) -> redis::RedisResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut rooms = BTreeSet::new();
        for change in changes {
            match change {
                PresenceChange::Here {
                    room,
                    key,
                    member,
                    sid,
                } => {
                    let entry = Entry {
                        name: member.name.clone(),
                        avatar: member.avatar.clone(),
                        sid: sid.0.clone(),
                    };
                    let json = serde_json::to_string(&entry).unwrap_or_default();
                    pipe.cmd("HSET")
                        .arg(presence_key(room))
                        .arg(format!("{key}|{}", self.node))
                        .arg(json)
                        .ignore();
                    // Held while present here: no expiry.
                    pipe.cmd("EVAL")
                        .arg(HOLD)
                        .arg(1)
                        .arg(name_lock(room, key))
                        .arg(&sid.0)
                        .arg(&self.node)
                        .arg(0)
                        .ignore();
                    rooms.insert(room);
                }
                PresenceChange::Gone { room, key, sid } => {
                    pipe.cmd("HDEL")
                        .arg(presence_key(room))
                        .arg(format!("{key}|{}", self.node))
                        .ignore();
                    let elsewhere = view
                        .remote
                        .get(room)
                        .and_then(|r| r.get(key))
                        .filter(|(_, other, _)| other == sid)
                        .and_then(|(_, _, nodes)| nodes.iter().next());
                    match elsewhere {
                        Some(node) => pipe
                            .cmd("EVAL")
                            .arg(HOLD)
                            .arg(1)
                            .arg(name_lock(room, key))
                            .arg(&sid.0)
                            .arg(node)
                            .arg(0)
                            .ignore(),
                        None => pipe
                            .cmd("EVAL")
                            .arg(RELEASE)
                            .arg(1)
                            .arg(name_lock(room, key))
                            .arg(format!("{}|{}", sid.0, self.node))
                            .ignore(),
                    };
                    rooms.insert(room);
                }
            }
        }
        let mut mark = redis::cmd("EVAL");
        mark.arg(MARK).arg(1).arg(CHANGES_KEPT);
        for room in rooms {
            mark.arg(room);
        }
        pipe.add_command(mark).ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    /// One second's work: read the rooms that changed (and those new here), renew this
    /// node's liveness, and drop the members of nodes that are gone.
    async fn tick(&self, rooms: &dyn LiveRooms, view: &mut View) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        if view.reset {
            // At start, or after losing Redis: read every room again from the current version.
            let version: Option<i64> = redis::cmd("GET")
                .arg("chat:presence:version")
                .query_async(&mut conn)
                .await?;
            view.version = version.unwrap_or(0);
            view.remote.clear();
            view.reset = false;
        }
        let live: HashSet<String> = rooms.room_names().into_iter().collect();
        view.remote.retain(|room, _| live.contains(room));
        let changed: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg("chat:presence:changed")
            .arg(format!("({}", view.version))
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        if let Some(v) = changed.iter().map(|(_, v)| *v).max() {
            view.version = view.version.max(v);
        }
        // Rooms to read: changed ones that live here, and live ones never read.
        let mut touched: BTreeSet<String> = changed
            .into_iter()
            .map(|(room, _)| room)
            .filter(|room| live.contains(room))
            .collect();
        touched.extend(
            live.iter()
                .filter(|r| !view.remote.contains_key(*r))
                .cloned(),
        );
        if !touched.is_empty() {
            let mut pipe = redis::pipe();
            for room in &touched {
                pipe.cmd("HGETALL").arg(presence_key(room));
            }
            let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            for (room, fields) in touched.iter().zip(hashes) {
                view.remote.insert(room.clone(), self.others(&fields));
            }
        }
        // Renew this node, and ask after every node the rooms here list members of.
        let nodes: Vec<String> = view
            .remote
            .values()
            .flat_map(|r| r.values().flat_map(|(_, _, n)| n.iter().cloned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(node_key(&self.node))
            .arg(1)
            .arg("PX")
            .arg(self.alive_for().as_millis() as u64)
            .ignore();
        for node in &nodes {
            pipe.cmd("EXISTS").arg(node_key(node));
        }
        let alive: Vec<bool> = pipe.query_async(&mut conn).await?;
        let dead: HashSet<&String> = nodes
            .iter()
            .zip(alive)
            .filter(|(_, up)| !up)
            .map(|(n, _)| n)
            .collect();
        // Members of nodes that are gone leave now; their fields and names go too.
        let mut cleanup = redis::pipe();
        if !dead.is_empty() {
            for (room, remote) in view.remote.iter_mut() {
                let before = remote.len();
                for (key, (_, sid, nodes)) in remote.iter_mut() {
                    for node in nodes.iter().filter(|n| dead.contains(n)) {
                        cleanup
                            .cmd("HDEL")
                            .arg(presence_key(room))
                            .arg(format!("{key}|{node}"))
                            .ignore();
                        cleanup
                            .cmd("EVAL")
                            .arg(RELEASE)
                            .arg(1)
                            .arg(name_lock(room, key))
                            .arg(format!("{}|{node}", sid.0))
                            .ignore();
                        touched.insert(room.clone());
                    }
                    nodes.retain(|n| !dead.contains(n));
                }
                remote.retain(|_, (_, _, nodes)| !nodes.is_empty());
                if remote.len() != before {
                    touched.insert(room.clone());
                }
            }
        }
        for room in &touched {
            if let Some(remote) = view.remote.get(room) {
                rooms.sync_remote(room, remote);
            }
        }
        if !dead.is_empty() {
            cleanup.query_async::<()>(&mut conn).await?;
        }
        Ok(())
    }

    /// The members of a presence hash that are on other nodes.
    fn others(&self, fields: &HashMap<String, String>) -> RemoteMembers {
        let mut remote = RemoteMembers::new();
        for (field, json) in fields {
            let Some((key, node)) = field.rsplit_once('|') else {
                continue;
            };
            if node == self.node {
                continue;
            }
            let Ok(e) = serde_json::from_str::<Entry>(json) else {
                continue;
            };
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
        remote
    }
}
