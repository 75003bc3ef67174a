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

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{close, Change, ChatMessage, ErrorCode, Member, MessageId};
use crate::rules::name_key;
use crate::server::chat::codec::{Event, Frames, Standing, Welcome};
pub use crate::server::chat::limits::RoomLimits;
pub use crate::server::chat::members::Line;
use crate::server::chat::members::{ConnEntry, MemberEntry, RoomState};
use crate::server::chat::moderation::RoomModeration;
use crate::server::chat::session::Session;
use crate::server::ids::{ConnId, SessionId};
use crate::server::log::{Entry, PresenceChange, RemoteMembers};
use crate::server::ops::metrics::{HubStats, Metrics};

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

/// What a joining connection's welcome brings it: messages, changes, and the log position.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Messages in their newest state, oldest first.
    pub recent: Vec<ChatMessage>,
    /// With a resume: the changes since, in order.
    pub changes: Vec<Change>,
    /// The log position read up to: live entries after it follow the welcome.
    pub upto: MessageId,
    /// The room's settings and the member's standing, read with the history.
    pub standing: Standing,
}

/// A chat room.
pub struct Room {
    name: String,
    limits: RoomLimits,
    /// Its roles, bans, mutes and settings, as last read from the log.
    pub moderation: RoomModeration,
    state: Mutex<RoomState>,
    /// Cluster mode: where changes of local presence go.
    presence: OnceLock<UnboundedSender<PresenceChange>>,
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
            moderation: RoomModeration::default(),
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
            let event = Event::Joined {
                member: &member,
                seq,
            };
            st.fan_out(&mut Frames::new(event), None, self.limits.max_staged);
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
            moderation: RoomModeration::default(),
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

    /// Registers connection `conn` for the session's member. The member's first connection
    /// announces them; a member back within the grace period is not announced again. A
    /// connection whose codec wants history is staged until [`Room::activate`]; any other
    /// is greeted and live at once. Returns the newest message delivered so far: the history
    /// up to it is the caller's to send, everything after arrives live.
    pub fn join(
        &self,
        conn: ConnId,
        session: &Session,
        line: Line,
    ) -> Result<MessageId, JoinError> {
        let Line {
            outbox,
            codec,
            addr,
        } = line;
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
        let staged = if codec.with_history() {
            Some(Vec::new())
        } else {
            let history = History {
                upto: st.last_delivered,
                ..History::default()
            };
            let welcome = self.welcome(&st, session.member(), history, false);
            for frame in codec.welcome(welcome) {
                if outbox.push(frame).is_err() {
                    outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
                    break;
                }
            }
            None
        };
        st.conns.insert(
            conn,
            ConnEntry {
                key: key.into(),
                outbox,
                staged,
                codec,
                addr,
            },
        );
        Ok(st.last_delivered)
    }

    fn welcome(&self, st: &RoomState, you: Member, history: History, reset: bool) -> Welcome {
        Welcome {
            you,
            members: st.members_in_order(self.limits.presence_list_limit),
            online: st.members.len(),
            recent: history.recent,
            changes: history.changes,
            upto: history.upto,
            max_message_chars: self.limits.max_message_chars,
            reset,
            silence_ms: self.limits.silence_ms,
            standing: history.standing,
        }
    }

    /// Sends a staged connection its welcome with `history`, then the live events held for it.
    pub fn activate(&self, conn: ConnId, you: Member, mut history: History, reset: bool) {
        let mut st = self.state();
        // Live entries the history already holds are not sent twice.
        let newest = history.recent.last().map(|m| m.id);
        let floor = history.upto.max(newest.unwrap_or(0));
        let floor = floor.max(history.changes.last().map_or(0, |c| c.id));
        history.upto = floor;
        let welcome = self.welcome(&st, you, history, reset);
        let Some(entry) = st.conns.get_mut(&conn) else {
            return;
        };
        let Some(held) = entry.staged.take() else {
            return;
        };
        let mut ok = true;
        for frame in entry.codec.welcome(welcome) {
            ok = ok && entry.outbox.push(frame).is_ok();
        }
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
        // A connection that cannot resume (no history) cannot come back as the same
        // member: it leaves at once.
        let grace = grace && entry.codec.with_history();
        let last = match st.members.get_mut(&*entry.key) {
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
            if let Some(m) = st.members.get_mut(&*entry.key) {
                m.lingering = Some(token);
            }
            return Some((entry.key.into(), token));
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
                let event = Event::Left {
                    member: &m.member,
                    seq: m.seq,
                };
                st.fan_out(&mut Frames::new(event), None, self.limits.max_staged);
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
    pub fn author(&self, conn: ConnId) -> Option<(Member, SessionId)> {
        let st = self.state();
        let m = st.members.get(&*st.conns.get(&conn)?.key)?;
        Some((m.member.clone(), m.sid.clone()))
    }

    /// Broadcasts a stored message to everyone, its sender included (its confirmation).
    /// Returns to how many connections it went. (The server uses [`Room::deliver_timed`].)
    #[cfg(test)]
    pub fn deliver(&self, message: ChatMessage) -> usize {
        self.deliver_frames(message.id, Frames::new(Event::Message(&message)))
    }

    /// Broadcasts a stored entry to everyone, its sender included (its confirmation), and
    /// records in `metrics`, once the last member's copy is written (or dropped), how long it
    /// took from its receipt. Returns to how many connections it went.
    pub fn deliver_timed(&self, entry: Entry, received: Instant, metrics: &Arc<Metrics>) -> usize {
        let timing = Arc::new(Timing {
            received,
            metrics: metrics.clone(),
        });
        match &entry {
            Entry::Message(m) => self.deliver_frames(m.id, Frames::tied(Event::Message(m), timing)),
            Entry::Change(c) => self.deliver_frames(c.id, Frames::tied(Event::Change(c), timing)),
        }
    }

    fn deliver_frames(&self, id: MessageId, mut frames: Frames<'_>) -> usize {
        let mut st = self.state();
        st.last_delivered = st.last_delivered.max(id);
        st.fan_out(&mut frames, Some(id), self.limits.max_staged)
    }

    /// `name` is typing: tells every other member's connections, unless the room is too big
    /// to list its members. Volatile: a connection that is behind does not get it.
    pub fn typing(&self, name: &str) {
        let mut st = self.state();
        if st.members.len() > self.limits.presence_list_limit {
            return;
        }
        // The name is a member's: from its connection here, or from another node's room.
        let key = name_key(name);
        st.fan_out_volatile(&mut Frames::new(Event::Typing { name }), &key);
    }

    /// Sends `event` to one connection only (confirmations of re-sends, errors), if its
    /// wire format has a frame for it.
    pub fn send_to(&self, conn: ConnId, event: Event<'_>) {
        let mut st = self.state();
        let max = self.limits.max_staged;
        if let Some(c) = st.conns.get_mut(&conn) {
            c.send(event, max);
        }
    }

    /// Members online (and those within their grace period), in join order: the first
    /// `presence_list_limit` of them, and how many there are in all.
    pub fn members(&self) -> (Vec<Member>, usize) {
        let st = self.state();
        let listed = st.members_in_order(self.limits.presence_list_limit);
        (
            listed.into_iter().map(|(m, _)| m).collect(),
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

    /// Closes every connection of member `key` here with `code` and `reason` (after what
    /// they have queued); returns their addresses.
    pub fn close_member(&self, key: &str, code: u16, reason: &str) -> Vec<IpAddr> {
        let st = self.state();
        st.conns
            .values()
            .filter(|c| &*c.key == key)
            .filter_map(|c| {
                c.outbox.close(code, reason);
                c.addr
            })
            .collect()
    }

    /// The session that holds name `key` here: a member's, or a live reservation's.
    pub fn holder(&self, key: &str) -> Option<SessionId> {
        let st = self.state();
        st.members.get(key).map(|m| m.sid.clone()).or_else(|| {
            st.reservations
                .get(key)
                .filter(|(_, until)| *until > Instant::now())
                .map(|(sid, _)| sid.clone())
        })
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

/// Held by every frame of a message; dropped with the last copy, once the last socket has
/// it, it records the fan-out's latency.
struct Timing {
    received: Instant,
    metrics: Arc<Metrics>,
}

impl Drop for Timing {
    fn drop(&mut self) {
        self.metrics.fanned_out(self.received);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::chat::codec::Codec;
    use crate::server::chat::outbox::{outbox, Next, OutboxReceiver};
    use crate::server::chat::session::SessionKeys;
    use crate::server::chat::text::Utf8Bytes;

    /// A wire format of its own, so that these tests see what the room sends and to whom,
    /// not any protocol's shapes: `<dialect>:<event>`.
    struct Probe {
        dialect: &'static str,
        history: bool,
    }

    fn describe(e: &Event<'_>) -> String {
        match e {
            Event::Joined { member, seq } => format!("joined {} #{seq}", member.name),
            Event::Left { member, .. } => format!("left {}", member.name),
            Event::Message(m) => format!("message {}", m.id),
            Event::Confirmed(m) => format!("confirmed {}", m.id),
            Event::Change(c) => format!("change {}", c.id),
            Event::ConfirmedChange(c) => format!("confirmed change {}", c.id),
            Event::Typing { name } => format!("typing {name}"),
            Event::Online { count } => format!("online {count}"),
            Event::Error { message, .. } => format!("error {message}"),
        }
    }

    impl Codec for Probe {
        fn frame(&self, f: &mut Frames<'_>) -> Option<Utf8Bytes> {
            let dialect = self.dialect;
            f.shared("probe", dialect, |e| {
                Some(format!("{dialect}:{}", describe(e)))
            })
        }
        fn with_history(&self) -> bool {
            self.history
        }
        fn command(&self, _: &str, _: bool) -> crate::server::chat::codec::Command {
            unreachable!("rooms do not read frames")
        }
        fn welcome(&self, w: Welcome) -> Vec<Utf8Bytes> {
            let names: Vec<&str> = w.members.iter().map(|(m, _)| m.name.as_str()).collect();
            let recent: Vec<String> = w.recent.iter().map(|m| m.id.to_string()).collect();
            let text = format!(
                "{}:welcome {} [{}] [{}]",
                self.dialect,
                w.you.name,
                names.join(","),
                recent.join(",")
            );
            vec![text.into()]
        }
    }

    fn probe(dialect: &'static str, history: bool) -> Arc<dyn Codec> {
        Arc::new(Probe { dialect, history })
    }

    fn session(name: &str) -> Session {
        let member = Member {
            name: name.into(),
            avatar: "fox".into(),
        };
        SessionKeys::new("k", 60).issue(SessionId::random(), "lobby", &member)
    }

    fn message(id: MessageId) -> ChatMessage {
        ChatMessage {
            id,
            ts: 0,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: "hi".into(),
            client_id: None,
            ..ChatMessage::default()
        }
    }

    fn taken(rx: &mut OutboxReceiver) -> Vec<Utf8Bytes> {
        std::iter::from_fn(|| match rx.try_next() {
            Some(Next::Frame(f)) => Some(f),
            _ => None,
        })
        .collect()
    }

    fn texts(rx: &mut OutboxReceiver) -> Vec<String> {
        taken(rx).iter().map(|f| f.as_str().to_string()).collect()
    }

    /// Joins `name` on connection `conn` with `codec`, welcomed without history.
    fn join(room: &Room, conn: ConnId, name: &str, codec: Arc<dyn Codec>) -> OutboxReceiver {
        let (tx, rx) = outbox(64, 1 << 20);
        let s = session(name);
        room.join(conn, &s, Line::new(tx, codec)).expect("joins");
        room.activate(conn, s.member(), History::default(), false);
        rx
    }

    #[test]
    fn each_dialect_is_encoded_once_and_every_connection_of_it_shares_the_bytes() {
        let room = Room::new("lobby", RoomLimits::default(), 0);
        let mut a1 = join(&room, 1, "A1", probe("a", true));
        let mut a2 = join(&room, 2, "A2", probe("a", true));
        let mut b = join(&room, 3, "B", probe("b", true));
        for rx in [&mut a1, &mut a2, &mut b] {
            taken(rx);
        }
        assert_eq!(room.deliver(message(1)), 3);
        let (x, y, z) = (taken(&mut a1), taken(&mut a2), taken(&mut b));
        assert_eq!(x[0].as_str(), "a:message 1");
        assert_eq!(x[0].as_bytes().as_ptr(), y[0].as_bytes().as_ptr(), "shared");
        assert_eq!(z[0].as_str(), "b:message 1");
    }

    #[test]
    fn a_staged_connection_gets_its_welcome_then_the_held_events_it_lacks() {
        let room = Room::new("lobby", RoomLimits::default(), 5);
        let (tx, mut rx) = outbox(64, 1 << 20);
        let ada = session("Ada");
        let upto = room.join(1, &ada, Line::new(tx, probe("a", true))).unwrap();
        assert_eq!(upto, 5, "history up to 5 is the joiner's to read");
        room.deliver(message(6));
        room.deliver(message(7));
        assert!(taken(&mut rx).is_empty(), "held while staged");
        // The history read raced the deliveries and already holds 6.
        let history = History {
            recent: vec![message(5), message(6)],
            changes: vec![],
            upto: 5,
            ..History::default()
        };
        room.activate(1, ada.member(), history, false);
        assert_eq!(texts(&mut rx), ["a:welcome Ada [Ada] [5,6]", "a:message 7"]);
    }

    #[test]
    fn a_connection_without_history_is_welcomed_at_once_and_leaves_without_grace() {
        let room = Room::new("lobby", RoomLimits::default(), 0);
        let mut bob = join(&room, 1, "Bob", probe("a", true));
        let (tx, mut rx) = outbox(64, 1 << 20);
        room.join(2, &session("Old"), Line::new(tx, probe("old", false)))
            .unwrap();
        assert_eq!(texts(&mut rx), ["old:welcome Old [Bob,Old] []"]);
        room.deliver(message(1));
        assert_eq!(
            texts(&mut rx),
            ["old:message 1"],
            "live, no activate needed"
        );
        taken(&mut bob);
        assert_eq!(room.leave(2, true), None, "no grace: it cannot resume");
        assert_eq!(texts(&mut bob), ["a:left Old"]);
        assert_eq!(room.leave(1, true).map(|(k, _)| k), Some("bob".into()));
    }

    #[test]
    fn replies_go_to_one_connection_in_its_own_format() {
        let room = Room::new("lobby", RoomLimits::default(), 0);
        let mut a = join(&room, 1, "A", probe("a", true));
        let mut b = join(&room, 2, "B", probe("b", true));
        taken(&mut a);
        taken(&mut b);
        room.send_to(2, Event::Confirmed(&message(4)));
        assert!(taken(&mut a).is_empty());
        assert_eq!(texts(&mut b), ["b:confirmed 4"]);
    }
}
