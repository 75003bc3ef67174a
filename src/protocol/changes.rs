//! Changes to posted messages (edits, deletions, reactions) and how a message's state follows from them.
//!
//! A change is an entry of the room's one ordered log, numbered in the same sequence as
//! messages. Every change states the result, not a step (`on: true`, not "toggle"), so
//! applying one twice, or a replay of old changes after a message already in its newest
//! state, ends in the same state: [`ChatMessage::apply`] is the one rule both sides follow.

use serde::{Deserialize, Serialize};

use super::moderation::{Role, RoomSettings};
use super::{ChatMessage, MessageId, Timestamp};

/// Most characters of the original a reply's quote keeps.
pub const QUOTE_CHARS: usize = 120;

/// A change to message `target`, as stored and broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Its place in the room's log (the same sequence as message ids).
    pub id: MessageId,
    /// When the server accepted it.
    pub ts: Timestamp,
    /// The message it changes.
    pub target: MessageId,
    /// Who made it (for edits and deletions, the message's author).
    pub name: String,
    pub avatar: String,
    /// The sender's own id for this change, so that the sender can match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(flatten)]
    pub action: ChangeAction,
}

/// What a change does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ChangeAction {
    /// The message's text is now `text`. (In a replay, `text` is the message's newest text.)
    Edit {
        text: String,
    },
    /// The message is deleted: its text is gone, from the store too.
    Delete,
    /// Member `name` has (`on`) or has not reacted to the message with `emoji`.
    React {
        emoji: String,
        on: bool,
    },
    // Moderation: `name` is the moderator who acted (empty: the server's operator), and
    // `target` is the message for `remove`, 0 otherwise.
    /// A moderator removed the message: like a deletion, shown as removed by a moderator.
    Remove {
        #[serde(default)]
        reason: String,
    },
    /// A moderator removed the messages `ids` that `member` posted recently.
    Clear {
        member: String,
        ids: Vec<MessageId>,
        #[serde(default)]
        reason: String,
    },
    /// `member` may not post until `until` (`moderation::FOREVER`: until unmuted).
    Mute {
        member: String,
        until: Timestamp,
        #[serde(default)]
        reason: String,
    },
    Unmute {
        member: String,
    },
    /// `member`'s connections were closed (close code 4010); they may join again.
    Kick {
        member: String,
        #[serde(default)]
        reason: String,
    },
    /// `member` is banned until `until` (close code 4011): their session and name, and with
    /// `address` their client address.
    Ban {
        member: String,
        until: Timestamp,
        #[serde(default)]
        address: bool,
        #[serde(default)]
        reason: String,
    },
    Unban {
        member: String,
    },
    /// The room's topic is now `text`.
    Topic {
        text: String,
    },
    /// The room is read-only (`on`) or open again.
    Lock {
        on: bool,
    },
    /// Slow mode: one message per member every `secs` (0: off).
    Slow {
        secs: u32,
    },
    /// `member` is now `role` (`None`: no longer a moderator).
    Role {
        member: String,
        #[serde(default)]
        role: Option<Role>,
    },
}

impl ChangeAction {
    /// A moderator's (or the operator's) action, not a member's own.
    pub fn is_moderation(&self) -> bool {
        !matches!(
            self,
            ChangeAction::Edit { .. } | ChangeAction::Delete | ChangeAction::React { .. }
        )
    }
}

impl RoomSettings {
    /// Applies a topic, lock or slow mode change (others change nothing here).
    pub fn apply(&mut self, change: &Change) {
        match &change.action {
            ChangeAction::Topic { text } => self.topic.clone_from(text),
            ChangeAction::Lock { on } => self.locked = *on,
            ChangeAction::Slow { secs } => self.slow_secs = *secs,
            _ => {}
        }
    }
}

/// The message a reply answers, as the reply shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: MessageId,
    /// Its author; empty when the original is no longer kept.
    #[serde(default)]
    pub name: String,
    /// The first line of its newest text, at most [`QUOTE_CHARS`] characters.
    #[serde(default)]
    pub text: String,
    /// The original was deleted (or is no longer kept): there is no text to show.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
}

impl Quote {
    /// The quote of message `id` by `name` whose text is `text`.
    pub fn of(id: MessageId, name: &str, text: &str) -> Quote {
        Quote {
            id,
            name: name.to_string(),
            text: first_line(text),
            gone: false,
        }
    }

    /// The quote of a message that is deleted or no longer kept.
    pub fn gone(id: MessageId, name: &str) -> Quote {
        Quote {
            id,
            name: name.to_string(),
            text: String::new(),
            gone: true,
        }
    }
}

/// The first non-blank line of `text`, cut to [`QUOTE_CHARS`] characters (with `…` when cut).
pub fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() <= QUOTE_CHARS {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(QUOTE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// One emoji on a message: who reacted with it, in the order they did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub names: Vec<String>,
}

impl ChatMessage {
    /// Applies `change` (to this message only: `change.target` must be its id, or a clear
    /// must list it). Idempotent, and a deleted message takes no further change.
    pub fn apply(&mut self, change: &Change) {
        if let ChangeAction::Clear { ids, .. } = &change.action {
            if ids.contains(&self.id) {
                self.remove();
            }
            return;
        }
        if change.target != self.id || self.deleted {
            return;
        }
        match &change.action {
            ChangeAction::Remove { .. } => self.remove(),
            ChangeAction::Edit { text } => {
                self.text.clone_from(text);
                self.edited = Some(self.edited.map_or(change.ts, |t| t.max(change.ts)));
            }
            ChangeAction::Delete => {
                self.text.clear();
                self.deleted = true;
                self.reactions.clear();
                self.edited = None;
            }
            ChangeAction::React { emoji, on } => self.react(emoji, &change.name, *on),
            _ => {}
        }
    }

    /// Removed by a moderator: deleted, and marked so.
    fn remove(&mut self) {
        if !self.deleted {
            self.text.clear();
            self.deleted = true;
            self.reactions.clear();
            self.edited = None;
        }
        self.removed = true;
    }

    /// Sets whether `name` reacted with `emoji`.
    pub fn react(&mut self, emoji: &str, name: &str, on: bool) {
        let at = self.reactions.iter().position(|r| r.emoji == emoji);
        match (at, on) {
            (Some(i), true) => {
                let names = &mut self.reactions[i].names;
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            (None, true) => self.reactions.push(Reaction {
                emoji: emoji.to_string(),
                names: vec![name.to_string()],
            }),
            (Some(i), false) => {
                self.reactions[i].names.retain(|n| n != name);
                if self.reactions[i].names.is_empty() {
                    self.reactions.remove(i);
                }
            }
            (None, false) => {}
        }
    }

    /// Has `name` reacted with `emoji`?
    pub fn reacted(&self, emoji: &str, name: &str) -> bool {
        self.reactions
            .iter()
            .any(|r| r.emoji == emoji && r.names.iter().any(|n| n == name))
    }
}

/// Is `text` one emoji (one pictograph, flag, keycap or joined sequence, with its modifiers)?
pub fn is_single_emoji(text: &str) -> bool {
    if text.is_empty() || text.len() > 64 {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    // Regional indicator pairs are flags.
    if chars.len() == 2
        && chars
            .iter()
            .all(|c| ('\u{1F1E6}'..='\u{1F1FF}').contains(c))
    {
        return true;
    }
    // Keycaps: a digit, `#` or `*`, optionally U+FE0F, then U+20E3.
    if let [base, rest @ ..] = chars.as_slice() {
        if (base.is_ascii_digit() || *base == '#' || *base == '*')
            && matches!(rest, ['\u{20E3}'] | ['\u{FE0F}', '\u{20E3}'])
        {
            return true;
        }
    }
    // Otherwise: pictographs joined by ZWJ, each followed only by modifiers.
    let mut expect_base = true;
    for &c in &chars {
        if expect_base {
            if !is_pictograph(c) {
                return false;
            }
            expect_base = false;
        } else if c == '\u{200D}' {
            expect_base = true;
        } else if !is_emoji_modifier(c) {
            return false;
        }
    }
    !expect_base
}

fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{21AA}' | '\u{231A}'..='\u{23FF}' | '\u{24C2}' | '\u{25AA}'..='\u{25FE}'
        | '\u{2600}'..='\u{27BF}' | '\u{2934}' | '\u{2935}' | '\u{2B05}'..='\u{2B55}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}' | '\u{1F000}'..='\u{1FAFF}')
        && !('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_emoji_modifier(c: char) -> bool {
    matches!(c, '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> ChatMessage {
        ChatMessage {
            id: 5,
            ts: 1,
            name: "Ann".into(),
            avatar: "fox".into(),
            text: "helo".into(),
            ..ChatMessage::default()
        }
    }

    fn change(id: MessageId, action: ChangeAction, name: &str) -> Change {
        Change {
            id,
            ts: id as i64 * 10,
            target: 5,
            name: name.into(),
            avatar: "fox".into(),
            client_id: None,
            action,
        }
    }

    fn edit(id: MessageId, text: &str) -> Change {
        change(id, ChangeAction::Edit { text: text.into() }, "Ann")
    }

    fn react(id: MessageId, emoji: &str, name: &str, on: bool) -> Change {
        let action = ChangeAction::React {
            emoji: emoji.into(),
            on,
        };
        change(id, action, name)
    }

    #[test]
    fn changes_apply_once_however_often_they_arrive() {
        let mut m = message();
        let all = [
            edit(6, "hello"),
            react(7, "👍", "Ben", true),
            react(8, "👍", "Cy", true),
            react(9, "🎉", "Ben", true),
            react(10, "👍", "Ben", false),
        ];
        for c in all.iter().chain(all.iter()) {
            m.apply(c);
        }
        assert_eq!(m.text, "hello");
        assert_eq!(m.edited, Some(60));
        let shown: Vec<(&str, Vec<&str>)> = m
            .reactions
            .iter()
            .map(|r| {
                (
                    r.emoji.as_str(),
                    r.names.iter().map(|n| n.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(shown, [("👍", vec!["Cy"]), ("🎉", vec!["Ben"])]);
        assert!(m.reacted("🎉", "Ben") && !m.reacted("👍", "Ben"));
    }

    #[test]
    fn a_deleted_message_keeps_no_text_and_takes_no_change() {
        let mut m = message();
        m.apply(&react(6, "👍", "Ben", true));
        m.apply(&change(7, ChangeAction::Delete, "Ann"));
        m.apply(&edit(8, "back"));
        m.apply(&react(9, "👍", "Ben", true));
        assert!(m.deleted);
        assert_eq!((m.text.as_str(), m.reactions.len()), ("", 0));
        let mut other = message();
        other.id = 4;
        other.apply(&edit(6, "not mine"));
        assert_eq!(other.text, "helo", "a change applies to its target only");
    }

    #[test]
    fn removals_and_clears_hide_a_message_for_good_and_settings_follow() {
        let mut m = message();
        m.apply(&change(
            6,
            ChangeAction::Remove {
                reason: "spam".into(),
            },
            "Mod",
        ));
        assert!(m.deleted && m.removed && m.text.is_empty());
        m.apply(&edit(7, "back"));
        assert!(m.text.is_empty());
        let mut other = message();
        other.id = 9;
        let clear = Change {
            target: 0,
            ..change(
                10,
                ChangeAction::Clear {
                    member: "Ann".into(),
                    ids: vec![8, 9],
                    reason: String::new(),
                },
                "Mod",
            )
        };
        other.apply(&clear);
        assert!(other.removed);
        let mut kept = message();
        kept.apply(&clear);
        assert!(!kept.deleted, "a clear removes only what it lists");
        let mut settings = RoomSettings::default();
        settings.apply(&change(
            11,
            ChangeAction::Topic {
                text: "Rust".into(),
            },
            "Mod",
        ));
        settings.apply(&change(12, ChangeAction::Lock { on: true }, "Mod"));
        settings.apply(&change(13, ChangeAction::Slow { secs: 30 }, "Mod"));
        assert_eq!(
            (settings.topic.as_str(), settings.locked, settings.slow_secs),
            ("Rust", true, 30)
        );
        assert!(ChangeAction::Kick {
            member: "Bob".into(),
            reason: String::new()
        }
        .is_moderation());
        assert!(!ChangeAction::Delete.is_moderation());
        let v = serde_json::to_value(change(
            14,
            ChangeAction::Ban {
                member: "Bob".into(),
                until: 5,
                address: true,
                reason: "x".into(),
            },
            "Mod",
        ))
        .unwrap();
        assert_eq!(
            (v["action"].as_str(), v["member"].as_str()),
            (Some("ban"), Some("Bob"))
        );
    }

    #[test]
    fn changes_encode_flat_with_their_action() {
        let c = react(7, "👍", "Ben", true);
        let v: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(v["action"], "react");
        assert_eq!(v["emoji"], "👍");
        assert_eq!(v["target"], 5);
        let back: Change = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        let d = change(8, ChangeAction::Delete, "Ann");
        let back: Change = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn quotes_keep_the_first_line_cut_short() {
        assert_eq!(first_line("\n  hello there \nmore"), "hello there");
        let long = "x".repeat(500);
        let q = Quote::of(3, "Ann", &long);
        assert_eq!(q.text.chars().count(), QUOTE_CHARS);
        assert!(q.text.ends_with('…'));
    }

    #[test]
    fn single_emoji_are_told_from_text_and_from_several() {
        for ok in ["👍", "🎉", "❤️", "👍🏽", "👩‍👩‍👧", "🇫🇷", "1️⃣", "#⃣", "🏳️‍🌈", "☕"]
        {
            assert!(is_single_emoji(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "ok",
            "👍👍",
            "👍 ",
            " 👍",
            "<b>",
            "🏽",
            "\u{200D}",
            "👍\u{200D}",
            "1",
        ] {
            assert!(!is_single_emoji(bad), "{bad:?}");
        }
    }
}
