//! The current protocol's codec: room events as the JSON frames of `crate::protocol`, and its client frames as commands.

use std::sync::{Arc, LazyLock};

use crate::protocol::{ClientFrame, ServerFrame, ServerFrameRef};
use crate::server::chat::codec::{ChangeRequest, Codec, Command, Event, Frames, Welcome};
use crate::server::chat::text::Utf8Bytes;

/// The dialect every current-protocol connection shares.
const KIND: &str = "current";
/// `ServerFrame::Heartbeat` encoded, shared by every connection.
const HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;

/// It has no state: every connection shares one (no allocation per connection).
static CURRENT: LazyLock<Arc<dyn Codec>> = LazyLock::new(|| Arc::new(Current));

/// The codec of a connection of the current protocol.
pub fn codec() -> Arc<dyn Codec> {
    CURRENT.clone()
}

/// The current protocol (`/ws/<room>`, PROTOCOL.md).
pub struct Current;

/// The frame of `event`: borrowed where it is sent to many, so that nothing is copied.
fn encode(event: &Event<'_>) -> String {
    match *event {
        Event::Joined { member, .. } => ServerFrameRef::Joined { member }.encode(),
        Event::Left { member, .. } => ServerFrameRef::Left { member }.encode(),
        Event::Message(m) | Event::Confirmed(m) => ServerFrameRef::Message(m).encode(),
        Event::Change(c) | Event::ConfirmedChange(c) => ServerFrameRef::Change(c).encode(),
        Event::Typing { name } => ServerFrameRef::Typing { name }.encode(),
        Event::Online { count } => ServerFrame::Online { count }.encode(),
        Event::Error {
            code,
            message,
            client_id,
        } => ServerFrame::Error {
            code,
            message: message.into(),
            client_id: client_id.map(Into::into),
        }
        .encode(),
    }
}

impl Codec for Current {
    fn frame(&self, frames: &mut Frames<'_>) -> Option<Utf8Bytes> {
        frames.shared(KIND, "", |e| Some(encode(e)))
    }

    fn with_history(&self) -> bool {
        true
    }

    fn welcome(&self, w: Welcome) -> Vec<Utf8Bytes> {
        let frame = ServerFrame::Welcome {
            you: w.you,
            members: w.members.into_iter().map(|(m, _)| m).collect(),
            online: w.online,
            recent: w.recent,
            changes: w.changes,
            upto: w.upto,
            max_message_chars: w.max_message_chars,
            reset: w.reset,
            silence_ms: w.silence_ms,
            room: w.standing.room,
            role: w.standing.role,
            muted_until: w.standing.muted_until,
        };
        vec![frame.encode().into()]
    }

    fn heartbeat(&self) -> Option<Utf8Bytes> {
        Some(Utf8Bytes::from_static(HEARTBEAT))
    }

    fn command(&self, text: &str, _joined: bool) -> Command {
        match ClientFrame::decode(text) {
            Ok(ClientFrame::Join { after }) => Command::Join { after },
            Ok(ClientFrame::Send {
                client_id,
                text,
                reply_to,
            }) => Command::Send {
                client_id,
                text,
                reply_to,
            },
            Ok(ClientFrame::Edit {
                client_id,
                id,
                text,
            }) => Command::Change {
                client_id,
                change: ChangeRequest::Edit { target: id, text },
            },
            Ok(ClientFrame::Delete { client_id, id }) => Command::Change {
                client_id,
                change: ChangeRequest::Delete { target: id },
            },
            Ok(ClientFrame::React {
                client_id,
                id,
                emoji,
                on,
            }) => Command::Change {
                client_id,
                change: ChangeRequest::React {
                    target: id,
                    emoji,
                    on,
                },
            },
            Ok(ClientFrame::Typing) => Command::Typing,
            Ok(ClientFrame::Moderate { client_id, request }) => {
                Command::Moderate { client_id, request }
            }
            Ok(ClientFrame::Claim { client_id, token }) => Command::Claim { client_id, token },
            Err(e) => Command::Refuse {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_heartbeat_is_the_encoded_frame() {
        assert_eq!(HEARTBEAT, ServerFrame::Heartbeat.encode());
    }

    #[test]
    fn client_frames_become_commands() {
        let c = Current;
        assert_eq!(
            c.command(r#"{"type":"join","after":4}"#, false),
            Command::Join { after: Some(4) }
        );
        assert_eq!(
            c.command(r#"{"type":"send","client_id":"a","text":"hi"}"#, true),
            Command::Send {
                client_id: "a".into(),
                text: "hi".into(),
                reply_to: None,
            }
        );
        assert!(matches!(
            c.command("nope", true),
            Command::Refuse {
                code: crate::protocol::ErrorCode::BadJson,
                ..
            }
        ));
    }
}
