//! The reader's standing in a room under moderation: its settings, their role and mute, and each change's line.
//!
//! Pure like the model that holds it (`RoomModel::standing`): the composer asks [`Standing::block`]
//! whether the reader may send now, and every moderation change becomes a plain-text
//! [`line`] in the conversation.

use crate::parts::Parts;
use crate::protocol::moderation::FOREVER;
use crate::protocol::{Change, ChangeAction, Role, RoomSettings, Timestamp};
use crate::rules::name_key;

/// How many moderation frames sent here are remembered until answered.
const SENT_KEPT: usize = 32;

/// Why the server closed this browser's connection for good (close code 4010 or 4011).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// Banned (may not come back), or kicked (may rejoin).
    pub banned: bool,
    /// The close reason: the moderator's reason, or the server's whole sentence with it.
    pub reason: String,
}

impl Removed {
    /// The notice shown across the page.
    pub fn text(&self) -> String {
        let lead = if self.banned {
            "You are banned from this room"
        } else {
            "You were removed from the room by a moderator"
        };
        match self.reason.trim() {
            "" => format!("{lead}."),
            said if said.starts_with(lead) => said.to_string(),
            reason => format!("{lead}: {reason}"),
        }
    }
}

/// Why the reader may not send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Kicked or banned: the connection is closed.
    Removed,
    /// Muted until then ([`FOREVER`]: until a moderator unmutes them).
    Muted { until: Timestamp },
    /// The room is read-only for members.
    Locked,
    /// Slow mode: this many seconds until the next message.
    Slow { secs: u32 },
}

impl Block {
    /// What the composer says; `time` formats a moment for the reader.
    pub fn text(&self, time: impl Fn(Timestamp) -> String) -> String {
        match *self {
            Block::Removed => "You are no longer in this room".into(),
            Block::Muted { until: FOREVER } => "You are muted until a moderator unmutes you".into(),
            Block::Muted { until } => format!("You are muted until {}", time(until)),
            Block::Locked => "This room is read-only".into(),
            Block::Slow { secs } => format!("You can send again in {secs} s"),
        }
    }
}

/// The room's settings and the reader's standing in it, as the server last said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub settings: RoomSettings,
    /// The reader's role, if they have one.
    pub role: Option<Role>,
    /// The reader is muted until then.
    pub muted_until: Option<Timestamp>,
    /// The server closed the connection for good.
    pub removed: Option<Removed>,
    /// The one-time owner link's token of a room created here, shown until dismissed or claimed.
    pub owner_token: Option<String>,
    /// A claim link's token, to send once welcomed.
    pub claim: Option<String>,
    /// When the reader last sent a message (for slow mode).
    pub last_sent: Option<Timestamp>,
    /// Client ids of the moderation and claim frames sent here and not yet answered.
    sent: Vec<String>,
}

impl Standing {
    /// Takes the welcome's settings, role and mute.
    pub fn welcome(
        &mut self,
        settings: RoomSettings,
        role: Option<Role>,
        muted_until: Option<Timestamp>,
    ) -> Parts {
        let mut changed = Parts::NONE;
        if settings != self.settings {
            self.settings = settings;
            changed |= Parts::ROOM;
        }
        if (role, muted_until) != (self.role, self.muted_until) {
            self.role = role;
            self.muted_until = muted_until;
            changed |= Parts::STANDING;
        }
        changed
    }

    /// Applies a moderation change: the room's settings, and the role or mute of reader `me`.
    pub fn apply(&mut self, change: &Change, me: Option<&str>) -> Parts {
        if let Some(id) = &change.client_id {
            self.sent.retain(|c| c != id);
        }
        let before = self.settings.clone();
        self.settings.apply(change);
        let mut changed = if self.settings == before {
            Parts::NONE
        } else {
            Parts::ROOM
        };
        let mine = |member: &str| me.is_some_and(|me| name_key(me) == name_key(member));
        match &change.action {
            ChangeAction::Mute { member, until, .. } if mine(member) => {
                self.muted_until = Some(*until);
            }
            ChangeAction::Unmute { member } if mine(member) => self.muted_until = None,
            ChangeAction::Role { member, role } if mine(member) => {
                self.role = *role;
                if *role == Some(Role::Owner) {
                    self.owner_token = None;
                }
            }
            _ => return changed,
        }
        changed |= Parts::STANDING;
        changed
    }

    /// Remembers a moderation or claim frame sent here, so that its refusal is shown as it is.
    pub fn note_sent(&mut self, client_id: String) {
        if self.sent.len() >= SENT_KEPT {
            self.sent.remove(0);
        }
        self.sent.push(client_id);
    }

    /// Was `client_id` a moderation or claim frame sent here? (It is answered now.)
    pub fn answered(&mut self, client_id: &str) -> bool {
        let before = self.sent.len();
        self.sent.retain(|c| c != client_id);
        before != self.sent.len()
    }

    /// Why the reader may not send a message at `now`, if they may not.
    pub fn block(&self, now: Timestamp) -> Option<Block> {
        if self.removed.is_some() {
            return Some(Block::Removed);
        }
        if let Some(until) = self.muted_until.filter(|until| *until > now) {
            return Some(Block::Muted { until });
        }
        // Moderators are exempt from lock and slow mode.
        if self.role.is_some() {
            return None;
        }
        if self.settings.locked {
            return Some(Block::Locked);
        }
        let wait = i64::from(self.settings.slow_secs) * 1000;
        let left = self.last_sent.map_or(0, |at| at.saturating_add(wait) - now);
        (wait > 0 && left > 0).then(|| Block::Slow {
            secs: u32::try_from((left + 999) / 1000).unwrap_or(u32::MAX),
        })
    }
}

/// The conversation's line for a moderation change (`None` for a member's own edit, deletion or reaction).
pub fn line(change: &Change) -> Option<String> {
    let who = if change.name.is_empty() {
        "An operator"
    } else {
        change.name.as_str()
    };
    let why = |reason: &str| {
        if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        }
    };
    let span = |until: Timestamp, forever: &str| span(change.ts, until, forever);
    Some(match &change.action {
        ChangeAction::Edit { .. } | ChangeAction::Delete | ChangeAction::React { .. } => {
            return None
        }
        ChangeAction::Remove { reason } => format!("{who} removed a message{}", why(reason)),
        ChangeAction::Clear {
            member,
            ids,
            reason,
        } => format!(
            "{who} removed {} by {member}{}",
            plural(ids.len() as i64, "recent message"),
            why(reason)
        ),
        ChangeAction::Mute {
            member,
            until,
            reason,
        } => format!(
            "{who} muted {member}{}{}",
            span(*until, " until unmuted"),
            why(reason)
        ),
        ChangeAction::Unmute { member } => format!("{who} unmuted {member}"),
        ChangeAction::Kick { member, reason } => {
            let by = if change.name.is_empty() {
                "an operator"
            } else {
                who
            };
            format!("{member} was kicked by {by}{}", why(reason))
        }
        ChangeAction::Ban {
            member,
            until,
            reason,
            ..
        } => format!(
            "{who} banned {member}{}{}",
            span(*until, " for good"),
            why(reason)
        ),
        ChangeAction::Unban { member } => format!("{who} unbanned {member}"),
        ChangeAction::Topic { text } if text.is_empty() => format!("{who} cleared the topic"),
        ChangeAction::Topic { text } => format!("{who} set the topic: {text}"),
        ChangeAction::Lock { on: true } => format!("{who} locked the room"),
        ChangeAction::Lock { on: false } => format!("{who} unlocked the room"),
        ChangeAction::Slow { secs: 0 } => "Slow mode is off".into(),
        ChangeAction::Slow { secs } => format!("Slow mode: one message every {}", slow(*secs)),
        ChangeAction::Role { member, role } => match role {
            Some(Role::Owner) => format!("{member} is now the owner"),
            Some(Role::Moderator) => format!("{member} is now a moderator"),
            None => format!("{member} is no longer a moderator"),
        },
    })
}

/// An audit log row's what, whom and why for a moderation change (its when and who are the change's own).
pub fn audit_row(change: &Change) -> (String, String, String) {
    let span = |until: Timestamp, forever: &str| span(change.ts, until, forever);
    let (what, whom, why) = match &change.action {
        ChangeAction::Edit { .. } | ChangeAction::Delete | ChangeAction::React { .. } => {
            return Default::default()
        }
        ChangeAction::Remove { reason } => ("removed a message".into(), "", reason.as_str()),
        ChangeAction::Clear {
            member,
            ids,
            reason,
        } => (
            format!("removed {}", plural(ids.len() as i64, "recent message")),
            member.as_str(),
            reason.as_str(),
        ),
        ChangeAction::Mute {
            member,
            until,
            reason,
        } => (
            format!("muted{}", span(*until, " until unmuted")),
            member.as_str(),
            reason.as_str(),
        ),
        ChangeAction::Unmute { member } => ("unmuted".into(), member.as_str(), ""),
        ChangeAction::Kick { member, reason } => {
            ("kicked".into(), member.as_str(), reason.as_str())
        }
        ChangeAction::Ban {
            member,
            until,
            address,
            reason,
        } => {
            let address = if *address { ", and their address" } else { "" };
            let what = format!("banned{}{address}", span(*until, " for good"));
            (what, member.as_str(), reason.as_str())
        }
        ChangeAction::Unban { member } => ("unbanned".into(), member.as_str(), ""),
        ChangeAction::Topic { text } if text.is_empty() => ("cleared the topic".into(), "", ""),
        ChangeAction::Topic { text } => (format!("set the topic: {text}"), "", ""),
        ChangeAction::Lock { on: true } => ("locked the room".into(), "", ""),
        ChangeAction::Lock { on: false } => ("unlocked the room".into(), "", ""),
        ChangeAction::Slow { secs: 0 } => ("turned slow mode off".into(), "", ""),
        ChangeAction::Slow { secs } => (format!("set slow mode to {}", slow(*secs)), "", ""),
        ChangeAction::Role { member, role } => {
            let what = match role {
                Some(Role::Owner) => "made owner",
                Some(Role::Moderator) => "made moderator",
                None => "removed as moderator",
            };
            (what.into(), member.as_str(), "")
        }
    };
    (what, whom.to_string(), why.to_string())
}

/// " for 10 minutes" from `at` to `until`, or `forever` for [`FOREVER`].
fn span(at: Timestamp, until: Timestamp, forever: &str) -> String {
    if until == FOREVER {
        forever.to_string()
    } else {
        format!(" for {}", duration(until.saturating_sub(at)))
    }
}

/// A slow mode's interval: "30 s", "5 min".
pub fn slow(secs: u32) -> String {
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// A span of `ms` milliseconds in the largest whole unit: "10 minutes", "1 hour", "2 days".
pub fn duration(ms: i64) -> String {
    let minutes = ((ms + 30_000) / 60_000).max(1);
    if minutes % 1440 == 0 {
        plural(minutes / 1440, "day")
    } else if minutes % 60 == 0 {
        plural(minutes / 60, "hour")
    } else {
        plural(minutes, "minute")
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}
