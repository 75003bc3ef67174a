//! What the HTTP API's server functions send: a room's first paint, a join's outcome, the status page's figures.

use serde::{Deserialize, Serialize};

use super::{ChatMessage, Member};

/// What the first paint of a room needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub room: String,
    /// The first members in join order (all of them in a room below the presence list limit).
    pub members: Vec<Member>,
    /// Members online in all.
    pub online: usize,
    pub recent: Vec<ChatMessage>,
    /// The room's log position `recent` was read at (messages and changes): the resume point.
    #[serde(default)]
    pub upto: u64,
    /// This browser's member, if it holds a valid session whose name is still its own.
    pub me: Option<Member>,
    pub max_message_chars: usize,
    /// Size of a history page: fewer recent messages than this means there is nothing older.
    pub page_size: usize,
}

/// Why a join was refused, for the UI to word (the refusal's `message` keeps the server's English).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    NameLength,
    NameInvisible,
    NameMixedScripts,
    RoomName,
    Avatar,
    Restarting,
    Unavailable,
    NameTaken,
    RoomFull,
    /// Anything else (a ban with its reason, a newer server's code): show the message.
    #[default]
    #[serde(other)]
    Other,
}

/// Which form field a refused join is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinField {
    Name,
    Avatar,
    Room,
}

/// Result of asking to join a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinOutcome {
    /// Joined: the session cookie is set and the name reserved for this browser.
    Joined(Member),
    /// Refused, with the reason to show next to `field`.
    /// `code` says why for the UI's words (absent from older servers: `other`, shown as `message`).
    Refused {
        field: JoinField,
        message: String,
        #[serde(default)]
        code: RefusalCode,
    },
    /// Joined, and the room is new: `token` is its one-time owner link's (`/r/<room>?claim=<token>`),
    /// shown once (servers with `room_owner_on_create`).
    Created { member: Member, token: String },
}

/// One moderation action as the audit log keeps it: the change it made, and who made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The change (its `name` is the moderator's; empty for the operator).
    pub change: super::Change,
    /// The moderator's role then (`None`: the server's operator).
    #[serde(default)]
    pub role: Option<super::Role>,
}

/// One second of the server's life, for the status page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusSample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub connections: u64,
    pub rooms: u64,
    pub members: u64,
    /// Messages broadcast per second over the last second.
    pub messages_per_sec: f64,
    /// Message frames queued to members per second over the last second.
    pub deliveries_per_sec: f64,
}

/// What the status page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub version: String,
    pub uptime_secs: u64,
    /// Oldest first, one a second.
    pub samples: Vec<StatusSample>,
}
