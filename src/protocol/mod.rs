//! The WebSocket protocol on `/ws/<room>`: every frame both ways, as JSON text tagged by `type`.
//!
//! A session starts with the browser's `join` (after the HttpOnly session cookie was set by
//! the `join_room` server function); the server answers `welcome` with the member list and
//! recent messages, then streams `message`, `joined` and `left` events. Anything the server
//! refuses is answered with an `error` event carrying an [`ErrorCode`]; the connection goes on.
//! Only the [`close`] codes end it. See `PROTOCOL.md` for examples.
//!
//! Compatibility: fields are only ever added, optional ones with `#[serde(default)]`, and
//! unknown fields are ignored, so that older clients keep working.

pub mod changes;
pub mod moderation;
pub mod pages;

use serde::{Deserialize, Serialize};

pub use changes::{Change, ChangeAction, Quote, Reaction};
pub use moderation::{ModRequest, Role, RoomSettings};

/// Server-assigned id of a room's log entry (message or change): increases by one per entry.
pub type MessageId = u64;

/// Milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// A member of a room as everyone sees them. Identity is stamped by the server from the session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Avatar id from the catalogue (`avatars::AVATARS`).
    pub avatar: String,
}

/// A chat message as stored and broadcast, in its newest state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: MessageId,
    /// When the server accepted it.
    pub ts: Timestamp,
    pub name: String,
    pub avatar: String,
    /// Empty once deleted.
    #[serde(default)]
    pub text: String,
    /// The sender's own id for this message, so that the sender can match it to what it typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// When it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<Timestamp>,
    /// Deleted by its author: shown as "message deleted", its text is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Deleted by a moderator (then `deleted` too): shown as "removed by a moderator".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// Emoji reactions, in the order each emoji was first used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

/// Frames the browser sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Enter the room as the session's member. `after` is the last message id the client has
    /// seen (its resume point); the welcome then carries only newer recent messages.
    Join {
        #[serde(default)]
        after: Option<MessageId>,
    },
    /// Post a message, optionally as a reply to message `reply_to`. `client_id` (1–64 of
    /// `A-Z a-z 0-9 - _`) makes re-sending safe: the server accepts each client id of a
    /// member at most once (for every frame that carries one).
    Send {
        client_id: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
    },
    /// Replace the text of your own message `id`.
    Edit {
        client_id: String,
        id: MessageId,
        text: String,
    },
    /// Delete your own message `id`.
    Delete { client_id: String, id: MessageId },
    /// Set whether you react to message `id` with `emoji` (one emoji).
    React {
        client_id: String,
        id: MessageId,
        emoji: String,
        on: bool,
    },
    /// The composer has text: send at most once every 3 s while it does.
    Typing,
    /// A moderator's action (see [`ModRequest`], tagged by `do`); answered by the `change`
    /// it makes, or an `error` (`not_moderator`, `no_such_member`, …).
    Moderate {
        client_id: String,
        #[serde(flatten)]
        request: ModRequest,
    },
    /// Claims a role with a one-time owner or moderator invite link's `token`.
    Claim { client_id: String, token: String },
}

/// Frames the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `join`: who you are, who is online, and the recent messages (oldest first).
    Welcome {
        you: Member,
        /// Who is online, in join order: everyone, or in a room bigger than the server's
        /// presence list limit the first members only (`online` tells how many there are).
        members: Vec<Member>,
        /// Members online in all.
        #[serde(default)]
        online: usize,
        /// With `join.after`: every message after it, in order. Without: the latest page.
        /// Messages are in their newest state.
        recent: Vec<ChatMessage>,
        /// With `join.after`: the changes after it, in order (apply after `recent`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<Change>,
        /// The log position this welcome brings the client to: its next resume point.
        #[serde(default)]
        upto: MessageId,
        /// Longest message the server accepts, in characters.
        max_message_chars: usize,
        /// The gap since `after` was too large to replay: `recent` is the latest page instead,
        /// and the client should drop what it shows and start again from it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reset: bool,
        /// Milliseconds of silence after which the client should treat the server as gone and
        /// reconnect (the server sends at least a `heartbeat` well within it).
        #[serde(default)]
        silence_ms: u64,
        /// The room's topic, lock and slow mode now (changes after `upto` follow as `change`s).
        #[serde(default)]
        room: RoomSettings,
        /// Your role in the room, if you have one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        /// You are muted until then (`moderation::FOREVER`: until unmuted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muted_until: Option<Timestamp>,
    },
    /// Sent every heartbeat interval, so that a browser (which cannot see WebSocket pings) notices a silent server.
    Heartbeat,
    /// A message was posted (also sent back to its sender, as the confirmation).
    Message(ChatMessage),
    /// A message was edited, deleted or reacted to (also the sender's confirmation).
    Change(Change),
    /// `name` is typing (volatile: never stored or replayed). Forget it 6 s later, or at
    /// once when their message arrives or they leave.
    Typing { name: String },
    /// A member came online (first tab).
    Joined { member: Member },
    /// A member went offline (last tab closed).
    Left { member: Member },
    /// How many are online, in a room too big to announce every join and leave: sent instead
    /// of `joined`/`left` there, at most once a second when the count changed.
    Online { count: usize },
    /// A frame was refused; `client_id` names the refused message where there is one.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

/// The frames sent most, serialised from borrowed data so that a message is not copied to
/// be sent: the same JSON as the [`ServerFrame`] of the same name.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrameRef<'a> {
    Message(&'a ChatMessage),
    Change(&'a Change),
    Typing { name: &'a str },
    Joined { member: &'a Member },
    Left { member: &'a Member },
}

impl ServerFrameRef<'_> {
    pub fn encode(&self) -> String {
        // Serialising these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a frame was refused. The connection stays open after every one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    BadJson,
    /// The frame is JSON but its `type` is missing or unknown.
    UnknownType,
    /// The `type` is known but a field is missing or has the wrong type.
    BadFrame,
    /// Binary frames are not part of the protocol.
    BinaryFrame,
    /// `send` before `join`.
    NotJoined,
    /// A second `join` on the same connection.
    AlreadyJoined,
    /// The session does not let this connection join (no or expired session: join again).
    SessionInvalid,
    /// The session's name is now held by someone else in the room.
    NameTaken,
    /// The room has reached its member limit.
    RoomFull,
    /// The message is empty or whitespace only.
    EmptyMessage,
    /// The message is longer than the limit.
    MessageTooLong,
    /// The message contains control characters.
    InvalidText,
    /// The message could not be stored (e.g. the disk is full); it was not sent.
    StorageFailed,
    /// The server is overloaded; the message was not sent. Try again shortly.
    Busy,
    /// Too many messages too fast: this one was not sent. Slow down.
    RateLimited,
    /// The client id is missing or malformed.
    InvalidClientId,
    /// Only a message's author may edit or delete it.
    NotAuthor,
    /// No such message in this room (never posted, deleted, or no longer kept).
    NoSuchMessage,
    /// A reaction must be one emoji.
    InvalidEmoji,
    /// The message has as many reactions as the server keeps.
    TooManyReactions,
    /// Only the room's moderators (and its owner) may do that.
    NotModerator,
    /// No member of that name here now or recently (or one a moderator may not act on).
    NoSuchMember,
    /// The moderation request is malformed (a field out of range).
    BadRequest,
    /// You are muted in this room: you may read, not post.
    Muted,
    /// The room is read-only.
    Locked,
    /// Slow mode: wait before posting again (the message says how long).
    SlowMode,
    /// You are banned from this room (the connection closes with 4011).
    Banned,
    /// That owner or invite link is not valid (used, expired, or for another name).
    InvalidToken,
}

/// WebSocket close codes the server uses, besides the standard 1000 (normal) and 1001 (going away).
pub mod close {
    /// The server is restarting: reconnect after a short, jittered delay.
    pub const SERVICE_RESTART: u16 = 1012;
    /// A frame exceeded the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The connection cannot join: no valid session, or its name was taken (an `error` event precedes it).
    pub const SESSION_REFUSED: u16 = 4001;
    /// The connection could not keep up with the room's traffic; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The connection kept sending faster than the rate limit after being told to slow down.
    pub const FLOODING: u16 = 4029;
    /// The connection sent nothing, not even a pong, within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// A moderator removed the member from the room (the reason is the close reason); they may join again.
    pub const KICKED: u16 = 4010;
    /// The member is banned from the room (the reason is the close reason): do not reconnect.
    pub const BANNED: u16 = 4011;
}

/// The reconnect delay a 1012 close reason suggests (`"service restart; retry_ms=1234"`).
pub fn restart_delay_ms(reason: &str) -> Option<u32> {
    reason
        .split(';')
        .find_map(|part| part.trim().strip_prefix("retry_ms="))
        .and_then(|ms| ms.parse().ok())
}

/// Why a text frame could not be decoded into a [`ClientFrame`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid JSON")]
    BadJson,
    #[error("frame has no known `type`")]
    UnknownType,
    #[error("frame is malformed: {0}")]
    BadFrame(String),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadJson => ErrorCode::BadJson,
            DecodeError::UnknownType => ErrorCode::UnknownType,
            DecodeError::BadFrame(_) => ErrorCode::BadFrame,
        }
    }
}

impl ClientFrame {
    /// Decodes one text frame. Never panics, whatever the input.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => Ok(frame),
            // Only on the error path: look again to tell the client which kind of wrong it was.
            Err(err) => match serde_json::from_str::<serde_json::Value>(text) {
                Err(_) => Err(DecodeError::BadJson),
                Ok(value) => match value.get("type").and_then(|t| t.as_str()) {
                    Some(
                        "join" | "send" | "edit" | "delete" | "react" | "typing" | "moderate"
                        | "claim",
                    ) => Err(DecodeError::BadFrame(err.to_string())),
                    _ => Err(DecodeError::UnknownType),
                },
            },
        }
    }

    pub fn encode(&self) -> String {
        // Serialising these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerFrame {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn borrowed_frames_encode_as_the_owned_ones() {
        let member = Member {
            name: "Ada".into(),
            avatar: "fox".into(),
        };
        let m = ChatMessage {
            id: 7,
            ts: 1,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: "hi \"there\" <b>".into(),
            client_id: Some("c1".into()),
            ..ChatMessage::default()
        };
        let change = Change {
            id: 8,
            ts: 2,
            target: 7,
            name: "Ada".into(),
            avatar: "fox".into(),
            client_id: Some("c2".into()),
            action: ChangeAction::React {
                emoji: "👍".into(),
                on: true,
            },
        };
        let pairs = [
            (ServerFrameRef::Message(&m), ServerFrame::Message(m.clone())),
            (
                ServerFrameRef::Joined { member: &member },
                ServerFrame::Joined {
                    member: member.clone(),
                },
            ),
            (
                ServerFrameRef::Left { member: &member },
                ServerFrame::Left {
                    member: member.clone(),
                },
            ),
            (
                ServerFrameRef::Change(&change),
                ServerFrame::Change(change.clone()),
            ),
            (
                ServerFrameRef::Typing { name: "Ada" },
                ServerFrame::Typing { name: "Ada".into() },
            ),
        ];
        for (borrowed, owned) in pairs {
            assert_eq!(borrowed.encode(), owned.encode());
        }
    }

    use super::*;
    use serde_json::json;

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            avatar: "owl".into(),
        }
    }

    #[test]
    fn client_frames_round_trip() {
        for frame in [
            ClientFrame::Join { after: None },
            ClientFrame::Join { after: Some(41) },
            ClientFrame::Send {
                client_id: "c1".into(),
                text: "héllo <b>\n".into(),
                reply_to: None,
            },
            ClientFrame::Send {
                client_id: "c2".into(),
                text: "re".into(),
                reply_to: Some(4),
            },
            ClientFrame::Edit {
                client_id: "c3".into(),
                id: 4,
                text: "fixed".into(),
            },
            ClientFrame::Delete {
                client_id: "c4".into(),
                id: 4,
            },
            ClientFrame::React {
                client_id: "c5".into(),
                id: 4,
                emoji: "👍".into(),
                on: true,
            },
            ClientFrame::Typing,
            ClientFrame::Moderate {
                client_id: "c6".into(),
                request: ModRequest::Mute {
                    name: "Bob".into(),
                    minutes: Some(10),
                    reason: "spam".into(),
                },
            },
            ClientFrame::Moderate {
                client_id: "c7".into(),
                request: ModRequest::Lock { on: true },
            },
            ClientFrame::Claim {
                client_id: "c8".into(),
                token: "t".into(),
            },
        ] {
            assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn server_frames_round_trip() {
        let msg = ChatMessage {
            id: 7,
            ts: 1_700_000_000_000,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: "hi".into(),
            client_id: Some("c9".into()),
            reply_to: Some(Quote::of(3, "Bob", "first\nsecond")),
            edited: Some(1_700_000_000_500),
            reactions: vec![Reaction {
                emoji: "👍".into(),
                names: vec!["Bob".into()],
            }],
            ..ChatMessage::default()
        };
        for frame in [
            ServerFrame::Welcome {
                you: member("Ada"),
                members: vec![member("Ada"), member("Bob")],
                online: 2,
                recent: vec![msg.clone()],
                changes: vec![Change {
                    id: 8,
                    ts: 2,
                    target: 7,
                    name: "Ada".into(),
                    avatar: "fox".into(),
                    client_id: None,
                    action: ChangeAction::Delete,
                }],
                upto: 8,
                max_message_chars: 2000,
                reset: true,
                silence_ms: 40_000,
                room: RoomSettings {
                    topic: "t".into(),
                    locked: true,
                    slow_secs: 5,
                },
                role: Some(Role::Moderator),
                muted_until: Some(moderation::FOREVER),
            },
            ServerFrame::Typing { name: "Bob".into() },
            ServerFrame::Heartbeat,
            ServerFrame::Online { count: 201 },
            ServerFrame::Message(msg),
            ServerFrame::Joined {
                member: member("Bob"),
            },
            ServerFrame::Left {
                member: member("Bob"),
            },
            ServerFrame::error(ErrorCode::EmptyMessage, "Message is empty"),
        ] {
            assert_eq!(ServerFrame::decode(&frame.encode()).ok(), Some(frame));
        }
    }

    #[test]
    fn wire_shape_is_tagged_by_type() {
        let v: serde_json::Value = serde_json::from_str(
            &ServerFrame::Joined {
                member: member("Bob"),
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type": "joined", "member": {"name": "Bob", "avatar": "owl"}})
        );
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::error(ErrorCode::NotJoined, "x").encode()).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "not_joined");
        assert!(v.get("client_id").is_none());
    }

    #[test]
    fn restart_hints_are_read_from_the_close_reason() {
        assert_eq!(
            restart_delay_ms("service restart; retry_ms=1234"),
            Some(1234)
        );
        assert_eq!(restart_delay_ms("service restart"), None);
        assert_eq!(restart_delay_ms("retry_ms=x"), None);
    }

    #[test]
    fn decode_names_what_is_wrong() {
        assert_eq!(ClientFrame::decode("not json"), Err(DecodeError::BadJson));
        assert_eq!(ClientFrame::decode(""), Err(DecodeError::BadJson));
        assert_eq!(ClientFrame::decode("{}"), Err(DecodeError::UnknownType));
        assert_eq!(ClientFrame::decode("[1,2]"), Err(DecodeError::UnknownType));
        assert_eq!(
            ClientFrame::decode(r#"{"type":"shout","text":"x"}"#),
            Err(DecodeError::UnknownType)
        );
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"send","text":"x"}"#),
            Err(DecodeError::BadFrame(_))
        ));
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"send","client_id":5,"text":"x"}"#),
            Err(DecodeError::BadFrame(_))
        ));
    }

    #[test]
    fn claimed_identity_fields_are_not_part_of_a_send() {
        // A client may add `name`/`avatar`; they are ignored, never used.
        let f = ClientFrame::decode(
            r#"{"type":"send","client_id":"a","text":"x","name":"Mallory","avatar":"owl"}"#,
        );
        assert_eq!(
            f,
            Ok(ClientFrame::Send {
                client_id: "a".into(),
                text: "x".into(),
                reply_to: None,
            })
        );
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
                let _ = ClientFrame::decode(&String::from_utf8_lossy(&bytes));
            }

            #[test]
            fn json_shaped_noise_never_panics(s in r#"[{}\[\]":,0-9a-z_ .\\-]{0,300}"#) {
                let _ = ClientFrame::decode(&s);
                let _ = restart_delay_ms(&s);
            }

            #[test]
            fn every_valid_send_round_trips(
                client_id in "[A-Za-z0-9_-]{1,64}",
                text in any::<String>(),
                after in proptest::option::of(any::<u64>()),
            ) {
                let send = ClientFrame::Send { client_id, text, reply_to: after };
                prop_assert_eq!(ClientFrame::decode(&send.encode()), Ok(send));
                let join = ClientFrame::Join { after };
                prop_assert_eq!(ClientFrame::decode(&join.encode()), Ok(join));
            }
        }

        #[test]
        fn deep_nesting_is_an_error_not_a_crash() {
            let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            assert_eq!(ClientFrame::decode(&deep), Err(DecodeError::BadJson));
            let deep_obj = format!(
                r#"{{"type":"send","x":{}1{}}}"#,
                "[".repeat(50_000),
                "]".repeat(50_000)
            );
            assert!(ClientFrame::decode(&deep_obj).is_err());
        }
    }
}
