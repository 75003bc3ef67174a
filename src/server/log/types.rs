//! The log's interface, the same for both logs.
//!
//! What an append carries, what becomes of it, where that goes, and how it fails.
//!
//! Both logs (SQLite on one node, Redis in cluster mode) take [`Append`]s and hand what
//! became of them to a [`Delivery`] (the hub), which broadcasts and so acknowledges.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

use crate::protocol::{
    Change, ChangeAction, ChatMessage, ErrorCode, Member, MessageId, Role, Timestamp,
};

/// Appends queued for the log before senders are told the server is busy.
pub const QUEUE: usize = 65_536;

/// Why the log could not do something.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the message database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the folder for the message database {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the message database {path} is unusable ({source}); move it away or restore a backup"
    )]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the message database is full (its max_db_mb limit or the disk)")]
    Full,
    #[error("the message store is busy; try again")]
    Busy,
    #[error("the message store is closed")]
    Closed,
    #[error("message store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("message store task failed: {0}")]
    Task(String),
    #[error("the message store cannot be written: {0}")]
    NotWritable(String),
    #[error("the shared message store (Redis) failed: {0}")]
    Redis(String),
}

impl StoreError {
    /// How a failed store write is reported to the sender.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Busy => ErrorCode::Busy,
            _ => ErrorCode::StorageFailed,
        }
    }
}

/// Most reactions (member and emoji pairs) one message keeps.
pub const MAX_REACTIONS: usize = 500;

/// A message or a change to store.
#[derive(Clone, Debug)]
pub struct Append {
    pub room: Arc<str>,
    /// The sending connection, for the confirmation or the error.
    pub conn: u64,
    /// Scopes `client_id`: the sender's session. Edits and deletions must come from the
    /// session that posted the message.
    pub session: Arc<str>,
    pub client_id: String,
    pub author: Member,
    pub action: Action,
    /// When the server received it, for the fan-out latency.
    pub received: Instant,
}

/// What an append asks the log to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new message, perhaps a reply to `reply_to`.
    Post {
        text: String,
        reply_to: Option<MessageId>,
    },
    /// New text for the author's own message `target`.
    Edit { target: MessageId, text: String },
    /// Deletes the author's own message `target`: its text is removed from the store.
    Delete { target: MessageId },
    /// Sets whether the author reacts to `target` with `emoji`.
    React {
        target: MessageId,
        emoji: String,
        on: bool,
    },
    /// A moderation step the chat layer has checked (the author is the moderator; the
    /// server's operator is an author with an empty name).
    Moderate(Box<Moderation>),
}

/// A moderation step: stored as the room's next entry (a change), together with its
/// effects, in one atomic step, and recorded in the room's audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moderation {
    /// What it does. For `Clear`, the log fills in `ids`.
    pub action: ChangeAction,
    /// `Remove`: the message; refused with `NoSuchMessage` unless it exists and is not
    /// deleted. Its text and reactions are removed from the store.
    pub target: MessageId,
    /// `Clear`: the session whose messages with `ts >= since` are removed like `Remove`
    /// (at most `moderation::MAX_CLEARED`, the newest).
    pub clear: Option<(String, Timestamp)>,
    /// The room's moderation fields to set (`Some`) or delete (`None`) in the same step.
    pub writes: Vec<(String, Option<String>)>,
    /// Refused with `Refusal::Stale` unless this field holds this value now (one-time links).
    pub require: Option<(String, String)>,
    /// The author's role, for the audit log (`None`: the operator).
    pub role: Option<Role>,
}

/// An entry of a room's log: a message (in its newest state) or a change to one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Message(ChatMessage),
    Change(Change),
}

impl Entry {
    pub fn id(&self) -> MessageId {
        match self {
            Entry::Message(m) => m.id,
            Entry::Change(c) => c.id,
        }
    }

    /// The message, if this entry is one.
    pub fn into_message(self) -> Option<ChatMessage> {
        match self {
            Entry::Message(m) => Some(m),
            Entry::Change(_) => None,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Entry::Message(m) => m.client_id.as_deref(),
            Entry::Change(c) => c.client_id.as_deref(),
        }
    }
}

/// Why the log refused a change (the sender is told; nothing is stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("Only the author of a message can edit or delete it")]
    NotAuthor,
    #[error("That message does not exist here (deleted, or no longer kept)")]
    NoSuchMessage,
    #[error("That message has as many reactions as it can keep")]
    TooManyReactions,
    #[error("That link was already used, or is no longer valid")]
    Stale,
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::NotAuthor => ErrorCode::NotAuthor,
            Refusal::NoSuchMessage => ErrorCode::NoSuchMessage,
            Refusal::TooManyReactions => ErrorCode::TooManyReactions,
            Refusal::Stale => ErrorCode::InvalidToken,
        }
    }
}

/// What became of an append.
#[derive(Debug)]
pub enum Outcome {
    /// Newly stored: broadcast it.
    Stored(Entry),
    /// This client id was stored before, as this entry: confirm it to the sender only.
    Duplicate(Entry),
    /// Refused by the log's rules (not the author, no such message): tell the sender.
    Refused(Refusal),
    /// Not stored.
    Failed(StoreError),
}

/// Receives what the log committed (the hub).
///
/// SQLite hands every append's outcome to [`Delivery::deliver`], in commit order. The Redis
/// log hands re-sends and failures there too, but its stored messages come back through its
/// relay, from this node or another, and go to [`Delivery::deliver_committed`].
pub trait Delivery: Send + Sync + 'static {
    /// What became of `append`: broadcast to its room, or answered to its sender.
    fn deliver(&self, append: Append, outcome: Outcome);

    /// Broadcasts `entry`, committed to a shared log, to `room` if it lives here. The
    /// relay calls this in id order, once per entry. `received` is when this node received
    /// it, if it did; `None` (another node's entry) counts its fan-out latency from now.
    fn deliver_committed(&self, room: &str, entry: Entry, received: Option<Instant>);

    /// Cluster mode: `name` is typing in `room` on another node (volatile, never stored).
    fn deliver_typing(&self, room: &str, name: &str);

    /// Cluster mode: `entry` was just committed to `room`'s shared log (the relay tells of
    /// every entry as it hears it, whether or not the room lives here).
    fn heard(&self, _room: &str, _entry: &Entry) {}
}

/// Milliseconds since the Unix epoch: a message's timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
