//! One room: its members, their connections and recent messages, and the fan-out of every event to every connection.
//!
//! All state sits behind one mutex per room. Every event is serialised once and pushed to
//! each connection's [`Outbox`] without waiting while the lock is held, so all members see
//! events in the same order and one slow socket never holds up the others: a full outbox
//! gets its connection closed as a slow consumer instead.

use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

use super::outbox::Outbox;
use super::session::{Session, SessionId};
use crate::protocol::{close, ChatMessage, ErrorCode, Member, MessageId, ServerFrame};
use crate::rules::{self, name_key, TextError};

/// Identifies one WebSocket connection, unique per process.
pub type ConnId = u64;

/// Limits that apply to every room.
#[derive(Clone, Debug)]
pub struct RoomLimits {
    pub max_members: usize,
    pub recent_messages: usize,
    pub max_message_chars: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_members: 25_000,
            recent_messages: 50,
            max_message_chars: rules::DEFAULT_MAX_MESSAGE_CHARS,
        }
    }
}

/// Why a member cannot join or reserve a name.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum JoinError {
    #[error("That name is already taken in this room")]
    NameTaken,
    #[error("This room is full")]
    RoomFull,
}

impl JoinError {
    pub fn code(&self) -> ErrorCode {
        match self {
            JoinError::NameTaken => ErrorCode::NameTaken,
            JoinError::RoomFull => ErrorCode::RoomFull,
        }
    }
}

/// Why a posted message was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PostError {
    #[error("Join the room before sending")]
    NotJoined,
    #[error("Message id must be 1–64 letters, digits, - or _")]
    InvalidClientId,
    #[error(transparent)]
    Text(#[from] TextError),
}

impl PostError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PostError::NotJoined => ErrorCode::NotJoined,
            PostError::InvalidClientId => ErrorCode::InvalidClientId,
            PostError::Text(TextError::Empty) => ErrorCode::EmptyMessage,
            PostError::Text(TextError::TooLong { .. }) => ErrorCode::MessageTooLong,
            PostError::Text(TextError::Characters) => ErrorCode::InvalidText,
        }
    }
}

struct MemberEntry {
    member: Member,
    sid: SessionId,
    /// Open connections (tabs) of this member.
    conns: usize,
    /// Join order, for the member list.
    seq: u64,
}

struct ConnEntry {
    key: String,
    outbox: Outbox,
}

#[derive(Default)]
struct RoomState {
    members: HashMap<String, MemberEntry>,
    reservations: HashMap<String, (SessionId, Instant)>,
    conns: HashMap<ConnId, ConnEntry>,
    recent: VecDeque<ChatMessage>,
    last_id: MessageId,
    next_seq: u64,
}

/// A chat room.
pub struct Room {
    name: String,
    limits: RoomLimits,
    state: Mutex<RoomState>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RoomState {
    /// Sends `frame` to every connection but `except`; closes those that cannot keep up.
    fn fan_out(&self, frame: &ServerFrame, except: Option<ConnId>) {
        let bytes = Utf8Bytes::from(frame.encode());
        for (id, conn) in &self.conns {
            if Some(*id) != except && conn.outbox.push(bytes.clone()).is_err() {
                conn.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
            }
        }
    }

    fn members_in_order(&self) -> Vec<Member> {
        let mut entries: Vec<&MemberEntry> = self.members.values().collect();
        entries.sort_by_key(|e| e.seq);
        entries.into_iter().map(|e| e.member.clone()).collect()
    }

    /// Is `key` free for session `sid`: not online and not reserved by another session?
    fn free_for(&self, key: &str, sid: &SessionId, now: Instant) -> bool {
        let online_elsewhere = self.members.get(key).is_some_and(|m| &m.sid != sid);
        let reserved_elsewhere = self
            .reservations
            .get(key)
            .is_some_and(|(owner, until)| owner != sid && *until > now);
        !online_elsewhere && !reserved_elsewhere
    }
}

impl Room {
    pub fn new(name: impl Into<String>, limits: RoomLimits) -> Self {
        Room {
            name: name.into(),
            limits,
            state: Mutex::new(RoomState::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limits(&self) -> &RoomLimits {
        &self.limits
    }

    fn state(&self) -> MutexGuard<'_, RoomState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `name` for session `sid` until `until`, so that the socket that follows can join.
    pub fn reserve(&self, name: &str, sid: &SessionId, until: Instant) -> Result<(), JoinError> {
        let key = name_key(name);
        let mut st = self.state();
        if !st.free_for(&key, sid, Instant::now()) {
            return Err(JoinError::NameTaken);
        }
        if !st.members.contains_key(&key) && st.members.len() >= self.limits.max_members {
            return Err(JoinError::RoomFull);
        }
        st.reservations.insert(key, (sid.clone(), until));
        Ok(())
    }

    /// May session `sid` use `name` here now?
    pub fn name_free_for(&self, name: &str, sid: &SessionId) -> bool {
        self.state().free_for(&name_key(name), sid, Instant::now())
    }

    /// Adds connection `conn` for the session's member and sends it the welcome.
    /// The member's first connection announces them to everyone else.
    pub fn join(
        &self,
        conn: ConnId,
        session: &Session,
        outbox: Outbox,
        after: Option<MessageId>,
    ) -> Result<(), JoinError> {
        let key = name_key(&session.name);
        let mut st = self.state();
        if !st.free_for(&key, &session.sid, Instant::now()) {
            return Err(JoinError::NameTaken);
        }
        if !st.members.contains_key(&key) {
            if st.members.len() >= self.limits.max_members {
                return Err(JoinError::RoomFull);
            }
            let member = session.member();
            st.next_seq += 1;
            let seq = st.next_seq;
            st.reservations.remove(&key);
            st.fan_out(
                &ServerFrame::Joined {
                    member: member.clone(),
                },
                None,
            );
            st.members.insert(
                key.clone(),
                MemberEntry {
                    member,
                    sid: session.sid.clone(),
                    conns: 0,
                    seq,
                },
            );
        }
        if let Some(entry) = st.members.get_mut(&key) {
            entry.conns += 1;
        }
        let welcome = ServerFrame::Welcome {
            you: session.member(),
            members: st.members_in_order(),
            recent: st
                .recent
                .iter()
                .filter(|m| after.is_none_or(|a| m.id > a))
                .cloned()
                .collect(),
            max_message_chars: self.limits.max_message_chars,
        };
        // A fresh outbox has room for the welcome.
        let _ = outbox.push(welcome.encode().into());
        st.conns.insert(conn, ConnEntry { key, outbox });
        Ok(())
    }

    /// Removes connection `conn`; the member's last connection announces their leaving.
    pub fn leave(&self, conn: ConnId) {
        let mut st = self.state();
        let Some(entry) = st.conns.remove(&conn) else {
            return;
        };
        let gone = match st.members.get_mut(&entry.key) {
            Some(m) => {
                m.conns = m.conns.saturating_sub(1);
                m.conns == 0
            }
            None => false,
        };
        if gone {
            if let Some(m) = st.members.remove(&entry.key) {
                st.fan_out(&ServerFrame::Left { member: m.member }, None);
            }
        }
    }

    /// Posts a message from connection `conn`; on success everyone, the sender included, gets it.
    /// A client id already seen from this member is confirmed to the sender again, not re-posted.
    pub fn post(&self, conn: ConnId, client_id: String, text: String) -> Result<(), PostError> {
        if !rules::valid_client_id(&client_id) {
            return Err(PostError::InvalidClientId);
        }
        rules::validate_text(&text, self.limits.max_message_chars)?;
        let mut st = self.state();
        let Some(key) = st.conns.get(&conn).map(|c| c.key.clone()) else {
            return Err(PostError::NotJoined);
        };
        let Some(member) = st.members.get(&key).map(|m| m.member.clone()) else {
            return Err(PostError::NotJoined);
        };
        if let Some(earlier) = st.recent.iter().find(|m| {
            m.client_id.as_deref() == Some(client_id.as_str()) && name_key(&m.name) == key
        }) {
            let again = ServerFrame::Message(earlier.clone()).encode();
            if let Some(c) = st.conns.get(&conn) {
                let _ = c.outbox.push(again.into());
            }
            return Ok(());
        }
        st.last_id += 1;
        let message = ChatMessage {
            id: st.last_id,
            ts: now_ms(),
            name: member.name,
            avatar: member.avatar,
            text,
            client_id: Some(client_id),
        };
        st.fan_out(&ServerFrame::Message(message.clone()), None);
        st.recent.push_back(message);
        while st.recent.len() > self.limits.recent_messages {
            st.recent.pop_front();
        }
        Ok(())
    }

    /// Sends `frame` to one connection only (errors for its sender).
    pub fn send_to(&self, conn: ConnId, frame: &ServerFrame) {
        if let Some(c) = self.state().conns.get(&conn) {
            if c.outbox.push(frame.encode().into()).is_err() {
                c.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
            }
        }
    }

    /// Members online, in join order, and the recent messages, oldest first.
    pub fn snapshot(&self) -> (Vec<Member>, Vec<ChatMessage>) {
        let st = self.state();
        (st.members_in_order(), st.recent.iter().cloned().collect())
    }

    /// No members and no live reservations: the room may be dropped. Prunes expired reservations.
    pub fn prune(&self, now: Instant) -> bool {
        let mut st = self.state();
        st.reservations.retain(|_, (_, until)| *until > now);
        st.members.is_empty() && st.reservations.is_empty() && st.conns.is_empty()
    }

    /// Asks every connection to close with `code`.
    pub fn close_all(&self, code: u16, reason: &str) {
        for c in self.state().conns.values() {
            c.outbox.close(code, reason);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.state().conns.len()
    }
}
