//! The old protocol's codec: its frames in as commands, room events out in its shapes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::protocol::{close, ChangeAction, ChatMessage, ErrorCode};
use crate::server::chat::codec::{Codec, Command, Event, Frames, Welcome};
use crate::server::chat::text::Utf8Bytes;
use crate::server::clock::Clock;
use crate::server::legacy::frames::{self, Incoming};
use crate::server::ops::metrics::Rejection;

/// Old connections share a dialect per site (the scheme and host in their avatar URLs).
const KIND: &str = "old";

/// A codec for an old-protocol connection that reached this server at `site`
/// (`scheme://host`), with the `time` fields on `clock`.
pub fn codec(site: Arc<str>, clock: Clock) -> Arc<dyn Codec> {
    // Its messages' client ids are `<tag>-<n>`: the old protocol never sends a sender its
    // own message back, and the tag tells which are its own.
    let tag: Box<str> = crate::server::ids::SessionId::random()
        .0
        .chars()
        .take(11)
        .collect::<String>()
        .into();
    Arc::new(Old {
        tag,
        site,
        clock,
        sent: AtomicU64::new(0),
    })
}

/// An old connection's side of the protocol.
struct Old {
    tag: Box<str>,
    site: Arc<str>,
    clock: Clock,
    /// Messages sent so far: the next one's client id is `<tag>-<sent + 1>`.
    sent: AtomicU64,
}

impl Old {
    fn sent(&self, client_id: Option<&str>) -> bool {
        client_id
            .and_then(|id| id.strip_prefix(&*self.tag))
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// `event` in the old shape, if old clients are told of it.
fn old_event<'a>(event: &Event<'a>) -> Option<frames::Event<'a>> {
    match *event {
        Event::Joined { member, seq } => Some(frames::Event::Connect { member, fd: seq }),
        Event::Left { seq, .. } => Some(frames::Event::Remove { fd: seq }),
        Event::Message(m) => Some(frames::Event::Message(m)),
        // No confirmations, counts, errors, deletions, reactions or typing: old pages
        // cannot show them (edits are sent as new messages, see `edited`).
        _ => None,
    }
}

/// An edit as old pages can show it: a new message, "(edited) <text>", from its author.
fn edited(event: &Event<'_>) -> Option<ChatMessage> {
    let Event::Change(c) = event else { return None };
    let ChangeAction::Edit { text } = &c.action else {
        return None;
    };
    Some(ChatMessage {
        id: c.id,
        ts: c.ts,
        name: c.name.clone(),
        avatar: c.avatar.clone(),
        text: format!("(edited) {text}"),
        ..ChatMessage::default()
    })
}

impl Codec for Old {
    fn frame(&self, f: &mut Frames<'_>) -> Option<Utf8Bytes> {
        if let Event::Message(m) = f.event() {
            if self.sent(m.client_id.as_deref()) {
                return None;
            }
        }
        let (site, clock) = (&self.site, &self.clock);
        f.shared(KIND, site, |e| match edited(e) {
            Some(m) => Some(frames::encode(frames::Event::Message(&m), site, clock)),
            None => old_event(e).map(|e| frames::encode(e, site, clock)),
        })
    }

    fn with_history(&self) -> bool {
        false
    }

    /// A `connect` for each member already listed, but itself.
    fn welcome(&self, w: Welcome) -> Vec<Utf8Bytes> {
        w.members
            .iter()
            .filter(|(m, _)| m.name != w.you.name)
            .map(|(member, seq)| {
                let event = frames::Event::Connect { member, fd: *seq };
                frames::encode(event, &self.site, &self.clock).into()
            })
            .collect()
    }

    /// What the old server ignored is ignored here too: anything unreadable, a message
    /// before the open, a second open.
    fn command(&self, text: &str, joined: bool) -> Command {
        match frames::decode(text) {
            Incoming::Open { username, avatar } if !joined => {
                match frames::identity(&username, &avatar) {
                    Ok(member) => Command::JoinAs { member },
                    Err(e) => Command::Close {
                        code: close::SESSION_REFUSED,
                        reason: e.to_string(),
                        counted: Rejection::Code(ErrorCode::SessionInvalid),
                    },
                }
            }
            Incoming::Message { data } if joined => {
                let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
                Command::Send {
                    client_id: format!("{}-{n}", self.tag),
                    text: data,
                    reply_to: None,
                }
            }
            _ => Command::Ignore(Rejection::OldIgnored),
        }
    }

    fn legacy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ChatMessage;

    fn message(client_id: &str) -> ChatMessage {
        ChatMessage {
            id: 1,
            ts: 0,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: "<hi>".into(),
            client_id: Some(client_id.into()),
            ..ChatMessage::default()
        }
    }

    #[test]
    fn an_old_sender_is_not_sent_its_own_message_and_sites_share_frames() {
        let a = codec("http://a".into(), Clock::default());
        let b = codec("http://a".into(), Clock::default());
        let Command::Send { client_id, .. } = a.command(
            r#"{"token":"simplechat","data":"x","username":"","avatar":""}"#,
            true,
        ) else {
            panic!("a message after the open is sent");
        };
        let own = message(&client_id);
        let mut frames = Frames::new(Event::Message(&own));
        assert!(a.frame(&mut frames).is_none(), "its own message");
        let to_b = b.frame(&mut frames).expect("another client's");
        assert!(to_b.as_str().contains("&lt;hi&gt;"), "escaped");
        let again = b.frame(&mut frames).unwrap();
        assert_eq!(
            to_b.as_bytes().as_ptr(),
            again.as_bytes().as_ptr(),
            "shared"
        );
    }

    #[test]
    fn opens_are_checked_and_other_frames_ignored() {
        let d = codec("http://a".into(), Clock::default());
        let open = r#"{"token":"simplechat_open","username":"Ada","avatar":""}"#;
        assert!(
            matches!(d.command(open, false), Command::JoinAs { member } if member.name == "Ada")
        );
        assert_eq!(
            d.command(open, true),
            Command::Ignore(Rejection::OldIgnored)
        );
        let bad = r#"{"token":"simplechat_open","username":"","avatar":""}"#;
        assert!(matches!(
            d.command(bad, false),
            Command::Close {
                code: close::SESSION_REFUSED,
                ..
            }
        ));
        assert_eq!(
            d.command("{", false),
            Command::Ignore(Rejection::OldIgnored)
        );
    }
}
