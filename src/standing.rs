//! The reader's standing in a room under moderation: its settings, their role and mute, and each change's line.
//!
//! Pure like the model that holds it (`RoomModel::standing`): the composer asks [`Standing::block`]
//! whether the reader may send now, and every moderation change becomes a plain-text
//! [`line`] in the conversation.

use crate::i18n::Text;
use crate::parts::Parts;
use crate::protocol::moderation::FOREVER;
use crate::protocol::{Change, ChangeAction, Role, RoomSettings, Timestamp};
use crate::rules::name_fold;

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
    /// The notice shown across the page; `time` formats a ban's end for the reader.
    pub fn text(&self, time: impl Fn(Timestamp) -> String) -> Text {
        // The server's English sentence may lead the close reason: only the reason after it is the moderator's.
        let (lead, key) = if self.banned {
            ("You are banned from this room", "removed-banned")
        } else {
            (
                "You were removed from the room by a moderator",
                "removed-kicked",
            )
        };
        let said = self.reason.trim();
        // A timed ban's sentence: " until 2030-01-01 10:00 UTC", then its reason after a colon.
        if let Some((until, rest)) = said
            .strip_prefix(lead)
            .and_then(|rest| rest.strip_prefix(" until "))
            .filter(|_| self.banned)
            .and_then(|tail| Some((banned_until(tail.get(..20)?)?, tail.get(20..)?)))
        {
            return Text::new("removed-banned-until")
                .arg("time", time(until))
                .arg("why", why(rest.trim_start_matches([':', ' '])));
        }
        let why = match said.strip_prefix(lead) {
            // The server's sentence: its reason after a colon, or the rest as it is (an end that
            // could not be read).
            Some(rest) if rest.starts_with(':') => why(rest.trim_start_matches([':', ' '])),
            Some(rest) if rest.trim_matches(['.', ' ']).is_empty() => Text::new("full-stop"),
            Some(rest) => Text::raw(rest),
            None if said.is_empty() => Text::new("full-stop"),
            None => why(said),
        };
        Text::new(key).arg("why", why)
    }
}

/// The moment a ban's close reason names (`2030-01-01 10:00 UTC`, as the server writes it).
// Read by hand: jiff's `strptime` and serde_json's `Value` (`RefusalCode::slug`) added 34 KB
// of brotli WASM to the first load.
fn banned_until(text: &str) -> Option<Timestamp> {
    let text = text.strip_suffix(" UTC")?;
    let (day, time) = text.split_once(' ')?;
    let mut day = day.splitn(3, '-').map(str::parse::<i16>);
    let (year, month, date) = (day.next()?.ok()?, day.next()?.ok()?, day.next()?.ok()?);
    let (hour, minute) = time.split_once(':')?;
    let civil = jiff::civil::DateTime::new(
        year,
        i8::try_from(month).ok()?,
        i8::try_from(date).ok()?,
        hour.parse().ok()?,
        minute.parse().ok()?,
        0,
        0,
    )
    .ok()?;
    let at = jiff::tz::Offset::UTC.to_timestamp(civil).ok()?;
    Some(at.as_millisecond())
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
    pub fn text(&self, time: impl Fn(Timestamp) -> String) -> Text {
        match *self {
            Block::Removed => Text::new("block-removed"),
            Block::Muted { until: FOREVER } => Text::new("block-muted-forever"),
            Block::Muted { until } => Text::new("block-muted-until").arg("time", time(until)),
            Block::Locked => Text::new("block-locked"),
            Block::Slow { secs } => Text::new("block-slow").arg("count", i64::from(secs)),
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
        let mine = |member: &str| me.is_some_and(|me| name_fold(me) == name_fold(member));
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
pub fn line(change: &Change) -> Option<Text> {
    let who = if change.name.is_empty() {
        Text::new("operator-subject")
    } else {
        Text::raw(change.name.as_str())
    };
    let span = |until: Timestamp, forever: &'static str| span(change.ts, until, forever);
    let act = |key: &'static str| Text::new(key).arg("who", who.clone());
    Some(match &change.action {
        ChangeAction::Edit { .. } | ChangeAction::Delete | ChangeAction::React { .. } => {
            return None
        }
        ChangeAction::Remove { reason } => act("mod-remove").arg("why", why(reason)),
        ChangeAction::Clear {
            member,
            ids,
            reason,
        } => act("mod-clear")
            .arg("count", ids.len() as i64)
            .arg("member", member.as_str())
            .arg("why", why(reason)),
        ChangeAction::Mute {
            member,
            until,
            reason,
        } => act("mod-mute")
            .arg("member", member.as_str())
            .arg("span", span(*until, "span-until-unmuted"))
            .arg("why", why(reason)),
        ChangeAction::Unmute { member } => act("mod-unmute").arg("member", member.as_str()),
        ChangeAction::Kick { member, reason } => {
            let by = if change.name.is_empty() {
                Text::new("operator-object")
            } else {
                who
            };
            Text::new("mod-kick")
                .arg("member", member.as_str())
                .arg("by", by)
                .arg("why", why(reason))
        }
        ChangeAction::Ban {
            member,
            until,
            reason,
            ..
        } => act("mod-ban")
            .arg("member", member.as_str())
            .arg("span", span(*until, "span-for-good"))
            .arg("why", why(reason)),
        ChangeAction::Unban { member } => act("mod-unban").arg("member", member.as_str()),
        ChangeAction::Topic { text } if text.is_empty() => act("mod-topic-cleared"),
        ChangeAction::Topic { text } => act("mod-topic").arg("text", text.as_str()),
        ChangeAction::Lock { on: true } => act("mod-lock"),
        ChangeAction::Lock { on: false } => act("mod-unlock"),
        ChangeAction::Slow { secs: 0 } => Text::new("mod-slow-off"),
        ChangeAction::Slow { secs } => Text::new("mod-slow").arg("interval", slow(*secs)),
        ChangeAction::Role { member, role } => {
            let key = match role {
                Some(Role::Owner) => "mod-role-owner",
                Some(Role::Moderator) => "mod-role-moderator",
                None => "mod-role-none",
            };
            Text::new(key).arg("member", member.as_str())
        }
    })
}

/// ": the reason" after a line, or nothing.
fn why(reason: &str) -> Text {
    if reason.is_empty() {
        Text::raw("")
    } else {
        Text::new("reason-suffix").arg("reason", reason)
    }
}

/// An audit log row's what, whom and why for a moderation change (its when and who are the change's own).
pub fn audit_row(change: &Change) -> (Text, String, String) {
    let span = |until: Timestamp, forever: &'static str| span(change.ts, until, forever);
    let (what, whom, why) = match &change.action {
        ChangeAction::Edit { .. } | ChangeAction::Delete | ChangeAction::React { .. } => {
            return (Text::raw(""), String::new(), String::new())
        }
        ChangeAction::Remove { reason } => (Text::new("audit-remove"), "", reason.as_str()),
        ChangeAction::Clear {
            member,
            ids,
            reason,
        } => (
            Text::new("audit-clear").arg("count", ids.len() as i64),
            member.as_str(),
            reason.as_str(),
        ),
        ChangeAction::Mute {
            member,
            until,
            reason,
        } => (
            Text::new("audit-mute").arg("span", span(*until, "span-until-unmuted")),
            member.as_str(),
            reason.as_str(),
        ),
        ChangeAction::Unmute { member } => (Text::new("audit-unmute"), member.as_str(), ""),
        ChangeAction::Kick { member, reason } => {
            (Text::new("audit-kick"), member.as_str(), reason.as_str())
        }
        ChangeAction::Ban {
            member,
            until,
            address,
            reason,
        } => {
            let address = if *address {
                Text::new("audit-address")
            } else {
                Text::raw("")
            };
            let what = Text::new("audit-ban")
                .arg("span", span(*until, "span-for-good"))
                .arg("address", address);
            (what, member.as_str(), reason.as_str())
        }
        ChangeAction::Unban { member } => (Text::new("audit-unban"), member.as_str(), ""),
        ChangeAction::Topic { text } if text.is_empty() => {
            (Text::new("audit-topic-cleared"), "", "")
        }
        ChangeAction::Topic { text } => {
            (Text::new("audit-topic").arg("text", text.as_str()), "", "")
        }
        ChangeAction::Lock { on: true } => (Text::new("audit-lock"), "", ""),
        ChangeAction::Lock { on: false } => (Text::new("audit-unlock"), "", ""),
        ChangeAction::Slow { secs: 0 } => (Text::new("audit-slow-off"), "", ""),
        ChangeAction::Slow { secs } => {
            (Text::new("audit-slow").arg("interval", slow(*secs)), "", "")
        }
        ChangeAction::Role { member, role } => {
            let what = match role {
                Some(Role::Owner) => "audit-role-owner",
                Some(Role::Moderator) => "audit-role-moderator",
                None => "audit-role-none",
            };
            (Text::new(what), member.as_str(), "")
        }
    };
    (what, whom.to_string(), why.to_string())
}

/// " for 10 minutes" from `at` to `until`, or the words of `forever` for [`FOREVER`].
fn span(at: Timestamp, until: Timestamp, forever: &'static str) -> Text {
    if until == FOREVER {
        Text::new(forever)
    } else {
        Text::new("span-for").arg("duration", duration(until.saturating_sub(at)))
    }
}

/// A slow mode's interval: "30 s", "5 min".
pub fn slow(secs: u32) -> Text {
    if secs >= 60 && secs.is_multiple_of(60) {
        Text::new("interval-min").arg("count", i64::from(secs / 60))
    } else {
        Text::new("interval-s").arg("count", i64::from(secs))
    }
}

/// A span of `ms` milliseconds in the largest whole unit: "10 minutes", "1 hour", "2 days".
pub fn duration(ms: i64) -> Text {
    let minutes = ((ms + 30_000) / 60_000).max(1);
    let (key, n) = if minutes % 1440 == 0 {
        ("duration-days", minutes / 1440)
    } else if minutes % 60 == 0 {
        ("duration-hours", minutes / 60)
    } else {
        ("duration-minutes", minutes)
    };
    Text::new(key).arg("count", n)
}
