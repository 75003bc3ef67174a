//! Moderation: roles, a room's settings, what a moderator may ask, and the limits on each.
//!
//! Every request is checked on the server against the sender's session; what it did becomes
//! a [`Change`](super::Change) in the room's log (see `ChangeAction`), so that every member,
//! every node and every resume sees the same room.

use serde::{Deserialize, Serialize};

use super::{MessageId, Timestamp};

/// "Until further notice": a mute or ban without an end.
pub const FOREVER: Timestamp = i64::MAX;
/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 200;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Longest slow mode: one message an hour.
pub const MAX_SLOW_SECS: u32 = 3600;
/// Longest mute or ban with an end, in minutes (a year); longer is `minutes: null`, forever.
pub const MAX_MINUTES: u32 = 525_600;
/// How far back "clear recent messages" reaches, in minutes (a day).
pub const MAX_CLEAR_MINUTES: u32 = 1440;
/// Most messages one clear removes.
pub const MAX_CLEARED: usize = 1000;

/// A member's standing in a room, beyond being a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Claimed the room with its one-time owner link: a moderator no moderator can act on.
    Owner,
    /// Named by the server's operator (invite link) or the owner.
    Moderator,
}

/// What a room is like now: shown to everyone, set by moderators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    /// Shown under the room's title; empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    /// Read-only: only moderators may post.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// Slow mode: each member may post once every this many seconds (0: off; moderators are exempt).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_secs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a moderator asks (the `moderate` frame, and the admin API's action body), tagged by `do`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum ModRequest {
    /// Remove message `id` (anyone's): shown as "removed by a moderator", its text gone.
    Remove {
        id: MessageId,
        #[serde(default)]
        reason: String,
    },
    /// Remove every message `name` posted in the last `minutes`.
    Clear {
        name: String,
        minutes: u32,
        #[serde(default)]
        reason: String,
    },
    /// `name` may read but not post, for `minutes` (`null`: until unmuted).
    Mute {
        name: String,
        #[serde(default)]
        minutes: Option<u32>,
        #[serde(default)]
        reason: String,
    },
    Unmute {
        name: String,
    },
    /// Close every connection of `name`; they may join again.
    Kick {
        name: String,
        #[serde(default)]
        reason: String,
    },
    /// Close every connection of `name` and keep their session and name out for `minutes`
    /// (`null`: for good); with `address`, their client address too.
    Ban {
        name: String,
        #[serde(default)]
        minutes: Option<u32>,
        #[serde(default)]
        address: bool,
        #[serde(default)]
        reason: String,
    },
    Unban {
        name: String,
    },
    /// Set the room's topic (empty: none).
    Topic {
        text: String,
    },
    /// Make the room read-only for members (`on: false`: open it again).
    Lock {
        on: bool,
    },
    /// One message per member every `secs` seconds (0: off).
    Slow {
        secs: u32,
    },
}

/// Why a moderation request is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModRequestError {
    #[error("A reason is at most {MAX_REASON_CHARS} characters")]
    Reason,
    #[error("A topic is at most {MAX_TOPIC_CHARS} characters, on one line")]
    Topic,
    #[error("Slow mode is 0 to {MAX_SLOW_SECS} seconds")]
    Slow,
    #[error("A duration is 1 to {MAX_MINUTES} minutes, or none for no end")]
    Minutes,
    #[error("Clear reaches back 1 to {MAX_CLEAR_MINUTES} minutes")]
    Clear,
    #[error("Name a member")]
    Name,
}

impl ModRequest {
    /// Checks lengths and ranges (who may ask, and whom it names, is the server's to check).
    pub fn validate(&self) -> Result<(), ModRequestError> {
        let text_ok =
            |t: &str, max: usize| t.chars().count() <= max && !t.chars().any(char::is_control);
        let reason_ok = |r: &str| {
            text_ok(r, MAX_REASON_CHARS)
                .then_some(())
                .ok_or(ModRequestError::Reason)
        };
        let name_ok = |n: &str| {
            (!n.trim().is_empty() && n.chars().count() <= 64)
                .then_some(())
                .ok_or(ModRequestError::Name)
        };
        let minutes_ok = |m: &Option<u32>| match m {
            Some(m) if *m == 0 || *m > MAX_MINUTES => Err(ModRequestError::Minutes),
            _ => Ok(()),
        };
        match self {
            ModRequest::Remove { reason, .. } => reason_ok(reason),
            ModRequest::Kick { name, reason } => name_ok(name).and(reason_ok(reason)),
            ModRequest::Clear {
                name,
                minutes,
                reason,
            } => {
                name_ok(name)?;
                if *minutes == 0 || *minutes > MAX_CLEAR_MINUTES {
                    return Err(ModRequestError::Clear);
                }
                reason_ok(reason)
            }
            ModRequest::Mute {
                name,
                minutes,
                reason,
            }
            | ModRequest::Ban {
                name,
                minutes,
                reason,
                ..
            } => {
                name_ok(name)?;
                minutes_ok(minutes)?;
                reason_ok(reason)
            }
            ModRequest::Unmute { name } | ModRequest::Unban { name } => name_ok(name),
            ModRequest::Topic { text } => text_ok(text, MAX_TOPIC_CHARS)
                .then_some(())
                .ok_or(ModRequestError::Topic),
            ModRequest::Lock { .. } => Ok(()),
            ModRequest::Slow { secs } => (*secs <= MAX_SLOW_SECS)
                .then_some(())
                .ok_or(ModRequestError::Slow),
        }
    }

    /// The member it acts on, if it names one.
    pub fn member(&self) -> Option<&str> {
        match self {
            ModRequest::Clear { name, .. }
            | ModRequest::Mute { name, .. }
            | ModRequest::Unmute { name }
            | ModRequest::Kick { name, .. }
            | ModRequest::Ban { name, .. }
            | ModRequest::Unban { name } => Some(name),
            _ => None,
        }
    }
}

/// The end of a duration of `minutes` from `now` (`None`: [`FOREVER`]).
pub fn until(now: Timestamp, minutes: Option<u32>) -> Timestamp {
    minutes.map_or(FOREVER, |m| now.saturating_add(i64::from(m) * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_do_and_checked() {
        let r: ModRequest =
            serde_json::from_str(r#"{"do":"ban","name":"Bob","minutes":60,"reason":"spam"}"#)
                .unwrap();
        assert_eq!(
            r,
            ModRequest::Ban {
                name: "Bob".into(),
                minutes: Some(60),
                address: false,
                reason: "spam".into()
            }
        );
        assert!(r.validate().is_ok());
        let forever: ModRequest = serde_json::from_str(r#"{"do":"ban","name":"Bob"}"#).unwrap();
        assert!(matches!(forever, ModRequest::Ban { minutes: None, .. }));
        assert_eq!(until(5, None), FOREVER);
        assert_eq!(until(5, Some(1)), 60_005);
        for bad in [
            ModRequest::Topic {
                text: "x".repeat(MAX_TOPIC_CHARS + 1),
            },
            ModRequest::Topic {
                text: "a\nb".into(),
            },
            ModRequest::Slow {
                secs: MAX_SLOW_SECS + 1,
            },
            ModRequest::Mute {
                name: "Bob".into(),
                minutes: Some(0),
                reason: String::new(),
            },
            ModRequest::Clear {
                name: "Bob".into(),
                minutes: 0,
                reason: String::new(),
            },
            ModRequest::Kick {
                name: " ".into(),
                reason: String::new(),
            },
            ModRequest::Remove {
                id: 1,
                reason: "r".repeat(MAX_REASON_CHARS + 1),
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
