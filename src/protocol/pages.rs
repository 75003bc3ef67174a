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
    pub recent: Recent,
    /// The room's log position `recent` was read at (messages and changes): the resume point.
    #[serde(default)]
    pub upto: u64,
    /// This browser's member, if it holds a valid session whose name is still its own.
    pub me: Option<Member>,
    pub max_message_chars: usize,
    /// Size of a history page: fewer recent messages than this means there is nothing older.
    pub page_size: usize,
}

/// A room page's snapshot, or why there is none: loaded by the server before it renders the
/// page, and sent in it for the browser to hydrate with.
pub type PageSnapshot = Result<RoomSnapshot, PageError>;

/// Why a room's page could not load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageError {
    InvalidRoom,
    /// The server's words.
    Server(String),
}

/// A page's recent messages, oldest first. The browser keeps them as the page's JSON until the
/// chat reads them ([`Recent::messages`], from the chat's chunk): decoding them when the page
/// hydrates took their decoder into the first load, where a visitor's join view (whose preview
/// the server renders) never needs them (4.6 KB of its brotli WASM, measured).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Recent {
    #[cfg(not(feature = "hydrate"))]
    messages: Vec<ChatMessage>,
    #[cfg(feature = "hydrate")]
    json: Json,
}

/// A JSON value as the page sent it.
#[cfg(feature = "hydrate")]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct Json(Box<serde_json::value::RawValue>);

#[cfg(feature = "hydrate")]
impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}
#[cfg(feature = "hydrate")]
impl Eq for Json {}

impl Recent {
    /// The messages (in the browser, decoded now; a page whose JSON is not a list has none).
    pub fn messages(self) -> Vec<ChatMessage> {
        #[cfg(not(feature = "hydrate"))]
        {
            self.messages
        }
        #[cfg(feature = "hydrate")]
        {
            serde_json::from_str(self.json.0.get()).unwrap_or_default()
        }
    }

    pub fn is_empty(&self) -> bool {
        #[cfg(not(feature = "hydrate"))]
        {
            self.messages.is_empty()
        }
        #[cfg(feature = "hydrate")]
        {
            self.json.0.get().trim() == "[]"
        }
    }
}

#[cfg(not(feature = "hydrate"))]
impl From<Vec<ChatMessage>> for Recent {
    fn from(messages: Vec<ChatMessage>) -> Self {
        Recent { messages }
    }
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
    /// Banned from the room: `message` is the server's sentence, with the ban's end and reason.
    Banned,
    /// Anything else (a newer server's code): show the message.
    #[default]
    #[serde(other)]
    Other,
}

/// A limit that refused a join (`429`, or `503` for [`JoinLimit::TooManyRooms`]): its text is
/// the server function's error, for people; the browser words it by [`JoinLimit::from_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinLimit {
    #[error("Too many joins from your address; try again in a minute")]
    Joins,
    #[error("Your address holds too many names not yet in use; try again in a minute")]
    Reservations,
    #[error(
        "Your address has opened too many new rooms; join an existing room or try again later"
    )]
    NewRooms,
    #[error("This server has as many rooms as it keeps; join an existing room")]
    TooManyRooms,
}

impl JoinLimit {
    const ALL: [JoinLimit; 4] = [
        JoinLimit::Joins,
        JoinLimit::Reservations,
        JoinLimit::NewRooms,
        JoinLimit::TooManyRooms,
    ];

    /// Its name in a plain form's redirect (`?refused=too_many_joins`).
    pub fn slug(self) -> &'static str {
        match self {
            JoinLimit::Joins => "too_many_joins",
            JoinLimit::Reservations => "too_many_reservations",
            JoinLimit::NewRooms => "too_many_new_rooms",
            JoinLimit::TooManyRooms => "too_many_rooms",
        }
    }

    pub fn from_slug(slug: &str) -> Option<JoinLimit> {
        Self::ALL.into_iter().find(|l| l.slug() == slug)
    }

    /// The limit whose text the server sent as its error, if any.
    pub fn from_message(message: &str) -> Option<JoinLimit> {
        Self::ALL.into_iter().find(|l| l.to_string() == message)
    }
}

impl RefusalCode {
    const ALL: [RefusalCode; 11] = [
        RefusalCode::NameLength,
        RefusalCode::NameInvisible,
        RefusalCode::NameMixedScripts,
        RefusalCode::RoomName,
        RefusalCode::Avatar,
        RefusalCode::Restarting,
        RefusalCode::Unavailable,
        RefusalCode::NameTaken,
        RefusalCode::RoomFull,
        RefusalCode::Banned,
        RefusalCode::Other,
    ];

    /// Its name on the wire and in a plain form's redirect (`?refused=name_taken`).
    // A match, not serde_json's `Value`: that and jiff's `strptime` (`standing::banned_until`)
    // added 34 KB of brotli WASM to the first load.
    pub fn slug(self) -> &'static str {
        match self {
            RefusalCode::NameLength => "name_length",
            RefusalCode::NameInvisible => "name_invisible",
            RefusalCode::NameMixedScripts => "name_mixed_scripts",
            RefusalCode::RoomName => "room_name",
            RefusalCode::Avatar => "avatar",
            RefusalCode::Restarting => "restarting",
            RefusalCode::Unavailable => "unavailable",
            RefusalCode::NameTaken => "name_taken",
            RefusalCode::RoomFull => "room_full",
            RefusalCode::Banned => "banned",
            RefusalCode::Other => "other",
        }
    }

    pub fn from_slug(slug: &str) -> Option<RefusalCode> {
        Self::ALL.into_iter().find(|c| c.slug() == slug)
    }

    /// The form field a refusal with this code is shown at.
    pub fn field(self) -> JoinField {
        match self {
            RefusalCode::NameLength
            | RefusalCode::NameInvisible
            | RefusalCode::NameMixedScripts
            | RefusalCode::NameTaken => JoinField::Name,
            RefusalCode::Avatar => JoinField::Avatar,
            _ => JoinField::Room,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_named_in_an_address_read_back_as_themselves_and_nothing_else_does() {
        for code in RefusalCode::ALL {
            assert_eq!(RefusalCode::from_slug(code.slug()), Some(code));
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.slug()), "the wire's name");
        }
        assert_eq!(RefusalCode::NameTaken.slug(), "name_taken");
        assert_eq!(RefusalCode::from_slug("Send your password"), None);
        assert_eq!(RefusalCode::NameTaken.field(), JoinField::Name);
        for limit in JoinLimit::ALL {
            assert_eq!(JoinLimit::from_slug(limit.slug()), Some(limit));
            assert_eq!(JoinLimit::from_message(&limit.to_string()), Some(limit));
        }
        assert_eq!(JoinLimit::from_message("Too many"), None);
    }
}
