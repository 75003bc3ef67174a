//! Where messages are kept: SQLite on one node, Redis in cluster mode.
//!
//! One interface for both: [`MessageLog`] to append and read, and what an append becomes
//! handed to a [`Delivery`] (the hub), from either log (see `types.rs`). Cluster mode also
//! shares presence across nodes (`presence.rs`), and sees this node's rooms through
//! [`LiveRooms`].

pub mod presence;
pub mod redis;
pub mod sqlite;
pub mod types;

use std::sync::Arc;

use crate::protocol::pages::AuditEntry;
use crate::protocol::{ChatMessage, Member, MessageId};
use crate::server::ids::SessionId;
use crate::server::log::redis::RedisLog;
use crate::server::log::sqlite::{Appender, Store};

pub use presence::{LiveRooms, PresenceChange, RemoteMembers};
pub use types::{
    now_ms, Action, Append, Delivery, Entry, Moderation, Outcome, Refusal, StoreError,
    MAX_REACTIONS, QUEUE,
};

/// Most audit records kept per room (the oldest go first).
pub const AUDIT_KEPT: usize = 10_000;

/// The message log the server appends to and reads history from.
#[derive(Clone)]
pub enum MessageLog {
    /// One node: SQLite, with its writer thread.
    Local {
        store: Arc<Store>,
        appender: Appender,
    },
    /// Several nodes on one Redis.
    Cluster(Arc<RedisLog>),
}

impl MessageLog {
    /// Queues a message or change for storing; its confirmation or error comes through the hub.
    pub fn append(&self, append: Append) -> Result<(), StoreError> {
        match self {
            MessageLog::Local { appender, .. } => appender.append(append),
            MessageLog::Cluster(log) => log.append(append),
        }
    }

    /// Nothing waits to be stored.
    pub fn is_idle(&self) -> bool {
        match self {
            MessageLog::Local { appender, .. } => appender.is_idle(),
            MessageLog::Cluster(log) => log.is_idle(),
        }
    }

    /// A room was just created on this node (cluster mode: it may have missed a message).
    pub fn room_created(&self, room: &str) {
        if let MessageLog::Cluster(log) = self {
            log.catch_up(room);
        }
    }

    /// How many rooms the log keeps, counted against `max_rooms`: on one node those with a
    /// history, in cluster mode those made through joins.
    pub async fn room_count(&self) -> Result<usize, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.room_count().await,
            MessageLog::Cluster(log) => log.room_count().await,
        }
    }

    /// Does `room` exist anywhere in the log: a history, or in cluster mode a join on any node?
    pub async fn room_known(&self, room: &str) -> Result<bool, StoreError> {
        if self.last_id(room).await? > 0 {
            return Ok(true);
        }
        match self {
            MessageLog::Local { .. } => Ok(false),
            MessageLog::Cluster(log) => log.room_noted(room).await,
        }
    }

    /// A join made `room`: counted in cluster mode (on one node its first message counts it).
    pub async fn note_room(&self, room: &str) -> Result<(), StoreError> {
        match self {
            MessageLog::Local { .. } => Ok(()),
            MessageLog::Cluster(log) => log.note_room(room).await,
        }
    }

    pub async fn last_id(&self, room: &str) -> Result<MessageId, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.last_id(room).await,
            MessageLog::Cluster(log) => log.last_id(room).await,
        }
    }

    /// The `limit` newest messages with ids up to `upto`, oldest first, in their newest state.
    pub async fn recent(
        &self,
        room: &str,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.recent(room, upto, limit).await,
            MessageLog::Cluster(log) => log.recent(room, upto, limit).await,
        }
    }

    /// Up to `limit` messages older than `before`, oldest first, in their newest state.
    pub async fn before(
        &self,
        room: &str,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.before(room, before, limit).await,
            MessageLog::Cluster(log) => log.before(room, before, limit).await,
        }
    }

    /// Up to `limit` entries with `after < id <= upto`, oldest first: messages in their
    /// newest state, and changes (an edit with the message's newest text).
    pub async fn between(
        &self,
        room: &str,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.between(room, after, upto, limit).await,
            MessageLog::Cluster(log) => log.between(room, after, upto, limit).await,
        }
    }

    /// Cluster mode: tells the other nodes that `name` is typing in `room` (volatile: not
    /// stored, and lost if Redis is away). One node has nobody to tell.
    pub fn typing(&self, room: &str, name: &str) {
        if let MessageLog::Cluster(log) = self {
            log.typing(room, name);
        }
    }

    /// The secret that signs sessions, made on first use and kept with the messages, so that
    /// sessions outlive restarts (and, in cluster mode, are good on every node).
    pub async fn session_secret(&self) -> Result<Vec<u8>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.session_secret().await,
            MessageLog::Cluster(log) => log.session_secret().await,
        }
    }

    /// Holds `name_key` in `room` for session `sid` for `for_ms` on every node (cluster mode;
    /// one node's rooms check names themselves). False if another session holds it.
    pub async fn hold_name(
        &self,
        room: &str,
        name_key: &str,
        sid: &SessionId,
        for_ms: u64,
    ) -> Result<bool, StoreError> {
        match self {
            MessageLog::Local { .. } => Ok(true),
            MessageLog::Cluster(log) => log.presence().hold_name(room, name_key, sid, for_ms).await,
        }
    }

    /// Lets go of a hold taken by [`MessageLog::hold_name`] (cluster mode), if it is still ours.
    pub async fn release_name(&self, room: &str, name_key: &str, sid: &SessionId) {
        if let MessageLog::Cluster(log) = self {
            log.presence().release_name(room, name_key, sid).await;
        }
    }

    /// Starts deleting messages older than `days` in the background (SQLite: in batches
    /// between commits; cluster mode: trimming the Redis streams).
    pub fn start_retention(&self, days: u64) {
        match self {
            MessageLog::Local { appender, .. } => {
                crate::server::log::sqlite::spawn_retention(appender.clone(), days);
            }
            MessageLog::Cluster(log) => {
                log.start_retention(days);
            }
        }
    }

    /// Stops storing at shutdown: commits what is queued and closes the SQLite writer,
    /// leaving its WAL empty (cluster mode: nothing to do).
    pub async fn close(&self) {
        if let MessageLog::Local { appender, .. } = self {
            appender.close().await;
        }
    }

    /// Could a message be stored now?
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            MessageLog::Local { store, appender } => store.check_writable(appender).await,
            MessageLog::Cluster(log) => log.check_writable().await,
        }
    }

    /// Every moderation field of `room` (roles, bans, mutes, settings, links), as written
    /// by [`Moderation::writes`] and [`MessageLog::set_moderation`].
    pub async fn moderation(&self, room: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.moderation(room).await,
            MessageLog::Cluster(log) => log.moderation(room).await,
        }
    }

    /// Sets (`Some`) or deletes one moderation field of `room` outside the log (e.g. a ban's
    /// address, an invite). With `only_if_absent`, sets it only if it is not there; returns
    /// whether it wrote.
    pub async fn set_moderation(
        &self,
        room: &str,
        field: &str,
        value: Option<&str>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        match self {
            MessageLog::Local { appender, .. } => {
                appender
                    .set_moderation(room, field, value, only_if_absent)
                    .await
            }
            MessageLog::Cluster(log) => {
                log.set_moderation(room, field, value, only_if_absent).await
            }
        }
    }

    /// Up to `limit` audit records of `room` with ids below `before` (all: `None`), newest first.
    pub async fn audit(
        &self,
        room: &str,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.audit(room, before, limit).await,
            MessageLog::Cluster(log) => log.audit(room, before, limit).await,
        }
    }

    /// The session that last posted as `name` (exactly) among the room's newest 1000 entries.
    pub async fn session_of(&self, room: &str, name: &str) -> Result<Option<String>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.session_of(room, name).await,
            MessageLog::Cluster(log) => log.session_of(room, name).await,
        }
    }

    /// Cluster mode: the session holding `name_key` in `room` on any node (one node's rooms
    /// know their own holds).
    pub async fn name_holder(
        &self,
        room: &str,
        name_key: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            MessageLog::Local { .. } => Ok(None),
            MessageLog::Cluster(log) => log.name_holder(room, name_key).await,
        }
    }

    /// Cluster mode: everyone present in `room` on any node (one node's rooms know their own).
    pub async fn members(&self, room: &str) -> Result<Option<Vec<Member>>, StoreError> {
        match self {
            MessageLog::Local { .. } => Ok(None),
            MessageLog::Cluster(log) => log.presence().members(room).await.map(Some),
        }
    }

    /// The names of the rooms the log knows (with a history, or in cluster mode made by a join).
    pub async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        match self {
            MessageLog::Local { store, .. } => store.rooms().await,
            MessageLog::Cluster(log) => log.rooms().await,
        }
    }
}
