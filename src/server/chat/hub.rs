//! The hub: every live room by name, and delivery of what the log committed.
//!
//! A room is created on first use and dropped when its last member leaves.
//!
//! Joins and leaves take the hub lock and then the room's, so a room is never dropped while
//! someone is joining it. Posting and delivery take only the room's lock: rooms never wait
//! on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::protocol::{Change, ErrorCode, Member, MessageId};
use crate::server::chat::codec::Event;
use crate::server::chat::room::{JoinError, Line, Room, RoomLimits};
use crate::server::chat::session::Session;
use crate::server::ids::{ConnId, SessionId};
use crate::server::log::{
    Append, Delivery, Entry, LiveRooms, MessageLog, Outcome, PresenceChange, RemoteMembers,
    StoreError,
};
use crate::server::ops::metrics::{HubStats, Metrics, Rejection};

/// All rooms of this process.
pub struct Hub {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    limits: RoomLimits,
    reservation: Duration,
    grace: Duration,
    next_conn: AtomicU64,
    metrics: Arc<Metrics>,
    /// Cluster mode: where rooms report changes of local presence.
    presence: OnceLock<UnboundedSender<PresenceChange>>,
    /// The log, which moderation entries' effects read and write, and the runtime they run
    /// on (delivery may come from the SQLite writer's own thread).
    log: OnceLock<(MessageLog, tokio::runtime::Handle)>,
    /// The operator's requests waiting for their outcome, by client id.
    waiting: Mutex<HashMap<String, oneshot::Sender<OperatorOutcome>>>,
}

/// What became of an operator's request: the change, or the refusal's code and message.
pub type OperatorOutcome = Result<Change, (ErrorCode, String)>;

impl Hub {
    /// `grace`: how long a member whose last connection dropped stays listed (0: leaves at once).
    pub fn new(limits: RoomLimits, reservation: Duration, grace: Duration) -> Self {
        Hub {
            rooms: Mutex::new(HashMap::new()),
            limits,
            reservation,
            grace,
            next_conn: AtomicU64::new(1),
            metrics: Arc::new(Metrics::new()),
            presence: OnceLock::new(),
            log: OnceLock::new(),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &RoomLimits {
        &self.limits
    }

    /// Cluster mode: every room reports who becomes present here, and who leaves, to `sink`.
    pub fn share_presence(&self, sink: UnboundedSender<PresenceChange>) {
        let _ = self.presence.set(sink);
    }

    fn new_room(&self, name: &str, stored_last: Option<MessageId>) -> Arc<Room> {
        let room = match stored_last {
            Some(last) => Room::new(name, self.limits.clone(), last),
            None => Room::unread(name, self.limits.clone()),
        };
        if let Some(sink) = self.presence.get() {
            room.share_presence(sink.clone());
        }
        Arc::new(room)
    }

    /// The log that moderation entries' effects use, and the runtime they run on (set once,
    /// after the log is made, from within the runtime).
    pub fn use_log(&self, log: MessageLog, runtime: tokio::runtime::Handle) {
        let _ = self.log.set((log, runtime));
    }

    /// The outcome of the operator's request with `client_id`, once the log is done with it.
    pub fn await_outcome(&self, client_id: &str) -> oneshot::Receiver<OperatorOutcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters().insert(client_id.to_string(), tx);
        rx
    }

    /// Stops waiting for `client_id` (timed out).
    pub fn forget_outcome(&self, client_id: &str) {
        self.waiters().remove(client_id);
    }

    fn waiters(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<OperatorOutcome>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells a waiting operator's request what became of it (operator requests have no connection).
    fn answer(
        &self,
        conn: ConnId,
        client_id: Option<&str>,
        outcome: impl FnOnce() -> OperatorOutcome,
    ) {
        if conn != 0 {
            return;
        }
        let Some(id) = client_id else { return };
        let waiter = {
            let mut waiting = self.waiters();
            if waiting.is_empty() {
                return;
            }
            waiting.remove(id)
        };
        if let Some(tx) = waiter {
            let _ = tx.send(outcome());
        }
    }

    /// What this hub and its connections count.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Broadcasts a stored entry to `room`, counting it; `received` is when it reached this
    /// node, if it did (in cluster mode it may come from another node).
    pub fn deliver_stored(&self, room: &Arc<Room>, entry: Entry, received: Option<Instant>) {
        let moderation = match &entry {
            Entry::Change(c) if c.action.is_moderation() => {
                crate::server::chat::effects::before(room, c);
                Some(c.clone())
            }
            _ => None,
        };
        let n = room.deliver_timed(entry, received.unwrap_or_else(Instant::now), &self.metrics);
        self.metrics.messages_broadcast.inc();
        self.metrics.messages_delivered.inc_by(n as u64);
        if let (Some(change), Some((log, runtime))) = (moderation, self.log.get()) {
            crate::server::chat::effects::enforce(room, log, runtime, &change);
        }
    }

    /// The names of the rooms that live here.
    pub fn room_names(&self) -> Vec<String> {
        self.rooms().keys().cloned().collect()
    }

    /// Rooms, members and (if `queues`) queued frames now, summed over every room.
    pub fn stats(&self, queues: bool) -> HubStats {
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        rooms.iter().fold(HubStats::default(), |mut all, room| {
            let s = room.stats(queues);
            all.rooms += usize::from(s.members > 0);
            all.members += s.members;
            all.connections += s.connections;
            all.queued += s.queued;
            all.queued_max = all.queued_max.max(s.queued_max);
            all
        })
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The live room `name`, if any.
    pub fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms().get(name).cloned()
    }

    /// Reserves `name` in `room` for session `sid`, for the configured reservation time.
    pub fn reserve(&self, room: &str, name: &str, sid: &SessionId) -> Result<(), JoinError> {
        let mut rooms = self.rooms();
        let r = rooms
            .entry(room.to_string())
            .or_insert_with(|| self.new_room(room, None));
        r.reserve(name, sid, Instant::now() + self.reservation)
    }

    /// May session `sid` use `name` in `room` now?
    pub fn name_free_for(&self, room: &str, name: &str, sid: &SessionId) -> bool {
        self.rooms()
            .get(room)
            .is_none_or(|r| r.name_free_for(name, sid))
    }

    /// Registers connection `conn` in `room` as the session's member (see [`Room::join`]).
    /// `stored_last` is the store's newest id for the room, used if the room has to be
    /// created. Returns the room and the id up to which history is the caller's to send.
    pub fn join(
        &self,
        room: &str,
        conn: ConnId,
        session: &Session,
        line: Line,
        stored_last: MessageId,
    ) -> Result<(Arc<Room>, MessageId), JoinError> {
        self.enter(room, stored_last, |r| r.join(conn, session, line))
    }

    /// Runs `join` on `room` (created if need be), under the hub lock; drops the room again
    /// if the join failed and nobody else is in it.
    fn enter(
        &self,
        room: &str,
        stored_last: MessageId,
        join: impl FnOnce(&Room) -> Result<MessageId, JoinError>,
    ) -> Result<(Arc<Room>, MessageId), JoinError> {
        let mut rooms = self.rooms();
        let r = rooms
            .entry(room.to_string())
            .or_insert_with(|| self.new_room(room, Some(stored_last)))
            .clone();
        r.learn_last(stored_last);
        match join(&r) {
            Ok(upto) => Ok((r, upto.max(stored_last))),
            Err(e) => {
                if r.prune(Instant::now()) {
                    rooms.remove(room);
                }
                Err(e)
            }
        }
    }

    /// Takes connection `conn` out of `room`; its member leaves now or after the grace
    /// period; the room is dropped when nobody is left.
    pub fn leave(self: &Arc<Self>, room: &Arc<Room>, conn: ConnId) {
        let linger = {
            let _rooms = self.rooms();
            room.leave(conn, !self.grace.is_zero())
        };
        match (linger, tokio::runtime::Handle::try_current()) {
            (Some((key, token)), Ok(rt)) => {
                let hub = self.clone();
                let room = room.clone();
                let grace = self.grace;
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    room.expire(&key, token);
                    hub.drop_if_idle(&room);
                });
            }
            (Some((key, token)), Err(_)) => {
                room.expire(&key, token);
                self.drop_if_idle(room);
            }
            (None, _) => self.drop_if_idle(room),
        }
    }

    fn drop_if_idle(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms();
        // Only drop the registered room, not a newer one of the same name.
        if room.prune(Instant::now())
            && rooms.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room))
        {
            rooms.remove(room.name());
        }
    }

    /// Members of `room`, in join order (empty if it does not exist).
    pub fn members(&self, room: &str) -> (Vec<Member>, usize) {
        self.room(room).map(|r| r.members()).unwrap_or_default()
    }

    /// Drops expired reservations and rooms with nobody in them.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.rooms().retain(|_, r| !r.prune(now));
    }

    /// Sends big rooms their online count where it changed.
    pub fn flush_counts(&self) {
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        for room in rooms {
            room.flush_count();
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// Asks every connection in every room to close.
    pub fn close_all(&self, code: u16, reason: &str) {
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        for r in rooms {
            r.close_all(code, reason);
        }
    }
}

impl Delivery for Hub {
    fn deliver(&self, append: Append, outcome: Outcome) {
        self.answer(append.conn, Some(&append.client_id), || match &outcome {
            Outcome::Stored(Entry::Change(c)) | Outcome::Duplicate(Entry::Change(c)) => {
                Ok(c.clone())
            }
            Outcome::Refused(r) => Err((r.code(), r.to_string())),
            Outcome::Failed(e) => Err((e.code(), e.to_string())),
            Outcome::Stored(_) | Outcome::Duplicate(_) => {
                Err((ErrorCode::BadRequest, "not a moderation entry".into()))
            }
        });
        let Some(room) = self.room(&append.room) else {
            return;
        };
        self.metrics
            .set_store_full(matches!(outcome, Outcome::Failed(StoreError::Full)));
        match outcome {
            Outcome::Stored(entry) => self.deliver_stored(&room, entry, Some(append.received)),
            Outcome::Duplicate(Entry::Message(m)) => {
                room.send_to(append.conn, Event::Confirmed(&m))
            }
            Outcome::Duplicate(Entry::Change(c)) => {
                room.send_to(append.conn, Event::ConfirmedChange(&c))
            }
            Outcome::Refused(refusal) => {
                self.metrics.rejected(Rejection::Code(refusal.code()));
                let message = refusal.to_string();
                let event = Event::Error {
                    code: refusal.code(),
                    message: &message,
                    client_id: Some(&append.client_id),
                };
                room.send_to(append.conn, event)
            }
            Outcome::Failed(e) => {
                self.metrics.rejected(Rejection::Code(e.code()));
                let message = format!("Not stored: {e}");
                let event = Event::Error {
                    code: e.code(),
                    message: &message,
                    client_id: Some(&append.client_id),
                };
                room.send_to(append.conn, event)
            }
        }
    }

    fn heard(&self, _room: &str, entry: &Entry) {
        if let Entry::Change(c) = entry {
            self.answer(0, c.client_id.as_deref(), || Ok(c.clone()));
        }
    }

    fn deliver_committed(&self, room: &str, entry: Entry, received: Option<Instant>) {
        if let Some(room) = self.room(room) {
            self.deliver_stored(&room, entry, received);
        }
    }

    fn deliver_typing(&self, room: &str, name: &str) {
        if let Some(room) = self.room(room) {
            room.typing(name);
        }
    }
}

impl LiveRooms for Hub {
    fn room_names(&self) -> Vec<String> {
        Hub::room_names(self)
    }

    fn delivered_upto(&self, room: &str) -> Option<MessageId> {
        self.room(room).and_then(|r| r.known_last())
    }

    fn sync_remote(&self, room: &str, remote: &RemoteMembers) {
        if let Some(room) = self.room(room) {
            room.sync_remote(remote);
        }
    }

    fn share_presence(&self, sink: UnboundedSender<PresenceChange>) {
        Hub::share_presence(self, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, ErrorCode, ServerFrame};
    use crate::server::chat::outbox::{outbox, Next, OutboxReceiver};
    use crate::server::chat::post::check_post;
    use crate::server::chat::session::SessionKeys;

    /// The current protocol's codec: these tests read what members get as its frames.
    fn current() -> Arc<dyn crate::server::chat::codec::Codec> {
        crate::server::net::codec::codec()
    }

    fn hub(grace_ms: u64) -> Arc<Hub> {
        Arc::new(Hub::new(
            RoomLimits {
                max_members: 3,
                max_message_chars: 100,
                max_staged: 4,
                silence_ms: 40_000,
                presence_list_limit: 200,
            },
            Duration::from_secs(60),
            Duration::from_millis(grace_ms),
        ))
    }

    fn session(name: &str, avatar: &str) -> Session {
        SessionKeys::new("k", 60).issue(
            SessionId::random(),
            "lobby",
            &Member {
                name: name.into(),
                avatar: avatar.into(),
            },
        )
    }

    struct Client {
        id: ConnId,
        rx: OutboxReceiver,
        room: Arc<Room>,
    }

    fn connect(hub: &Hub, s: &Session) -> Client {
        let (tx, rx) = outbox(64, 1 << 20);
        let id = hub.next_conn_id();
        let (room, _) = hub
            .join("lobby", id, s, Line::new(tx, current()), 0)
            .expect("joins");
        room.activate(
            id,
            s.member(),
            crate::server::chat::room::History::default(),
            false,
        );
        Client { id, rx, room }
    }

    fn message(id: u64, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: 0,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: text.into(),
            client_id: None,
            ..ChatMessage::default()
        }
    }

    /// Every frame queued for `c` so far.
    fn frames(c: &mut Client) -> Vec<ServerFrame> {
        std::iter::from_fn(|| match c.rx.try_next() {
            Some(Next::Frame(b)) => Some(ServerFrame::decode(b.as_str()).unwrap()),
            _ => None,
        })
        .collect()
    }

    fn names(members: &[Member]) -> Vec<&str> {
        members.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn join_welcomes_with_members_and_announces_to_others() {
        let hub = hub(0);
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));

        match &frames(&mut bob)[..] {
            [ServerFrame::Welcome { you, members, .. }] => {
                assert_eq!(you.name, "Bob");
                assert_eq!(names(members), ["Ada", "Bob"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let at_ada = frames(&mut ada);
        assert!(matches!(at_ada[0], ServerFrame::Welcome { .. }));
        assert_eq!(
            at_ada[1],
            ServerFrame::Joined {
                member: Member {
                    name: "Bob".into(),
                    avatar: "owl".into()
                }
            }
        );
        assert_eq!(at_ada.len(), 2);
    }

    #[test]
    fn a_room_above_the_list_limit_sends_counts_instead_of_each_join() {
        let hub = Arc::new(Hub::new(
            RoomLimits {
                presence_list_limit: 2,
                ..RoomLimits::default()
            },
            Duration::from_secs(60),
            Duration::ZERO,
        ));
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));
        let mut cy = connect(&hub, &session("Cy", "cat"));
        assert!(matches!(
            &frames(&mut ada)[1..],
            [ServerFrame::Joined { .. }, ServerFrame::Online { count: 3 }]
        ));
        assert!(matches!(
            &frames(&mut bob)[1..],
            [ServerFrame::Online { count: 3 }]
        ));
        match &frames(&mut cy)[..] {
            [ServerFrame::Welcome {
                members, online, ..
            }] => {
                assert_eq!((names(members), *online), (vec!["Ada", "Bob"], 3));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Within a second of the last count, a change waits for the next tick.
        let dee = session("Dee", "owl");
        let mut dee_conn = connect(&hub, &dee);
        assert!(frames(&mut ada).is_empty());
        hub.flush_counts();
        assert_eq!(frames(&mut ada), [ServerFrame::Online { count: 4 }]);
        let (list, online) = hub.members("lobby");
        assert_eq!((names(&list), online), (vec!["Ada", "Bob"], 4));
        hub.leave(&dee_conn.room, dee_conn.id);
        hub.flush_counts();
        let counts = [
            ServerFrame::Online { count: 4 },
            ServerFrame::Online { count: 3 },
        ];
        assert_eq!(frames(&mut bob), counts);
        assert!(frames(&mut dee_conn)
            .iter()
            .all(|f| !matches!(f, ServerFrame::Left { .. })));
    }

    #[test]
    fn delivered_messages_reach_everyone_once_in_order() {
        let hub = hub(0);
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut ada);
        frames(&mut bob);
        ada.room.deliver(message(1, "one"));
        ada.room.deliver(message(2, "two"));
        for c in [&mut ada, &mut bob] {
            let ids: Vec<u64> = frames(c)
                .into_iter()
                .map(|f| match f {
                    ServerFrame::Message(m) => m.id,
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(ids, [1, 2]);
        }
        assert_eq!(ada.room.last_delivered(), 2);
    }

    #[test]
    fn posts_are_checked_before_the_store() {
        assert_eq!(
            check_post("a", " \n ", 100).unwrap_err().code(),
            ErrorCode::EmptyMessage
        );
        assert_eq!(
            check_post("a", &"x".repeat(101), 100).unwrap_err().code(),
            ErrorCode::MessageTooLong
        );
        assert_eq!(
            check_post("bad id!", "x", 100).unwrap_err().code(),
            ErrorCode::InvalidClientId
        );
        assert!(check_post("a", "fine", 100).is_ok());
        let hub = hub(0);
        let ada = connect(&hub, &session("Ada", "fox"));
        assert_eq!(ada.room.author(ada.id).unwrap().0.name, "Ada");
        assert!(ada.room.author(999).is_none());
    }

    #[test]
    fn duplicate_names_are_refused_case_insensitively() {
        let hub = hub(0);
        let _ada = connect(&hub, &session("Ada", "fox"));
        let (tx, _rx) = outbox(8, 1 << 20);
        let other = session("ADA", "owl");
        assert_eq!(
            hub.join(
                "lobby",
                hub.next_conn_id(),
                &other,
                Line::new(tx, current()),
                0
            )
            .err(),
            Some(JoinError::NameTaken)
        );
        assert_eq!(
            hub.reserve("lobby", "ada", &other.sid),
            Err(JoinError::NameTaken)
        );
        assert_eq!(JoinError::NameTaken.code(), ErrorCode::NameTaken);
    }

    #[test]
    fn a_reserved_name_is_held_for_its_session_only() {
        let hub = hub(0);
        let ada = session("Ada", "fox");
        hub.reserve("lobby", "Ada", &ada.sid).unwrap();
        let impostor = session("ada", "owl");
        assert!(!hub.name_free_for("lobby", "ada", &impostor.sid));
        assert!(hub.name_free_for("lobby", "Ada", &ada.sid));
        let (tx, _rx) = outbox(8, 1 << 20);
        assert!(hub
            .join(
                "lobby",
                hub.next_conn_id(),
                &impostor,
                Line::new(tx, current()),
                0
            )
            .is_err());
        let _c = connect(&hub, &ada);
    }

    #[test]
    fn two_tabs_are_one_member_who_leaves_with_the_last_tab() {
        let hub = hub(0);
        let ada = session("Ada", "fox");
        let tab1 = connect(&hub, &ada);
        let tab2 = connect(&hub, &ada);
        let mut bob = connect(&hub, &session("Bob", "owl"));
        assert_eq!(names(&hub.members("lobby").0), ["Ada", "Bob"]);
        frames(&mut bob);

        hub.leave(&tab1.room, tab1.id);
        assert!(frames(&mut bob).is_empty(), "no leave while a tab is open");
        hub.leave(&tab2.room, tab2.id);
        assert!(
            matches!(&frames(&mut bob)[..], [ServerFrame::Left { member }] if member.name == "Ada")
        );
        assert_eq!(names(&hub.members("lobby").0), ["Bob"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_back_within_the_grace_period_does_not_flicker() {
        let hub = hub(10_000);
        let ada = session("Ada", "fox");
        let mut bob = connect(&hub, &session("Bob", "owl"));
        let first = connect(&hub, &ada);
        frames(&mut bob);

        hub.leave(&first.room, first.id);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _back = connect(&hub, &ada);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(frames(&mut bob).is_empty(), "no leave, no join");

        let gone = connect(&hub, &session("Cy", "cat"));
        frames(&mut bob);
        hub.leave(&gone.room, gone.id);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(frames(&mut bob).is_empty(), "still within grace");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            matches!(&frames(&mut bob)[..], [ServerFrame::Left { member }] if member.name == "Cy")
        );
    }

    #[test]
    fn room_disappears_with_its_last_member() {
        let hub = hub(0);
        let ada = connect(&hub, &session("Ada", "fox"));
        assert_eq!(hub.room_count(), 1);
        hub.leave(&ada.room, ada.id);
        assert_eq!(hub.room_count(), 0);
        assert!(hub.members("lobby").0.is_empty());
    }

    #[test]
    fn room_limit_holds() {
        let hub = hub(0);
        let _a = connect(&hub, &session("A", "fox"));
        let _b = connect(&hub, &session("B", "fox"));
        let _c = connect(&hub, &session("C", "fox"));
        let (tx, _rx) = outbox(8, 1 << 20);
        assert_eq!(
            hub.join(
                "lobby",
                hub.next_conn_id(),
                &session("D", "fox"),
                Line::new(tx, current()),
                0
            )
            .err(),
            Some(JoinError::RoomFull)
        );
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_is_closed_and_others_go_on() {
        let hub = hub(0);
        let ada = session("Ada", "fox");
        let (slow_tx, mut slow_rx) = outbox(3, 1 << 20);
        let slow_id = hub.next_conn_id();
        let (room, _) = hub
            .join("lobby", slow_id, &ada, Line::new(slow_tx, current()), 0)
            .unwrap();
        room.activate(
            slow_id,
            ada.member(),
            crate::server::chat::room::History::default(),
            false,
        );
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut bob);
        for i in 1..=10 {
            room.deliver(message(i, "x"));
        }
        assert_eq!(frames(&mut bob).len(), 10, "the fast one got everything");
        assert_eq!(
            slow_rx.next().await,
            Next::Close(
                crate::protocol::close::SLOW_CONSUMER,
                "slow consumer".into()
            )
        );
    }

    #[test]
    fn store_outcomes_are_delivered_to_the_right_connections() {
        let hub = hub(0);
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut ada);
        frames(&mut bob);
        let append = Append {
            room: "lobby".into(),
            conn: ada.id,
            session: "s".into(),
            client_id: "c1".into(),
            author: Member {
                name: "Ada".into(),
                avatar: "fox".into(),
            },
            action: crate::server::log::Action::Post {
                text: "hi".into(),
                reply_to: None,
            },
            received: Instant::now(),
        };
        hub.deliver(
            append.clone(),
            Outcome::Stored(Entry::Message(message(1, "hi"))),
        );
        assert_eq!(frames(&mut bob).len(), 1);
        assert_eq!(frames(&mut ada).len(), 1);
        hub.deliver(
            append.clone(),
            Outcome::Duplicate(Entry::Message(message(1, "hi"))),
        );
        assert!(
            frames(&mut bob).is_empty(),
            "a re-send is confirmed to its sender only"
        );
        assert_eq!(frames(&mut ada).len(), 1);
        hub.deliver(append, Outcome::Failed(StoreError::Full));
        assert!(frames(&mut bob).is_empty());
        assert!(matches!(
            &frames(&mut ada)[..],
            [ServerFrame::Error { code: ErrorCode::StorageFailed, client_id: Some(c), .. }] if c == "c1"
        ));
    }
}
