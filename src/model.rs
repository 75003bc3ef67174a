//! The browser's model of a room, which applies the server's frames.
//!
//! It holds members, messages and pending sends, and each change reports the [`Parts`] it
//! touched so that only their views redraw (`live_room`). Pure, so it is tested natively.

use std::collections::HashMap;

pub use crate::connection::{reconnect_delay_ms, ConnState};
use crate::i18n::{error_text, Text};
pub use crate::parts::Parts;
use crate::protocol::pages::{Recent, RoomSnapshot};
use crate::protocol::{
    Change, ChangeAction, ChatMessage, ClientFrame, ErrorCode, Member, MessageId, Quote,
    ServerFrame,
};
use crate::rules::name_fold;
use crate::standing::{self, Standing};
use crate::typing::Typing;

/// Most entries kept on screen; older ones are dropped.
pub const MAX_ENTRIES: usize = 1000;

/// One line of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Message(ChatMessage),
    Notice { seq: u64, text: Text },
}

/// Stable key of an entry for list rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKey {
    Message(MessageId),
    Notice(u64),
}

impl Entry {
    pub fn key(&self) -> EntryKey {
        match self {
            Entry::Message(m) => EntryKey::Message(m.id),
            Entry::Notice { seq, .. } => EntryKey::Notice(*seq),
        }
    }
}

/// A message typed here and not yet confirmed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub client_id: String,
    pub text: String,
    pub reply_to: Option<MessageId>,
}

/// An edit, deletion or reaction sent from here and not yet confirmed: re-sent as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub client_id: String,
    pub frame: ClientFrame,
}

/// What the composer is writing: a new message, a new text for one, or a reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Compose {
    #[default]
    Message,
    /// Editing message `id`, whose text was `text`.
    Edit {
        id: MessageId,
        text: String,
    },
    Reply(Quote),
}

/// Everything the room view shows.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomModel {
    pub room: String,
    pub me: Option<Member>,
    /// Who is online, in join order (in a big room only the first of them).
    pub members: Vec<Member>,
    /// How many are online in all.
    pub online: usize,
    pub entries: Vec<Entry>,
    pub pending: Vec<Pending>,
    /// Changes sent here and not yet confirmed.
    pub pending_changes: Vec<PendingChange>,
    /// Who is typing (fed by the socket, not by `apply`).
    pub typing: Typing,
    /// How often each shown message's content changed, for its row to redraw (`EDITS`).
    versions: HashMap<MessageId, u32>,
    /// Newest log id seen (message or change): the resume point.
    pub last_id: Option<MessageId>,
    pub conn: ConnState,
    /// Last error to show above the composer.
    pub error: Option<Text>,
    /// Why this browser was sent back to the join form.
    pub join_error: Option<Text>,
    pub max_message_chars: usize,
    /// There may be older messages than the first shown.
    pub has_older: bool,
    /// Silence after which the connection counts as dead (from the server's welcome).
    pub silence_ms: u64,
    /// The room's settings and the reader's role, mute and removal.
    pub standing: Standing,
    /// The newest message that came live from someone else (not history, not a resume): announced to screen readers.
    pub latest_live: Option<MessageId>,
    page_size: usize,
    next_notice: u64,
    /// The page's recent messages, until [`RoomModel::load_recent`] puts them into `entries`.
    recent: Option<Recent>,
}

impl RoomModel {
    /// The model of a page's snapshot, its recent messages shown (the tests' way in).
    #[cfg(test)]
    pub fn from_snapshot(snap: RoomSnapshot) -> Self {
        let mut model = RoomModel::from_page(snap);
        model.load_recent();
        model
    }

    /// The model of a page's snapshot, its recent messages not yet read: the chat reads them
    /// ([`RoomModel::load_recent`]) when it starts, a visitor's join view never does.
    pub fn from_page(snap: RoomSnapshot) -> Self {
        let mut model = RoomModel {
            room: snap.room,
            me: snap.me,
            online: snap.online.max(snap.members.len()),
            members: snap.members,
            entries: Vec::new(),
            pending: Vec::new(),
            pending_changes: Vec::new(),
            typing: Typing::default(),
            versions: HashMap::new(),
            last_id: None,
            conn: ConnState::Connecting,
            error: None,
            join_error: None,
            max_message_chars: snap.max_message_chars,
            has_older: false,
            silence_ms: 40_000,
            standing: Standing::default(),
            latest_live: None,
            page_size: snap.page_size,
            next_notice: 0,
            recent: Some(snap.recent),
        };
        model.advance(snap.upto);
        model
    }

    /// Puts the page's recent messages into `entries` (once).
    pub fn load_recent(&mut self) -> Parts {
        let Some(recent) = self.recent.take() else {
            return Parts::NONE;
        };
        let messages = recent.messages();
        self.has_older = messages.len() >= self.page_size;
        for m in messages {
            self.insert_message(m);
        }
        Parts::ENTRIES
    }

    /// Whether the page has messages to show (read or not).
    pub fn has_recent(&self) -> bool {
        !self.entries.is_empty() || self.recent.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// Adds a message once, in id order, and drops its pending copy.
    pub fn insert_message(&mut self, message: ChatMessage) -> Parts {
        let mut changed = Parts::NONE;
        if let Some(client_id) = &message.client_id {
            let before = self.pending.len();
            self.pending.retain(|p| &p.client_id != client_id);
            if self.pending.len() != before {
                changed |= Parts::PENDING;
            }
        }
        let id = message.id;
        let exists = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Message(m) if m.id == id));
        if exists {
            return changed;
        }
        // Usually the newest: search from the end for the first older message.
        let pos = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::Message(m) if m.id < id))
            .map_or_else(
                || {
                    if self.last_id.is_some_and(|last| last > id) {
                        0
                    } else {
                        self.entries.len()
                    }
                },
                |p| p + 1,
            );
        let appended = pos == self.entries.len();
        self.entries.insert(pos, Entry::Message(message));
        self.last_id = Some(self.last_id.map_or(id, |last| last.max(id)));
        if appended && self.entries.len() > MAX_ENTRIES {
            self.has_older = true;
            let excess = self.entries.len() - MAX_ENTRIES;
            for e in self.entries.drain(..excess) {
                if let Entry::Message(m) = e {
                    self.versions.remove(&m.id);
                }
            }
        }
        changed | Parts::ENTRIES
    }

    /// Moves the resume point up to `id` (never back).
    pub fn advance(&mut self, id: MessageId) {
        if id > 0 {
            self.last_id = Some(self.last_id.map_or(id, |last| last.max(id)));
        }
    }

    /// Applies an edit, deletion or reaction to the message it targets, if it is shown, and
    /// to the quotes of the replies to it.
    pub fn apply_change(&mut self, change: Change) -> Parts {
        self.advance(change.id);
        let mut changed = Parts::NONE;
        if let Some(client_id) = &change.client_id {
            let before = self.pending_changes.len();
            self.pending_changes.retain(|p| &p.client_id != client_id);
            if before != self.pending_changes.len() {
                changed |= Parts::PENDING;
            }
        }
        if change.action.is_moderation() {
            let me = self.me.as_ref().map(|me| me.name.clone());
            changed |= self.standing.apply(&change, me.as_deref());
            if let Some(line) = standing::line(&change) {
                self.notice(line);
                changed |= Parts::ENTRIES;
            }
        }
        if let ChangeAction::Clear { ids, .. } = &change.action {
            for &target in ids {
                let reason = String::new();
                let action = ChangeAction::Remove { reason };
                changed |= self.change_message(&Change {
                    target,
                    action,
                    ..change.clone()
                });
            }
            return changed;
        }
        changed | self.change_message(&change)
    }

    /// Applies `change` to the message it targets and to the quotes of the replies to it.
    fn change_message(&mut self, change: &Change) -> Parts {
        let mut changed = Parts::NONE;
        let mut touched = Vec::new();
        let mut quote = None;
        for e in self.entries.iter_mut().rev() {
            let Entry::Message(m) = e else { continue };
            if m.id == change.target {
                let before = m.clone();
                m.apply(change);
                if *m != before {
                    touched.push(m.id);
                }
                quote = Some(if m.deleted {
                    Quote::gone(m.id, &m.name)
                } else {
                    Quote::of(m.id, &m.name, &m.text)
                });
                break;
            }
        }
        // Replies show the newest first line of what they quote.
        let quote = quote.or_else(|| match &change.action {
            ChangeAction::Edit { text } => Some(Quote::of(change.target, &change.name, text)),
            ChangeAction::Delete => Some(Quote::gone(change.target, &change.name)),
            ChangeAction::Remove { .. } => Some(Quote::gone(change.target, &change.name)),
            _ => None,
        });
        if let (Some(quote), false) = (quote, matches!(change.action, ChangeAction::React { .. })) {
            for e in self.entries.iter_mut() {
                if let Entry::Message(m) = e {
                    if let Some(q) = m.reply_to.as_mut().filter(|q| q.id == quote.id) {
                        if *q != quote {
                            *q = quote.clone();
                            touched.push(m.id);
                        }
                    }
                }
            }
        }
        for id in touched {
            *self.versions.entry(id).or_default() += 1;
            changed |= Parts::EDITS;
        }
        changed
    }

    /// How often the content of message `id` changed here (its row redraws when this does).
    pub fn version(&self, id: MessageId) -> u32 {
        self.versions.get(&id).copied().unwrap_or(0)
    }

    /// The shown message `id`.
    pub fn message(&self, id: MessageId) -> Option<&ChatMessage> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Message(m) if m.id == id => Some(m),
            _ => None,
        })
    }

    /// The message Up in an empty composer edits: `me`'s newest one that is not deleted.
    pub fn last_editable(&self, me: &str) -> Option<&ChatMessage> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Message(m) if m.name == me && !m.deleted => Some(m),
            _ => None,
        })
    }

    /// The frame that toggles `me`'s `emoji` reaction on message `id` (`on` is the state wanted).
    pub fn toggle_reaction(
        &self,
        client_id: String,
        id: MessageId,
        emoji: &str,
        me: &str,
    ) -> ClientFrame {
        let on = !self.message(id).is_some_and(|m| m.reacted(emoji, me));
        ClientFrame::React {
            client_id,
            id,
            emoji: emoji.to_string(),
            on,
        }
    }

    /// `name` is typing (never shown for oneself).
    pub fn heard_typing(&mut self, name: &str, now: f64) -> Parts {
        if self
            .me
            .as_ref()
            .is_some_and(|me| name_fold(&me.name) == name_fold(name))
        {
            return Parts::NONE;
        }
        self.typing.heard(name, now);
        Parts::TYPING
    }

    /// Forgets typists not heard for a while.
    pub fn expire_typing(&mut self, now: f64) -> Parts {
        if self.typing.expire(now) {
            Parts::TYPING
        } else {
            Parts::NONE
        }
    }

    /// The entry with this key, looked up from the newest (where new ones usually are).
    pub fn entry(&self, key: EntryKey) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key() == key)
    }

    fn notice(&mut self, text: Text) {
        self.next_notice += 1;
        self.entries.push(Entry::Notice {
            seq: self.next_notice,
            text,
        });
    }

    /// Applies one frame from the server and says which parts it changed (none for a heartbeat).
    pub fn apply(&mut self, frame: ServerFrame) -> Parts {
        match frame {
            ServerFrame::Welcome {
                you,
                members,
                online,
                recent,
                changes,
                upto,
                max_message_chars,
                reset,
                silence_ms,
                room,
                role,
                muted_until,
            } => {
                let mut changed = Parts::ME | Parts::CONN | Parts::ERROR | Parts::LIMITS;
                changed |= self.standing.welcome(room, role, muted_until);
                if silence_ms > 0 {
                    self.silence_ms = silence_ms;
                }
                if reset {
                    // Too much was missed to replay: start again from the latest page.
                    self.entries.clear();
                    self.versions.clear();
                    self.last_id = None;
                    self.has_older = true;
                    self.notice(Text::new("notice-reset"));
                    changed |= Parts::ENTRIES;
                }
                self.me = Some(you);
                let online = online.max(members.len());
                if online != self.online {
                    self.online = online;
                    changed |= Parts::ONLINE;
                }
                if members != self.members {
                    self.members = members;
                    changed |= Parts::MEMBERS;
                }
                self.max_message_chars = max_message_chars;
                for m in recent {
                    changed |= self.insert_message(m);
                }
                for c in changes {
                    changed |= self.apply_change(c);
                }
                self.advance(upto);
                self.conn = ConnState::Online;
                self.error = None;
                changed
            }
            ServerFrame::Message(m) => {
                // Their message ends their typing (history does not).
                let typing = if self.typing.forget(&m.name) {
                    Parts::TYPING
                } else {
                    Parts::NONE
                };
                let (id, theirs) = (m.id, self.me.as_ref().is_none_or(|me| me.name != m.name));
                let changed = self.insert_message(m);
                let newest =
                    matches!(self.entries.last(), Some(Entry::Message(last)) if last.id == id);
                if changed.contains(Parts::ENTRIES) && theirs && newest {
                    self.latest_live = Some(id);
                }
                changed | typing
            }
            ServerFrame::Change(c) => self.apply_change(c),
            // Shown by the typing indicator, which the socket feeds directly.
            ServerFrame::Typing { .. } => Parts::NONE,
            ServerFrame::Heartbeat => Parts::NONE,
            ServerFrame::Joined { member } => {
                let key = name_fold(&member.name);
                if self.members.iter().any(|m| name_fold(&m.name) == key) {
                    return Parts::NONE;
                }
                self.notice(Text::new("notice-joined").arg("name", member.name.as_str()));
                self.members.push(member);
                self.online = self.online.max(self.members.len() - 1) + 1;
                Parts::MEMBERS | Parts::ONLINE | Parts::ENTRIES
            }
            ServerFrame::Left { member } => {
                let key = name_fold(&member.name);
                let before = self.members.len();
                self.members.retain(|m| name_fold(&m.name) != key);
                if self.members.len() == before {
                    return Parts::NONE;
                }
                self.notice(Text::new("notice-left").arg("name", member.name.as_str()));
                self.online = self.online.saturating_sub(1).max(self.members.len());
                let typing = if self.typing.forget(&member.name) {
                    Parts::TYPING
                } else {
                    Parts::NONE
                };
                Parts::MEMBERS | Parts::ONLINE | Parts::ENTRIES | typing
            }
            ServerFrame::Online { count } => {
                if count == self.online {
                    return Parts::NONE;
                }
                self.online = count;
                Parts::ONLINE
            }
            ServerFrame::Error {
                code,
                message,
                client_id,
            } => match code {
                // The close that follows (4011) says so across the page.
                ErrorCode::Banned if client_id.is_none() => Parts::NONE,
                ErrorCode::NameTaken | ErrorCode::SessionInvalid | ErrorCode::RoomFull => {
                    self.me = None;
                    self.conn = ConnState::Offline;
                    self.join_error = Some(error_text(code, message));
                    Parts::ME | Parts::CONN
                }
                _ => {
                    if let Some(id) = client_id.filter(|id| !self.standing.answered(id)) {
                        self.pending.retain(|p| p.client_id != id);
                        let before = self.pending_changes.len();
                        self.pending_changes.retain(|p| p.client_id != id);
                        let key = if before != self.pending_changes.len() {
                            "error-not-changed"
                        } else {
                            "error-not-sent"
                        };
                        self.error = Some(Text::new(key).arg("error", error_text(code, message)));
                        Parts::PENDING | Parts::ERROR
                    } else {
                        self.error = Some(error_text(code, message));
                        Parts::ERROR
                    }
                }
            },
        }
    }

    /// The oldest message shown, where older history would continue.
    pub fn oldest_id(&self) -> Option<MessageId> {
        self.entries.iter().find_map(|e| match e {
            Entry::Message(m) => Some(m.id),
            Entry::Notice { .. } => None,
        })
    }

    /// Adds a page of older history (oldest first) above what is shown; `down_to` says it
    /// was read down to a given message, so there may be older ones however short it is.
    pub fn prepend_older(&mut self, page: Vec<ChatMessage>, down_to: bool) -> Parts {
        self.has_older = down_to || page.len() >= self.page_size;
        let mut changed = Parts::ENTRIES;
        for m in page.into_iter().rev() {
            changed |= self.insert_message(m);
        }
        changed
    }

    /// Sets the connection's state.
    pub fn set_conn(&mut self, conn: ConnState) -> Parts {
        if self.conn == conn {
            return Parts::NONE;
        }
        self.conn = conn;
        Parts::CONN
    }

    /// Records a message typed here, shown as pending until the server confirms it.
    pub fn add_pending(
        &mut self,
        client_id: String,
        text: String,
        reply_to: Option<MessageId>,
    ) -> Parts {
        self.error = None;
        self.pending.push(Pending {
            client_id,
            text,
            reply_to,
        });
        Parts::PENDING | Parts::ERROR
    }

    /// Records a change sent from here, re-sent after a reconnect until the server confirms it.
    pub fn add_pending_change(&mut self, client_id: String, frame: ClientFrame) -> Parts {
        self.error = None;
        self.pending_changes
            .push(PendingChange { client_id, frame });
        Parts::ERROR
    }

    /// The quote a reply to message `id` shows.
    pub fn quote_of(&self, id: MessageId) -> Option<Quote> {
        self.message(id)
            .filter(|m| !m.deleted)
            .map(|m| Quote::of(m.id, &m.name, &m.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::moderation::FOREVER;
    use crate::protocol::{Role, RoomSettings};
    use crate::standing::{Block, Removed};

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            avatar: "fox".into(),
        }
    }

    fn msg(id: u64, client_id: Option<&str>) -> ChatMessage {
        ChatMessage {
            id,
            ts: 0,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: format!("m{id}"),
            client_id: client_id.map(Into::into),
            ..ChatMessage::default()
        }
    }

    fn model() -> RoomModel {
        RoomModel::from_snapshot(RoomSnapshot {
            room: "lobby".into(),
            members: vec![member("Ada")],
            online: 1,
            recent: vec![msg(1, None), msg(2, None)].into(),
            me: Some(member("Ada")),
            max_message_chars: 2000,
            page_size: 2,
            upto: 0,
        })
    }

    fn ids(m: &RoomModel) -> Vec<u64> {
        m.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Message(m) => Some(m.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reconnect_delay_starts_within_a_second_and_caps_at_thirty() {
        assert!(reconnect_delay_ms(1, 1.0) <= 1000);
        assert!(reconnect_delay_ms(1, 0.0) >= 500);
        assert!(reconnect_delay_ms(3, 1.0) > reconnect_delay_ms(2, 1.0));
        assert_eq!(reconnect_delay_ms(20, 1.0), 30_000);
        assert_eq!(reconnect_delay_ms(u32::MAX, 1.0), 30_000);
    }

    #[test]
    fn messages_show_once_in_id_order() {
        let mut m = model();
        m.apply(ServerFrame::Message(msg(4, None)));
        m.apply(ServerFrame::Message(msg(3, None)));
        m.apply(ServerFrame::Message(msg(4, None)));
        assert_eq!(ids(&m), [1, 2, 3, 4]);
        assert_eq!(m.last_id, Some(4));
    }

    #[test]
    fn a_heartbeat_changes_nothing() {
        let mut m = model();
        let before = m.clone();
        assert_eq!(m.apply(ServerFrame::Heartbeat), Parts::NONE);
        assert_eq!(m, before);
    }

    #[test]
    fn a_new_message_touches_only_the_conversation() {
        let mut m = model();
        assert_eq!(m.apply(ServerFrame::Message(msg(3, None))), Parts::ENTRIES);
        assert_eq!(m.apply(ServerFrame::Message(msg(3, None))), Parts::NONE);
        m.add_pending("c1".into(), "hi".into(), None);
        let confirmed = m.apply(ServerFrame::Message(msg(4, Some("c1"))));
        assert_eq!(confirmed, Parts::ENTRIES | Parts::PENDING);
        assert!(!confirmed.contains(Parts::MEMBERS) && !confirmed.contains(Parts::ONLINE));
        let joined = m.apply(ServerFrame::Joined {
            member: member("Bob"),
        });
        assert!(joined.contains(Parts::MEMBERS | Parts::ONLINE | Parts::ENTRIES));
        assert_eq!(joined.indexes().count(), 3);
    }

    #[test]
    fn confirmation_replaces_the_pending_copy() {
        let mut m = model();
        m.add_pending("c1".into(), "hello".into(), None);
        assert_eq!(m.pending.len(), 1);
        m.apply(ServerFrame::Message(msg(3, Some("c1"))));
        assert!(m.pending.is_empty());
        assert_eq!(ids(&m), [1, 2, 3]);
    }

    #[test]
    fn presence_updates_members_and_notices() {
        let mut m = model();
        m.apply(ServerFrame::Joined {
            member: member("Bob"),
        });
        m.apply(ServerFrame::Joined {
            member: member("bob"),
        });
        assert_eq!(m.members.len(), 2);
        m.apply(ServerFrame::Left {
            member: member("Bob"),
        });
        assert_eq!(m.members, [member("Ada")]);
        let notices: Vec<_> = m
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Notice { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(notices, ["Bob joined", "Bob left"]);
    }

    #[test]
    fn a_big_room_shows_its_first_members_and_a_live_count() {
        let mut m = model();
        m.apply(ServerFrame::Welcome {
            you: member("Ada"),
            members: vec![member("Ada"), member("Cy")],
            online: 500,
            recent: vec![],
            changes: vec![],
            upto: 0,
            max_message_chars: 100,
            reset: false,
            silence_ms: 0,
            room: RoomSettings::default(),
            role: None,
            muted_until: None,
        });
        assert_eq!((m.members.len(), m.online), (2, 500));
        m.apply(ServerFrame::Online { count: 499 });
        assert_eq!((m.members.len(), m.online), (2, 499));
        m.apply(ServerFrame::Left {
            member: member("Cy"),
        });
        assert_eq!((m.members.len(), m.online), (1, 498));
        m.apply(ServerFrame::Joined {
            member: member("Bo"),
        });
        assert_eq!((m.members.len(), m.online), (2, 499));
    }

    #[test]
    fn welcome_after_reconnect_merges_without_duplicates() {
        let mut m = model();
        m.conn = ConnState::Reconnecting;
        m.apply(ServerFrame::Welcome {
            you: member("Ada"),
            members: vec![member("Ada"), member("Cy")],
            online: 2,
            recent: vec![msg(2, None), msg(3, None)],
            changes: vec![],
            upto: 0,
            max_message_chars: 100,
            reset: false,
            silence_ms: 5_000,
            room: RoomSettings::default(),
            role: None,
            muted_until: None,
        });
        assert_eq!(m.silence_ms, 5_000);
        assert_eq!(ids(&m), [1, 2, 3]);
        assert_eq!(m.conn, ConnState::Online);
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.max_message_chars, 100);
    }

    #[test]
    fn only_a_live_message_from_someone_else_is_announced() {
        let mut m = model();
        // History from the snapshot is not announced.
        assert_eq!(m.latest_live, None);
        let from_cy = |id| ChatMessage {
            name: "Cy".into(),
            ..msg(id, None)
        };
        // Nor is what a resume's welcome replays.
        let mut resumed = welcome(None, None, RoomSettings::default());
        if let ServerFrame::Welcome {
            members,
            online,
            recent,
            ..
        } = &mut resumed
        {
            *members = vec![member("Ada"), member("Cy")];
            *online = 2;
            *recent = vec![from_cy(3)];
        }
        m.apply(resumed);
        assert_eq!(m.latest_live, None);
        m.apply(ServerFrame::Message(from_cy(4)));
        assert_eq!(m.latest_live, Some(4));
        // The reader's own message is not read back to them.
        m.apply(ServerFrame::Message(msg(5, None)));
        assert_eq!(m.latest_live, Some(4));
        // A repeated message is not announced twice, nor an older one.
        m.latest_live = None;
        m.apply(ServerFrame::Message(from_cy(4)));
        m.apply(ServerFrame::Message(from_cy(2)));
        assert_eq!(m.latest_live, None);
    }

    #[test]
    fn a_reset_welcome_replaces_the_history_and_says_so() {
        let mut m = model();
        m.apply(ServerFrame::Welcome {
            you: member("Ada"),
            members: vec![member("Ada")],
            online: 1,
            recent: vec![msg(2000, None), msg(2001, None)],
            changes: vec![],
            upto: 0,
            max_message_chars: 100,
            reset: true,
            silence_ms: 0,
            room: RoomSettings::default(),
            role: None,
            muted_until: None,
        });
        assert_eq!(ids(&m), [2000, 2001]);
        assert!(m.entries.iter().any(
            |e| matches!(e, Entry::Notice { text, .. } if text.to_string().contains("missed"))
        ));
        assert!(m.has_older);
    }

    #[test]
    fn older_pages_go_above_and_tell_when_history_ends() {
        let mut m = model();
        assert!(m.has_older, "a full first page may have more before it");
        assert_eq!(m.oldest_id(), Some(1));
        m.apply(ServerFrame::Message(msg(3, None)));
        let mut older = model();
        older.entries.clear();
        m.prepend_older(vec![], false);
        assert!(!m.has_older);
        older.prepend_older(vec![msg(5, None), msg(6, None)], false);
        older.prepend_older(vec![msg(3, None), msg(4, None)], false);
        assert_eq!(ids(&older), [3, 4, 5, 6]);
        assert!(older.has_older);
    }

    #[test]
    fn refused_sends_and_lost_names_are_reported() {
        let mut m = model();
        m.add_pending("c1".into(), " ".into(), None);
        m.apply(ServerFrame::Error {
            code: ErrorCode::EmptyMessage,
            message: "Message is empty".into(),
            client_id: Some("c1".into()),
        });
        assert!(m.pending.is_empty());
        let words = m.error.as_ref().map(Text::to_string);
        assert_eq!(words.as_deref(), Some("Not sent: Message is empty"));

        m.apply(ServerFrame::error(ErrorCode::NameTaken, "taken"));
        assert_eq!(m.me, None);
        let words = m.join_error.as_ref().map(Text::to_string);
        assert_eq!(
            words.as_deref(),
            Some("That name is already taken in this room"),
            "worded by its code, not the server's sentence"
        );
    }

    #[test]
    fn old_entries_are_dropped_past_the_cap() {
        let mut m = model();
        for id in 3..(MAX_ENTRIES as u64 + 10) {
            m.apply(ServerFrame::Message(msg(id, None)));
        }
        assert_eq!(m.entries.len(), MAX_ENTRIES);
        assert_eq!(m.last_id, Some(MAX_ENTRIES as u64 + 9));
    }

    fn change(id: u64, target: u64, name: &str, action: ChangeAction) -> Change {
        Change {
            id,
            ts: id as i64,
            target,
            name: name.into(),
            avatar: "fox".into(),
            client_id: None,
            action,
        }
    }

    #[test]
    fn a_change_redraws_its_message_and_the_replies_quoting_it() {
        let mut m = model();
        let mut reply = msg(3, None);
        reply.reply_to = Some(Quote::of(1, "Ada", "m1"));
        m.apply(ServerFrame::Message(reply));
        let edit = change(
            4,
            1,
            "Ada",
            ChangeAction::Edit {
                text: "new\nmore".into(),
            },
        );
        assert_eq!(m.apply(ServerFrame::Change(edit.clone())), Parts::EDITS);
        assert_eq!((m.version(1), m.version(2), m.version(3)), (1, 0, 1));
        assert_eq!(m.message(1).map(|x| x.text.as_str()), Some("new\nmore"));
        assert_eq!(
            m.message(3)
                .and_then(|x| x.reply_to.clone())
                .map(|q| q.text),
            Some("new".into())
        );
        assert_eq!(
            m.apply(ServerFrame::Change(edit)),
            Parts::NONE,
            "applied once"
        );
        m.apply(ServerFrame::Change(change(
            5,
            1,
            "Ada",
            ChangeAction::Delete,
        )));
        let quote = m.message(3).and_then(|x| x.reply_to.clone());
        assert!(quote.is_some_and(|q| q.gone && q.text.is_empty()));
        assert_eq!(m.last_id, Some(5), "changes move the resume point");
    }

    #[test]
    fn up_edits_my_newest_message_that_is_not_deleted() {
        let mut m = model();
        let mut bob = msg(3, None);
        bob.name = "Bob".into();
        m.apply(ServerFrame::Message(bob));
        assert_eq!(m.last_editable("Ada").map(|x| x.id), Some(2));
        m.apply(ServerFrame::Change(change(
            4,
            2,
            "Ada",
            ChangeAction::Delete,
        )));
        assert_eq!(m.last_editable("Ada").map(|x| x.id), Some(1));
        assert_eq!(m.last_editable("Cy").map(|x| x.id), None);
    }

    #[test]
    fn a_reaction_toggles_the_readers_own_state() {
        let mut m = model();
        let on = |m: &RoomModel| match m.toggle_reaction("c".into(), 1, "👍", "Ada") {
            ClientFrame::React { on, .. } => on,
            _ => unreachable!(),
        };
        assert!(on(&m));
        let react = |id, name: &str, on| {
            change(
                id,
                1,
                name,
                ChangeAction::React {
                    emoji: "👍".into(),
                    on,
                },
            )
        };
        m.apply(ServerFrame::Change(react(3, "Ada", true)));
        m.apply(ServerFrame::Change(react(4, "Bob", true)));
        assert!(!on(&m), "reacted already: the click takes it back");
        assert_eq!(m.message(1).map(|x| x.reactions[0].names.len()), Some(2));
        m.apply(ServerFrame::Change(react(5, "Ada", false)));
        assert!(on(&m));
    }

    #[test]
    fn changes_stay_pending_until_confirmed_or_refused() {
        let mut m = model();
        let frame = |c: &str| ClientFrame::Delete {
            client_id: c.into(),
            id: 1,
        };
        m.add_pending_change("c1".into(), frame("c1"));
        m.add_pending_change("c2".into(), frame("c2"));
        let mut confirmed = change(3, 1, "Ada", ChangeAction::Delete);
        confirmed.client_id = Some("c1".into());
        assert!(m
            .apply(ServerFrame::Change(confirmed))
            .contains(Parts::PENDING));
        m.apply(ServerFrame::Error {
            code: ErrorCode::NotAuthor,
            message: "Only the author".into(),
            client_id: Some("c2".into()),
        });
        assert!(m.pending_changes.is_empty());
        let words = m.error.as_ref().map(Text::to_string);
        assert_eq!(
            words.as_deref(),
            Some("Not changed: Only its author may change a message")
        );
    }

    #[test]
    fn typing_ends_with_the_typists_message_or_leaving_and_never_shows_me() {
        let mut m = model();
        assert_eq!(m.heard_typing("Ada", 0.0), Parts::NONE, "Ada is me");
        assert_eq!(m.heard_typing("Bob", 0.0), Parts::TYPING);
        m.heard_typing("Cy", 0.0);
        let mut old_cy = msg(0, None);
        old_cy.name = "Cy".into();
        assert!(
            !m.prepend_older(vec![old_cy], false).contains(Parts::TYPING),
            "history does not"
        );
        let mut bob = msg(3, None);
        bob.name = "Bob".into();
        assert!(m.apply(ServerFrame::Message(bob)).contains(Parts::TYPING));
        assert_eq!(m.typing.line(Some("Ada")), "Cy is typing…");
        m.apply(ServerFrame::Joined {
            member: member("Cy"),
        });
        assert!(m
            .apply(ServerFrame::Left {
                member: member("Cy")
            })
            .contains(Parts::TYPING));
        assert_eq!(m.typing.line(Some("Ada")), "");
        m.heard_typing("Bob", 0.0);
        assert_eq!(m.expire_typing(5_000.0), Parts::NONE);
        assert_eq!(m.expire_typing(6_000.0), Parts::TYPING);
    }

    #[test]
    fn history_down_to_a_message_may_have_more_before_it() {
        let mut m = model();
        m.prepend_older(vec![msg(0, None)], true);
        assert!(m.has_older);
        assert_eq!(ids(&m), [0, 1, 2]);
    }

    fn welcome(role: Option<Role>, muted_until: Option<i64>, room: RoomSettings) -> ServerFrame {
        ServerFrame::Welcome {
            you: member("Ada"),
            members: vec![member("Ada")],
            online: 1,
            recent: vec![],
            changes: vec![],
            upto: 0,
            max_message_chars: 100,
            reset: false,
            silence_ms: 0,
            room,
            role,
            muted_until,
        }
    }

    fn moderation(id: u64, name: &str, action: ChangeAction) -> Change {
        let mut c = change(id, 0, name, action);
        c.ts = 1_000_000;
        c
    }

    fn lines(m: &RoomModel) -> Vec<String> {
        m.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Notice { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_moderation_change_is_a_plain_line_in_the_conversation() {
        let mut m = model();
        let until = |minutes: i64| 1_000_000 + minutes * 60_000;
        let actions = [
            (
                "Ann",
                ChangeAction::Remove {
                    reason: String::new(),
                },
            ),
            (
                "Ann",
                ChangeAction::Remove {
                    reason: "rude".into(),
                },
            ),
            (
                "Ann",
                ChangeAction::Mute {
                    member: "Bob".into(),
                    until: until(10),
                    reason: "spam".into(),
                },
            ),
            (
                "Ann",
                ChangeAction::Mute {
                    member: "Bob".into(),
                    until: FOREVER,
                    reason: String::new(),
                },
            ),
            (
                "Ann",
                ChangeAction::Unmute {
                    member: "Bob".into(),
                },
            ),
            (
                "Ann",
                ChangeAction::Kick {
                    member: "Bob".into(),
                    reason: "calm down".into(),
                },
            ),
            (
                "",
                ChangeAction::Kick {
                    member: "Bob".into(),
                    reason: String::new(),
                },
            ),
            (
                "Ann",
                ChangeAction::Ban {
                    member: "Bob".into(),
                    until: until(60),
                    address: true,
                    reason: String::new(),
                },
            ),
            (
                "Ann",
                ChangeAction::Ban {
                    member: "Bob".into(),
                    until: until(1440),
                    address: false,
                    reason: "<b>x</b>".into(),
                },
            ),
            (
                "",
                ChangeAction::Ban {
                    member: "Bob".into(),
                    until: FOREVER,
                    address: false,
                    reason: String::new(),
                },
            ),
            (
                "Ann",
                ChangeAction::Unban {
                    member: "Bob".into(),
                },
            ),
            (
                "Ann",
                ChangeAction::Topic {
                    text: "Rust & <friends>".into(),
                },
            ),
            (
                "Ann",
                ChangeAction::Topic {
                    text: String::new(),
                },
            ),
            ("Ann", ChangeAction::Lock { on: true }),
            ("Ann", ChangeAction::Lock { on: false }),
            ("Ann", ChangeAction::Slow { secs: 30 }),
            ("Ann", ChangeAction::Slow { secs: 300 }),
            ("Ann", ChangeAction::Slow { secs: 0 }),
            (
                "",
                ChangeAction::Role {
                    member: "Ann".into(),
                    role: Some(Role::Moderator),
                },
            ),
            (
                "Ann",
                ChangeAction::Role {
                    member: "Cy".into(),
                    role: None,
                },
            ),
            (
                "",
                ChangeAction::Role {
                    member: "Ann".into(),
                    role: Some(Role::Owner),
                },
            ),
            (
                "Ann",
                ChangeAction::Clear {
                    member: "Bob".into(),
                    ids: vec![1, 2],
                    reason: "flood".into(),
                },
            ),
        ];
        for (i, (name, action)) in actions.into_iter().enumerate() {
            m.apply(ServerFrame::Change(moderation(10 + i as u64, name, action)));
        }
        assert_eq!(
            lines(&m),
            [
                "Ann removed a message",
                "Ann removed a message: rude",
                "Ann muted Bob for 10 minutes: spam",
                "Ann muted Bob until unmuted",
                "Ann unmuted Bob",
                "Bob was kicked by Ann: calm down",
                "Bob was kicked by an operator",
                "Ann banned Bob for 1 hour",
                "Ann banned Bob for 1 day: <b>x</b>",
                "An operator banned Bob for good",
                "Ann unbanned Bob",
                "Ann set the topic: Rust & <friends>",
                "Ann cleared the topic",
                "Ann locked the room",
                "Ann unlocked the room",
                "Slow mode: one message every 30 s",
                "Slow mode: one message every 5 min",
                "Slow mode is off",
                "Ann is now a moderator",
                "Cy is no longer a moderator",
                "Ann is now the owner",
                "Ann removed 2 recent messages by Bob: flood",
            ]
        );
        // Member's own changes are no line.
        let before = lines(&m).len();
        m.apply(ServerFrame::Change(change(
            40,
            1,
            "Ada",
            ChangeAction::Delete,
        )));
        assert_eq!(lines(&m).len(), before);
        assert_eq!(
            m.last_id,
            Some(40),
            "moderation changes move the resume point too"
        );
    }

    #[test]
    fn removals_and_clears_hide_messages_and_their_quotes() {
        let mut m = model();
        let mut reply = msg(3, None);
        reply.reply_to = Some(Quote::of(1, "Ada", "m1"));
        m.apply(ServerFrame::Message(reply));
        m.apply(ServerFrame::Message(msg(4, None)));
        let mut remove = moderation(
            5,
            "Ann",
            ChangeAction::Remove {
                reason: String::new(),
            },
        );
        remove.target = 1;
        let changed = m.apply(ServerFrame::Change(remove));
        assert!(changed.contains(Parts::EDITS | Parts::ENTRIES));
        assert!(m.message(1).is_some_and(|x| x.removed && x.text.is_empty()));
        assert!(m
            .message(3)
            .and_then(|x| x.reply_to.clone())
            .is_some_and(|q| q.gone));
        let clear = ChangeAction::Clear {
            member: "Ada".into(),
            ids: vec![2, 4],
            reason: String::new(),
        };
        m.apply(ServerFrame::Change(moderation(6, "Ann", clear)));
        assert!(m.message(2).is_some_and(|x| x.removed));
        assert!(m.message(4).is_some_and(|x| x.removed));
        assert!(
            m.message(3).is_some_and(|x| !x.deleted),
            "a clear removes only what it lists"
        );
    }

    #[test]
    fn settings_role_and_mute_come_with_the_welcome_and_follow_changes() {
        let mut m = model();
        let room = RoomSettings {
            topic: "Rust".into(),
            locked: false,
            slow_secs: 0,
        };
        let changed = m.apply(welcome(None, Some(FOREVER), room));
        assert!(changed.contains(Parts::ROOM | Parts::STANDING));
        assert_eq!(m.standing.settings.topic, "Rust");
        assert_eq!(m.standing.block(0), Some(Block::Muted { until: FOREVER }));
        // A mute of someone else is not mine.
        let unmute_bob = ChangeAction::Unmute {
            member: "Bob".into(),
        };
        assert!(!m
            .apply(ServerFrame::Change(moderation(7, "Ann", unmute_bob)))
            .contains(Parts::STANDING));
        assert_eq!(m.standing.muted_until, Some(FOREVER));
        let unmute_me = ChangeAction::Unmute {
            member: "ada".into(),
        };
        assert!(m
            .apply(ServerFrame::Change(moderation(8, "Ann", unmute_me)))
            .contains(Parts::STANDING));
        assert_eq!(m.standing.block(0), None);
        let mute = ChangeAction::Mute {
            member: "Ada".into(),
            until: 5_000,
            reason: String::new(),
        };
        m.apply(ServerFrame::Change(moderation(9, "Ann", mute)));
        assert_eq!(m.standing.block(4_999), Some(Block::Muted { until: 5_000 }));
        assert_eq!(m.standing.block(5_000), None, "a mute ends by itself");
        let topic = ChangeAction::Topic { text: "Go".into() };
        assert!(m
            .apply(ServerFrame::Change(moderation(10, "Ann", topic)))
            .contains(Parts::ROOM));
        m.apply(ServerFrame::Change(moderation(
            11,
            "Ann",
            ChangeAction::Lock { on: true },
        )));
        assert_eq!(m.standing.block(6_000), Some(Block::Locked));
        let role = ChangeAction::Role {
            member: "Ada".into(),
            role: Some(Role::Moderator),
        };
        assert!(m
            .apply(ServerFrame::Change(moderation(12, "", role)))
            .contains(Parts::STANDING));
        assert_eq!(m.standing.role, Some(Role::Moderator));
        assert_eq!(
            m.standing.block(6_000),
            None,
            "moderators may post in a locked room"
        );
        // A resume's welcome brings the newest settings.
        let room = RoomSettings {
            topic: "Go".into(),
            locked: true,
            slow_secs: 30,
        };
        m.apply(welcome(Some(Role::Moderator), None, room));
        assert_eq!(
            (m.standing.settings.locked, m.standing.settings.slow_secs),
            (true, 30)
        );
    }

    #[test]
    fn slow_mode_counts_down_from_the_last_send_for_members_only() {
        let mut m = model();
        m.apply(ServerFrame::Change(moderation(
            5,
            "Ann",
            ChangeAction::Slow { secs: 30 },
        )));
        assert_eq!(m.standing.block(0), None, "nothing sent yet");
        m.standing.last_sent = Some(10_000);
        assert_eq!(m.standing.block(10_000), Some(Block::Slow { secs: 30 }));
        assert_eq!(m.standing.block(39_001), Some(Block::Slow { secs: 1 }));
        assert_eq!(m.standing.block(40_000), None);
        assert_eq!(
            Block::Slow { secs: 12 }.text(|_| String::new()),
            "You can send again in 12 s"
        );
        assert_eq!(
            Block::Muted { until: FOREVER }.text(|_| String::new()),
            "You are muted until a moderator unmutes you"
        );
        assert_eq!(
            Block::Muted { until: 9 }.text(|t| format!("t{t}")),
            "You are muted until t9"
        );
        assert_eq!(
            Block::Locked.text(|_| String::new()),
            "This room is read-only"
        );
        m.standing.role = Some(Role::Owner);
        assert_eq!(m.standing.block(10_000), None, "moderators are exempt");
        m.standing.removed = Some(Removed {
            banned: true,
            reason: "spam".into(),
        });
        assert_eq!(m.standing.block(10_000), Some(Block::Removed));
        let kicked = Removed {
            banned: false,
            reason: String::new(),
        };
        let at = |ts: crate::protocol::Timestamp| format!("<{ts}>");
        assert_eq!(
            kicked.text(at),
            "You were removed from the room by a moderator."
        );
        assert_eq!(
            Removed {
                banned: true,
                reason: "spam".into()
            }
            .text(at),
            "You are banned from this room: spam"
        );
        let worded = "You are banned from this room until 2030-01-01 10:00 UTC: spam";
        let said = Removed {
            banned: true,
            reason: worded.into(),
        };
        // The end of the ban is a moment the page words in its language and time zone.
        let text = said.text(at);
        assert_eq!(text.key, "removed-banned-until");
        assert_eq!(
            text,
            "You are banned from this room until <1893492000000>: spam"
        );
        assert_eq!(
            text.render(crate::i18n::Lang::Zh),
            "你已被禁止进入这个聊天室，直到 <1893492000000>：spam"
        );
        let before = m.clone();
        assert_eq!(
            m.apply(ServerFrame::error(ErrorCode::Banned, worded)),
            Parts::NONE
        );
        assert_eq!(m, before, "the ban notice, not the error line, says it");
    }

    #[test]
    fn a_refused_moderation_shows_the_servers_words_and_a_claim_clears_the_owner_link() {
        let mut m = model();
        m.standing.note_sent("m1".into());
        m.apply(ServerFrame::Error {
            code: ErrorCode::NotModerator,
            message: "Only moderators may do that".into(),
            client_id: Some("m1".into()),
        });
        let words = m.error.as_ref().map(Text::to_string);
        assert_eq!(
            words.as_deref(),
            Some("Only the room's moderators may do that")
        );
        m.standing.owner_token = Some("tok".into());
        m.standing.note_sent("c1".into());
        let mut claimed = moderation(
            5,
            "",
            ChangeAction::Role {
                member: "Ada".into(),
                role: Some(Role::Owner),
            },
        );
        claimed.client_id = Some("c1".into());
        m.apply(ServerFrame::Change(claimed));
        assert_eq!(
            (m.standing.role, m.standing.owner_token.as_deref()),
            (Some(Role::Owner), None)
        );
        assert!(!m.standing.answered("c1"), "answered once");
    }
}
