//! One room: its members, their connections, and the fan-out of every event to every connection.
//!
//! All state sits behind one mutex per room. Every event is serialised once and pushed to
//! each connection's [`Outbox`] without waiting while the lock is held, so all members see
//! events in the same order and one slow socket never holds up the others: a full outbox
//! gets its connection closed as a slow consumer instead.
//!
//! A joining connection is *staged* until its history has been read from the store: live
//! events meanwhile are held for it and follow the history, so that nothing is missed or
//! shown twice. Messages are delivered here only after the store committed them.

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{close, ChatMessage, ErrorCode, Member, MessageId, ServerFrame};
use crate::rules::{self, name_key, TextError};
use crate::server::chat::outbox::Outbox;
use crate::server::chat::session::{Session, SessionId};
use crate::server::legacy::{self, Clock};
use crate::server::ops::metrics::{HubStats, Metrics};

/// Shortest time between two online counts sent to a big room.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// Identifies one WebSocket connection, unique per process.
pub type ConnId = u64;

/// Limits and settings that apply to every room.
#[derive(Clone, Debug)]
pub struct RoomLimits {
    pub max_members: usize,
    pub max_message_chars: usize,
    /// Live events held for a staged connection before it counts as a slow consumer.
    pub max_staged: usize,
    /// Silence after which clients should reconnect (sent in the welcome).
    pub silence_ms: u64,
    /// Rooms up to this size list every member and announce each join and leave; bigger
    /// rooms list this many and send the online count instead (announcing every join to
    /// every member costs members² frames).
    pub presence_list_limit: usize,
    /// The clock of the `time` fields sent to old-protocol connections.
    pub clock: Clock,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_members: 25_000,
            max_message_chars: rules::DEFAULT_MAX_MESSAGE_CHARS,
            max_staged: 1024,
            silence_ms: 40_000,
            presence_list_limit: 200,
            clock: Clock::default(),
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

/// Why a posted message was refused before reaching the store.
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

/// Checks a message before it is queued for the store.
pub fn check_post(client_id: &str, text: &str, max_chars: usize) -> Result<(), PostError> {
    if !rules::valid_client_id(client_id) {
        return Err(PostError::InvalidClientId);
    }
    rules::validate_text(text, max_chars)?;
    Ok(())
}

struct MemberEntry {
    member: Member,
    sid: SessionId,
    /// Open connections (tabs) of this member.
    conns: usize,
    /// Join order, for the member list.
    seq: u64,
    /// Set while the member has no connection but is kept for the presence grace period.
    lingering: Option<u64>,
    /// Cluster mode: the other nodes this member is also present on.
    remote: BTreeSet<String>,
}

impl MemberEntry {
    /// Present on this node: connected, or within the grace period.
    fn here(&self) -> bool {
        self.conns > 0 || self.lingering.is_some()
    }
}

/// A change of who is present on this node, for cluster mode to share with the other nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceChange {
    /// `member` (with session `sid`) is now present here in `room`.
    Here {
        room: String,
        key: String,
        member: Member,
        sid: SessionId,
    },
    /// The member under `key` is no longer present here.
    Gone {
        room: String,
        key: String,
        sid: SessionId,
    },
}

/// Members present on other nodes, by name key: the member, its session and those nodes.
pub type RemoteMembers = HashMap<String, (Member, SessionId, BTreeSet<String>)>;

/// A live event held for a staged connection.
struct Staged {
    message_id: Option<MessageId>,
    frame: Utf8Bytes,
}

struct ConnEntry {
    key: String,
    outbox: Outbox,
    /// `Some` until the connection's history has been sent.
    staged: Option<Vec<Staged>>,
    /// Set for a connection speaking the old protocol (boxed: most connections are not).
    old: Option<Box<OldPeer>>,
}

/// What a room knows of an old-protocol connection.
#[derive(Clone, Debug)]
pub struct OldPeer {
    /// Its messages' client ids are `<tag>-<n>`: the old protocol never sends a sender its own message.
    pub tag: String,
    /// Scheme and host the connection reached this server at: catalogue avatars are sent as URLs under it.
    pub site: Arc<str>,
}

impl OldPeer {
    fn sent(&self, m: &ChatMessage) -> bool {
        m.client_id
            .as_deref()
            .and_then(|id| id.strip_prefix(self.tag.as_str()))
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// One event in the old protocol's shape, encoded on first need, once per site, and each
/// copy holding the new protocol's copy (so that a timed message counts as written only
/// when the old connections have it too).
struct OldFrames<'a> {
    event: Option<legacy::Event<'a>>,
    tie: &'a Utf8Bytes,
    clock: &'a Clock,
    encoded: Vec<(Arc<str>, Utf8Bytes)>,
}

impl<'a> OldFrames<'a> {
    fn new(event: Option<legacy::Event<'a>>, tie: &'a Utf8Bytes, clock: &'a Clock) -> Self {
        OldFrames {
            event,
            tie,
            clock,
            encoded: Vec::new(),
        }
    }

    /// The frame for `peer`, if it gets one.
    fn for_peer(&mut self, peer: &OldPeer) -> Option<Utf8Bytes> {
        let event = self.event?;
        if let legacy::Event::Message(m) = event {
            if peer.sent(m) {
                return None;
            }
        }
        if let Some((_, f)) = self.encoded.iter().find(|(site, _)| *site == peer.site) {
            return Some(f.clone());
        }
        let owner = Tied {
            text: legacy::encode(event, &peer.site, self.clock),
            _tie: self.tie.clone(),
        };
        let frame = Utf8Bytes::try_from(Bytes::from_owner(owner)).ok()?;
        self.encoded.push((peer.site.clone(), frame.clone()));
        Some(frame)
    }
}

/// An old-protocol frame that keeps its event's new-protocol frame alive.
struct Tied {
    text: String,
    _tie: Utf8Bytes,
}

impl AsRef<[u8]> for Tied {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

#[derive(Default)]
struct RoomState {
    members: HashMap<String, MemberEntry>,
    reservations: HashMap<String, (SessionId, Instant)>,
    conns: HashMap<ConnId, ConnEntry>,
    /// Member keys by join order, for the member list.
    order: BTreeMap<u64, String>,
    /// The online count changed since it was last sent (big rooms only).
    count_dirty: bool,
    count_sent_at: Option<Instant>,
    /// Newest message delivered here.
    last_delivered: MessageId,
    /// `last_delivered` is the store's newest id too: false for a room made only to hold a
    /// reservation, until a connection joins it.
    last_known: bool,
    next_seq: u64,
    next_linger: u64,
    /// Connections speaking the old protocol.
    old_conns: usize,
}

/// A chat room.
pub struct Room {
    name: String,
    limits: RoomLimits,
    state: Mutex<RoomState>,
    /// Cluster mode: where changes of local presence go.
    presence: OnceLock<UnboundedSender<PresenceChange>>,
}

impl RoomState {
    /// Sends `frame` to every connection (`old` to old-protocol ones); closes those that
    /// cannot keep up.
    fn fan_out(&mut self, frame: &ServerFrame, old: legacy::Event<'_>, limits: &RoomLimits) {
        self.fan_out_bytes(Utf8Bytes::from(frame.encode()), Some(old), None, limits);
    }

    /// [`RoomState::fan_out`] of an encoded frame; returns to how many connections it went.
    fn fan_out_bytes(
        &mut self,
        bytes: Utf8Bytes,
        old: Option<legacy::Event<'_>>,
        message_id: Option<MessageId>,
        limits: &RoomLimits,
    ) -> usize {
        let max_staged = limits.max_staged;
        let mut old_frames = OldFrames::new(old, &bytes, &limits.clock);
        let mut sent = 0;
        for conn in self.conns.values_mut() {
            if let Some(peer) = &conn.old {
                if let Some(frame) = old_frames.for_peer(peer) {
                    sent += 1;
                    if conn.outbox.push(frame).is_err() {
                        conn.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
                    }
                }
                continue;
            }
            sent += 1;
            match &mut conn.staged {
                Some(held) if held.len() < max_staged => held.push(Staged {
                    message_id,
                    frame: bytes.clone(),
                }),
                Some(_) => conn.outbox.close_now(close::SLOW_CONSUMER, "slow consumer"),
                None => {
                    if conn.outbox.push(bytes.clone()).is_err() {
                        conn.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
                    }
                }
            }
        }
        sent
    }

    /// The first `limit` members in join order.
    fn members_in_order(&self, limit: usize) -> Vec<Member> {
        self.order
            .values()
            .filter_map(|k| self.members.get(k))
            .take(limit)
            .map(|e| e.member.clone())
            .collect()
    }

    /// Sends the online count to every active connection, or marks it due when one was sent
    /// less than [`COUNT_INTERVAL`] ago. A full queue only skips it: the next one corrects it.
    fn count_changed(&mut self, now: Instant) {
        if self
            .count_sent_at
            .is_some_and(|at| now.duration_since(at) < COUNT_INTERVAL)
        {
            self.count_dirty = true;
            return;
        }
        self.send_count(now);
    }

    fn send_count(&mut self, now: Instant) {
        self.count_dirty = false;
        self.count_sent_at = Some(now);
        let frame = Utf8Bytes::from(
            ServerFrame::Online {
                count: self.members.len(),
            }
            .encode(),
        );
        // Old clients have no online count.
        for conn in self.conns.values() {
            if conn.staged.is_some() || conn.old.is_some() {
                continue;
            }
            let _ = conn.outbox.push(frame.clone());
        }
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
    /// A room whose store already holds messages up to `last_id`.
    pub fn new(name: impl Into<String>, limits: RoomLimits, last_id: MessageId) -> Self {
        Room {
            name: name.into(),
            limits,
            state: Mutex::new(RoomState {
                last_delivered: last_id,
                last_known: true,
                ..RoomState::default()
            }),
            presence: OnceLock::new(),
        }
    }

    /// Cluster mode: reports who becomes present here and who leaves to `sink`.
    pub fn share_presence(&self, sink: UnboundedSender<PresenceChange>) {
        let _ = self.presence.set(sink);
    }

    fn tell(&self, change: impl FnOnce() -> PresenceChange) {
        if let Some(sink) = self.presence.get() {
            let _ = sink.send(change());
        }
    }

    /// Cluster mode: the members present on other nodes now. Newcomers are announced (or
    /// counted), and those no longer present anywhere leave.
    pub fn sync_remote(&self, remote: &RemoteMembers) {
        let mut st = self.state();
        let gone: Vec<String> = st
            .members
            .iter()
            .filter(|(k, m)| !m.remote.is_empty() && !remote.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            let leaves = match st.members.get_mut(&key) {
                Some(m) => {
                    m.remote.clear();
                    !m.here()
                }
                None => false,
            };
            if leaves {
                self.remove_member(&mut st, &key);
            }
        }
        for (key, (member, sid, nodes)) in remote {
            if let Some(m) = st.members.get_mut(key) {
                if &m.sid == sid {
                    m.remote = nodes.clone();
                }
                continue;
            }
            self.add_member(
                &mut st,
                key.clone(),
                member.clone(),
                sid.clone(),
                nodes.clone(),
            );
        }
    }

    /// Lists a member new to this room (announcing them, or counting them in a big room).
    fn add_member(
        &self,
        st: &mut RoomState,
        key: String,
        member: Member,
        sid: SessionId,
        remote: BTreeSet<String>,
    ) {
        st.next_seq += 1;
        let seq = st.next_seq;
        let announce = st.members.len() < self.limits.presence_list_limit;
        if announce {
            st.fan_out(
                &ServerFrame::Joined {
                    member: member.clone(),
                },
                legacy::Event::Connect {
                    member: &member,
                    fd: seq,
                },
                &self.limits,
            );
        }
        st.order.insert(seq, key.clone());
        st.members.insert(
            key,
            MemberEntry {
                member,
                sid,
                conns: 0,
                seq,
                lingering: None,
                remote,
            },
        );
        if !announce {
            st.count_changed(Instant::now());
        }
    }

    /// A room made to hold a name reservation, before anyone asked the store about it.
    pub fn unread(name: impl Into<String>, limits: RoomLimits) -> Self {
        Room {
            name: name.into(),
            limits,
            state: Mutex::new(RoomState::default()),
            presence: OnceLock::new(),
        }
    }

    /// The store's newest message id as this room knows it, if it does.
    pub fn known_last(&self) -> Option<MessageId> {
        let st = self.state();
        st.last_known.then_some(st.last_delivered)
    }

    /// Tells the room the store's newest id (read before a connection joins).
    pub fn learn_last(&self, stored_last: MessageId) {
        let mut st = self.state();
        st.last_delivered = st.last_delivered.max(stored_last);
        st.last_known = true;
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

    /// Registers connection `conn` for the session's member, staged until [`Room::activate`].
    /// The member's first connection announces them; a member back within the grace period
    /// is not announced again. Returns the newest message delivered so far: the history up
    /// to it is the caller's to send, everything after arrives live.
    pub fn join(
        &self,
        conn: ConnId,
        session: &Session,
        outbox: Outbox,
    ) -> Result<MessageId, JoinError> {
        self.register(conn, session, outbox, None)
    }

    /// Registers old-protocol connection `conn` as the session's member, live at once (old
    /// clients get no history): it is sent a `connect` for each member already here.
    pub fn join_old(
        &self,
        conn: ConnId,
        session: &Session,
        outbox: Outbox,
        peer: OldPeer,
    ) -> Result<MessageId, JoinError> {
        self.register(conn, session, outbox, Some(Box::new(peer)))
    }

    fn register(
        &self,
        conn: ConnId,
        session: &Session,
        outbox: Outbox,
        old: Option<Box<OldPeer>>,
    ) -> Result<MessageId, JoinError> {
        let key = name_key(&session.name);
        let mut st = self.state();
        if !st.free_for(&key, &session.sid, Instant::now()) {
            return Err(JoinError::NameTaken);
        }
        if !st.members.contains_key(&key) {
            if st.members.len() >= self.limits.max_members {
                return Err(JoinError::RoomFull);
            }
            st.reservations.remove(&key);
            if st.reservations.is_empty() {
                // Its capacity outlives a wave of joins (a room filling up, everyone back
                // after a restart) otherwise.
                st.reservations = HashMap::new();
            }
            let (member, sid) = (session.member(), session.sid.clone());
            self.add_member(&mut st, key.clone(), member, sid, BTreeSet::new());
        }
        if let Some(entry) = st.members.get_mut(&key) {
            let arrives = !entry.here();
            entry.conns += 1;
            entry.lingering = None;
            if arrives {
                self.tell(|| PresenceChange::Here {
                    room: self.name.clone(),
                    key: key.clone(),
                    member: entry.member.clone(),
                    sid: entry.sid.clone(),
                });
            }
        }
        let staged = match &old {
            Some(peer) => {
                self.greet_old(&st, &key, &outbox, peer);
                st.old_conns += 1;
                None
            }
            None => Some(Vec::new()),
        };
        st.conns.insert(
            conn,
            ConnEntry {
                key,
                outbox,
                staged,
                old,
            },
        );
        Ok(st.last_delivered)
    }

    /// Sends a new old-protocol connection a `connect` for each member already listed, but itself.
    fn greet_old(&self, st: &RoomState, key: &str, outbox: &Outbox, peer: &OldPeer) {
        let listed = st
            .order
            .values()
            .filter(|k| k.as_str() != key)
            .filter_map(|k| st.members.get(k))
            .take(self.limits.presence_list_limit);
        for m in listed {
            let event = legacy::Event::Connect {
                member: &m.member,
                fd: m.seq,
            };
            let frame = legacy::encode(event, &peer.site, &self.limits.clock);
            if outbox.push(frame.into()).is_err() {
                return outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
            }
        }
    }

    /// Sends a staged connection its welcome with `history`, then the live events held for it.
    pub fn activate(
        &self,
        conn: ConnId,
        you: Member,
        history: Vec<ChatMessage>,
        after: Option<MessageId>,
        reset: bool,
    ) {
        let mut st = self.state();
        let members = st.members_in_order(self.limits.presence_list_limit);
        let online = st.members.len();
        let Some(entry) = st.conns.get_mut(&conn) else {
            return;
        };
        let Some(held) = entry.staged.take() else {
            return;
        };
        // Live messages the history already holds are not sent twice.
        let floor = history.last().map(|m| m.id).max(after).unwrap_or(0);
        let welcome = ServerFrame::Welcome {
            you,
            members,
            online,
            recent: history,
            max_message_chars: self.limits.max_message_chars,
            reset,
            silence_ms: self.limits.silence_ms,
        };
        let mut ok = entry.outbox.push(welcome.encode().into()).is_ok();
        for s in held {
            if ok && s.message_id.is_none_or(|id| id > floor) {
                ok = entry.outbox.push(s.frame).is_ok();
            }
        }
        if !ok {
            entry
                .outbox
                .close_now(close::SLOW_CONSUMER, "slow consumer");
        }
    }

    /// Removes connection `conn`. When it was its member's last, the member leaves at once
    /// (`grace` false) or is kept for the grace period: then the returned token is what
    /// [`Room::expire`] needs to end it.
    pub fn leave(&self, conn: ConnId, grace: bool) -> Option<(String, u64)> {
        let mut st = self.state();
        let entry = st.conns.remove(&conn)?;
        if entry.old.is_some() {
            st.old_conns -= 1;
        }
        // An old client cannot come back as the same member: it leaves at once.
        let grace = grace && entry.old.is_none();
        let last = match st.members.get_mut(&entry.key) {
            Some(m) => {
                m.conns = m.conns.saturating_sub(1);
                m.conns == 0
            }
            None => false,
        };
        if !last {
            return None;
        }
        if grace {
            st.next_linger += 1;
            let token = st.next_linger;
            if let Some(m) = st.members.get_mut(&entry.key) {
                m.lingering = Some(token);
            }
            return Some((entry.key, token));
        }
        self.left_here(&mut st, &entry.key);
        None
    }

    /// The member under `key` is no longer present on this node: it leaves the room unless
    /// it is present on another node.
    fn left_here(&self, st: &mut RoomState, key: &str) {
        let Some(m) = st.members.get(key) else { return };
        self.tell(|| PresenceChange::Gone {
            room: self.name.clone(),
            key: key.to_string(),
            sid: m.sid.clone(),
        });
        if m.remote.is_empty() {
            self.remove_member(st, key);
        }
    }

    /// Ends a lingering member whose grace period is over, unless they came back.
    pub fn expire(&self, key: &str, token: u64) {
        let mut st = self.state();
        if st
            .members
            .get(key)
            .is_some_and(|m| m.conns == 0 && m.lingering == Some(token))
        {
            if let Some(m) = st.members.get_mut(key) {
                m.lingering = None;
            }
            self.left_here(&mut st, key);
        }
    }

    fn remove_member(&self, st: &mut RoomState, key: &str) {
        let big = st.members.len() > self.limits.presence_list_limit;
        if let Some(m) = st.members.remove(key) {
            st.order.remove(&m.seq);
            if big {
                st.count_changed(Instant::now());
            } else {
                st.fan_out(
                    &ServerFrame::Left { member: m.member },
                    legacy::Event::Remove { fd: m.seq },
                    &self.limits,
                );
            }
        }
    }

    /// Sends the online count if a change is waiting for it (called about once a second).
    pub fn flush_count(&self) {
        let mut st = self.state();
        if st.count_dirty {
            st.send_count(Instant::now());
        }
    }

    /// The author of a message from connection `conn`: its member and session.
    pub fn author(&self, conn: ConnId) -> Result<(Member, SessionId), PostError> {
        let st = self.state();
        let key = st
            .conns
            .get(&conn)
            .map(|c| &c.key)
            .ok_or(PostError::NotJoined)?;
        let m = st.members.get(key).ok_or(PostError::NotJoined)?;
        Ok((m.member.clone(), m.sid.clone()))
    }

    /// Broadcasts a stored message to everyone, its sender included (its confirmation).
    /// Returns to how many connections it went. (The server uses [`Room::deliver_timed`].)
    #[cfg(test)]
    pub fn deliver(&self, message: ChatMessage) -> usize {
        let frame = ServerFrame::Message(message);
        let bytes = Utf8Bytes::from(frame.encode());
        let ServerFrame::Message(message) = frame else {
            return 0;
        };
        self.deliver_frame(&message, bytes)
    }

    /// Broadcasts a stored message to everyone, its sender included (its confirmation), and
    /// records in `metrics`, once the last member's copy is written (or dropped), how long it
    /// took from its receipt. Returns to how many connections it went.
    pub fn deliver_timed(
        &self,
        message: ChatMessage,
        received: Instant,
        metrics: &Arc<Metrics>,
    ) -> usize {
        // Encoded from the frame, then taken back out of it: no copy of the message.
        let frame = ServerFrame::Message(message);
        let owner = TimedFrame {
            text: frame.encode(),
            received,
            metrics: metrics.clone(),
        };
        let ServerFrame::Message(message) = frame else {
            return 0;
        };
        match Utf8Bytes::try_from(Bytes::from_owner(owner)) {
            Ok(bytes) => self.deliver_frame(&message, bytes),
            Err(_) => 0, // unreachable: the owner is a String
        }
    }

    fn deliver_frame(&self, message: &ChatMessage, bytes: Utf8Bytes) -> usize {
        let mut st = self.state();
        st.last_delivered = st.last_delivered.max(message.id);
        let old = (st.old_conns > 0).then_some(legacy::Event::Message(message));
        st.fan_out_bytes(bytes, old, Some(message.id), &self.limits)
    }

    /// Sends `frame` to one connection only (confirmations of re-sends, errors).
    pub fn send_to(&self, conn: ConnId, frame: &ServerFrame) {
        let mut st = self.state();
        let max = self.limits.max_staged;
        // Old clients get no confirmations and cannot show errors.
        if let Some(c) = st.conns.get_mut(&conn).filter(|c| c.old.is_none()) {
            let bytes = Utf8Bytes::from(frame.encode());
            match &mut c.staged {
                Some(held) if held.len() < max => held.push(Staged {
                    message_id: None,
                    frame: bytes,
                }),
                _ => {
                    if c.staged.is_some() || c.outbox.push(bytes).is_err() {
                        c.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
                    }
                }
            }
        }
    }

    /// Members online (and those within their grace period), in join order: the first
    /// `presence_list_limit` of them, and how many there are in all.
    pub fn members(&self) -> (Vec<Member>, usize) {
        let st = self.state();
        (
            st.members_in_order(self.limits.presence_list_limit),
            st.members.len(),
        )
    }

    /// The newest message delivered here.
    pub fn last_delivered(&self) -> MessageId {
        self.state().last_delivered
    }

    /// No members and no live reservations: the room may be dropped. Prunes expired reservations.
    pub fn prune(&self, now: Instant) -> bool {
        let mut st = self.state();
        st.reservations.retain(|_, (_, until)| *until > now);
        // Members present only on other nodes do not keep a room alive here.
        st.members.values().all(|m| !m.here()) && st.reservations.is_empty() && st.conns.is_empty()
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

    /// Members, connections and, if `queues`, queued frames (a look at every connection's
    /// queue), for the metrics.
    pub fn stats(&self, queues: bool) -> HubStats {
        let st = self.state();
        let mut stats = HubStats {
            rooms: 1,
            members: st.members.len(),
            connections: st.conns.len(),
            ..HubStats::default()
        };
        if queues {
            for c in st.conns.values() {
                let depth = c.outbox.depth();
                stats.queued += depth;
                stats.queued_max = stats.queued_max.max(depth);
            }
        }
        stats
    }
}

/// A message frame shared by every member's queue; dropping the last copy, once the last
/// socket has it, records the fan-out's latency.
struct TimedFrame {
    text: String,
    received: Instant,
    metrics: Arc<Metrics>,
}

impl AsRef<[u8]> for TimedFrame {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for TimedFrame {
    fn drop(&mut self) {
        self.metrics.fanned_out(self.received);
    }
}
