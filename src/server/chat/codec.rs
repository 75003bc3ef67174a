//! What a wire format must do for the chat: room events out as frames, client frames in as commands.
//!
//! A connection picks its codec at the upgrade: `net::codec` for the current protocol,
//! `legacy::codec` for the old PHP/Swoole one. Rooms and the hub see only the [`Codec`] trait,
//! so a third protocol is a third implementation and touches nothing here.
//!
//! A room encodes each event once per *dialect* (see [`Frames`]): every connection whose
//! codec shares a dialect gets the same reference-counted bytes.

use std::sync::Arc;

use crate::protocol::{
    Change, ChatMessage, ErrorCode, Member, MessageId, ModRequest, Role, RoomSettings, Timestamp,
};
use crate::server::chat::text::Utf8Bytes;
use crate::server::ops::metrics::Rejection;

/// Something that happened that a connection may be told.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A member is listed now; `seq` is their place in the join order.
    Joined { member: &'a Member, seq: u64 },
    /// A member left; `seq` as when they joined.
    Left { member: &'a Member, seq: u64 },
    /// A stored message, to everyone (its sender's confirmation too).
    Message(&'a ChatMessage),
    /// A re-sent message that was stored before: its confirmation, to its sender only.
    Confirmed(&'a ChatMessage),
    /// A stored change (edit, deletion, reaction), to everyone (its sender's confirmation too).
    Change(&'a Change),
    /// A re-sent change that was stored before: its confirmation, to its sender only.
    ConfirmedChange(&'a Change),
    /// A member is typing (volatile: dropped first when a connection falls behind).
    Typing { name: &'a str },
    /// How many members a big room has (it lists only the first ones).
    Online { count: usize },
    /// A refusal of what this connection asked.
    Error {
        code: ErrorCode,
        message: &'a str,
        client_id: Option<&'a str>,
    },
}

/// What a joining connection is told first.
#[derive(Clone, Debug)]
pub struct Welcome {
    pub you: Member,
    /// The first members in join order, with their places in it.
    pub members: Vec<(Member, u64)>,
    pub online: usize,
    pub recent: Vec<ChatMessage>,
    /// With a resume: the changes since, in order.
    pub changes: Vec<Change>,
    /// The log position the welcome brings the connection to.
    pub upto: MessageId,
    pub max_message_chars: usize,
    /// The history does not follow on from what the client had: it starts afresh.
    pub reset: bool,
    pub silence_ms: u64,
    /// The room's settings and the member's standing in it when the history was read.
    pub standing: Standing,
}

/// A room's settings and one member's standing in it, as a welcome tells them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub room: RoomSettings,
    pub role: Option<Role>,
    pub muted_until: Option<Timestamp>,
}

/// A wire format: what a connection's frames mean, and how events are sent to it.
///
/// Chosen at the upgrade and shared by the connection (to read its frames and reply) and its
/// room (to fan events out to it).
pub trait Codec: Send + Sync + 'static {
    /// This connection's frame for `event`, or `None` when it gets none. Ask `frames` for
    /// the dialect's shared copy rather than encoding one per connection. One codec gives
    /// one answer per event: a room asks once for all the connections that share it.
    fn frame(&self, frames: &mut Frames<'_>) -> Option<Utf8Bytes>;

    /// Whether a joining connection is staged until its history is read (live events are
    /// held and follow it) or is welcomed and live at once, without history.
    fn with_history(&self) -> bool;

    /// The frames that welcome this connection (taken by value: its history is not copied).
    fn welcome(&self, welcome: Welcome) -> Vec<Utf8Bytes>;

    /// The frame sent before each ping, if the protocol has one.
    fn heartbeat(&self) -> Option<Utf8Bytes> {
        None
    }

    /// Reads one text frame; `joined` tells whether the connection is in its room yet.
    fn command(&self, text: &str, joined: bool) -> Command;

    /// Counted under the old protocol's metrics.
    fn legacy(&self) -> bool {
        false
    }
}

/// One event's frames, encoded on first need, once per dialect.
pub struct Frames<'e> {
    event: Event<'e>,
    /// Kept alive by every frame of the event (a message's fan-out timing).
    tie: Option<Arc<dyn Send + Sync>>,
    encoded: Vec<(&'static str, Box<str>, Option<Utf8Bytes>)>,
}

impl<'e> Frames<'e> {
    pub fn new(event: Event<'e>) -> Self {
        Frames {
            event,
            tie: None,
            encoded: Vec::with_capacity(1),
        }
    }

    /// Frames that keep `tie` alive until the last copy of each is dropped.
    pub fn tied(event: Event<'e>, tie: Arc<dyn Send + Sync>) -> Self {
        Frames {
            tie: Some(tie),
            ..Frames::new(event)
        }
    }

    pub fn event(&self) -> &Event<'e> {
        &self.event
    }

    /// The frame of dialect `(kind, variant)`, from `encode` the first time it is asked for.
    pub fn shared(
        &mut self,
        kind: &'static str,
        variant: &str,
        encode: impl FnOnce(&Event<'e>) -> Option<String>,
    ) -> Option<Utf8Bytes> {
        if let Some((_, _, f)) = self
            .encoded
            .iter()
            .find(|(k, v, _)| *k == kind && &**v == variant)
        {
            return f.clone();
        }
        let frame = encode(&self.event).map(|text| match &self.tie {
            Some(tie) => Utf8Bytes::from_owner(Tied {
                text,
                _tie: tie.clone(),
            }),
            None => Utf8Bytes::from(text),
        });
        self.encoded.push((kind, variant.into(), frame.clone()));
        frame
    }
}

/// A frame's text, holding its event's tie.
struct Tied {
    text: String,
    _tie: Arc<dyn Send + Sync>,
}

impl AsRef<str> for Tied {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// A change a client asks for, to message `target`.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeRequest {
    Edit {
        target: MessageId,
        text: String,
    },
    Delete {
        target: MessageId,
    },
    React {
        target: MessageId,
        emoji: String,
        on: bool,
    },
}

/// What a client's text frame asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Join with the session of the upgrade; `after` resumes after that message.
    Join { after: Option<MessageId> },
    /// Join as `member`, with a numbered variant of the name when it is taken.
    JoinAs { member: Member },
    /// Post a message, perhaps as a reply.
    Send {
        client_id: String,
        text: String,
        reply_to: Option<MessageId>,
    },
    /// Edit, delete or react to a message (see `log::Action`).
    Change {
        client_id: String,
        change: ChangeRequest,
    },
    /// The member is typing.
    Typing,
    /// A moderator's action.
    Moderate {
        client_id: String,
        request: ModRequest,
    },
    /// Claims a role with a one-time link's token.
    Claim { client_id: String, token: String },
    /// Nothing to do: counted as this rejection, not answered.
    Ignore(Rejection),
    /// Refused: answered with an error event; the connection goes on.
    Refuse { code: ErrorCode, message: String },
    /// Refused: counted as `counted`, and the connection is closed with `code` and `reason`.
    Close {
        code: u16,
        reason: String,
        counted: Rejection,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_dialect_is_encoded_once_and_holds_the_tie() {
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let encodes = AtomicUsize::new(0);
        let mut frames = Frames::tied(Event::Online { count: 3 }, Arc::new(Dropped(drops.clone())));
        let mut get = |variant: &str| {
            frames.shared("test", variant, |e| {
                encodes.fetch_add(1, Ordering::SeqCst);
                Some(format!("{e:?}/{variant}"))
            })
        };
        let a = get("x").unwrap();
        let b = get("x").unwrap();
        let c = get("y").unwrap();
        assert_eq!(encodes.load(Ordering::SeqCst), 2, "x once, y once");
        assert_eq!(a, b);
        assert_ne!(a, c);
        drop(frames);
        drop((a, b));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "c still holds the tie");
        drop(c);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
