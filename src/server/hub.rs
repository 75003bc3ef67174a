//! The hub: every live room by name, created on first use and dropped when its last member leaves.
//!
//! Joins and leaves take the hub lock and then the room's, so a room is never dropped while
//! someone is joining it. Posting takes only the room's lock: rooms never wait on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::room::{ConnId, JoinError, Room, RoomLimits};
use super::session::{Session, SessionId};
use crate::protocol::{ChatMessage, Member, MessageId};

/// All rooms of this process.
pub struct Hub {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    limits: RoomLimits,
    reservation: Duration,
    next_conn: AtomicU64,
}

impl Hub {
    pub fn new(limits: RoomLimits, reservation: Duration) -> Self {
        Hub {
            rooms: Mutex::new(HashMap::new()),
            limits,
            reservation,
            next_conn: AtomicU64::new(1),
        }
    }

    pub fn limits(&self) -> &RoomLimits {
        &self.limits
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Reserves `name` in `room` for session `sid`, for the configured reservation time.
    pub fn reserve(&self, room: &str, name: &str, sid: &SessionId) -> Result<(), JoinError> {
        let mut rooms = self.rooms();
        let r = rooms
            .entry(room.to_string())
            .or_insert_with(|| Arc::new(Room::new(room, self.limits.clone())));
        r.reserve(name, sid, Instant::now() + self.reservation)
    }

    /// May session `sid` use `name` in `room` now?
    pub fn name_free_for(&self, room: &str, name: &str, sid: &SessionId) -> bool {
        self.rooms()
            .get(room)
            .is_none_or(|r| r.name_free_for(name, sid))
    }

    /// Joins connection `conn` to `room` as the session's member; the welcome goes to `outbox`.
    pub fn join(
        &self,
        room: &str,
        conn: ConnId,
        session: &Session,
        outbox: Outbox,
        after: Option<MessageId>,
    ) -> Result<Arc<Room>, JoinError> {
        let mut rooms = self.rooms();
        let r = rooms
            .entry(room.to_string())
            .or_insert_with(|| Arc::new(Room::new(room, self.limits.clone())))
            .clone();
        match r.join(conn, session, outbox, after) {
            Ok(()) => Ok(r),
            Err(e) => {
                if r.prune(Instant::now()) {
                    rooms.remove(room);
                }
                Err(e)
            }
        }
    }

    /// Takes connection `conn` out of `room`, dropping the room if nobody is left.
    pub fn leave(&self, room: &Arc<Room>, conn: ConnId) {
        let mut rooms = self.rooms();
        room.leave(conn);
        if room.prune(Instant::now()) {
            // Only drop the registered room, not a newer one of the same name.
            if rooms.get(room.name()).is_some_and(|r| Arc::ptr_eq(r, room)) {
                rooms.remove(room.name());
            }
        }
    }

    /// Members and recent messages of `room` (empty if it does not exist).
    pub fn snapshot(&self, room: &str) -> (Vec<Member>, Vec<ChatMessage>) {
        let r = self.rooms().get(room).cloned();
        r.map(|r| r.snapshot()).unwrap_or_default()
    }

    /// Drops expired reservations and rooms with nobody in them.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.rooms().retain(|_, r| !r.prune(now));
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

#[cfg(test)]
mod tests {
    use super::super::outbox::{outbox, Next, OutboxReceiver};
    use super::super::session::SessionKeys;
    use super::*;
    use crate::protocol::{ErrorCode, ServerFrame};

    fn hub() -> Hub {
        Hub::new(
            RoomLimits {
                max_members: 3,
                recent_messages: 5,
                max_message_chars: 100,
            },
            Duration::from_secs(60),
        )
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
        let (tx, rx) = outbox(64);
        let id = hub.next_conn_id();
        let room = hub.join("lobby", id, s, tx, None).expect("joins");
        Client { id, rx, room }
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
        let hub = hub();
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
    fn broadcast_reaches_everyone_once_in_order_with_server_identity() {
        let hub = hub();
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut ada);
        frames(&mut bob);

        ada.room.post(ada.id, "c1".into(), "one".into()).unwrap();
        bob.room.post(bob.id, "c1".into(), "two".into()).unwrap();
        for c in [&mut ada, &mut bob] {
            let got: Vec<(u64, String, String)> = frames(c)
                .into_iter()
                .map(|f| match f {
                    ServerFrame::Message(m) => (m.id, m.name, m.text),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(
                got,
                [
                    (1, "Ada".to_string(), "one".to_string()),
                    (2, "Bob".to_string(), "two".to_string())
                ]
            );
        }
    }

    #[test]
    fn resent_client_id_is_confirmed_not_posted_twice() {
        let hub = hub();
        let mut ada = connect(&hub, &session("Ada", "fox"));
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut ada);
        frames(&mut bob);
        ada.room.post(ada.id, "x1".into(), "hi".into()).unwrap();
        ada.room.post(ada.id, "x1".into(), "hi".into()).unwrap();
        assert_eq!(frames(&mut bob).len(), 1, "others see it once");
        let mine = frames(&mut ada);
        assert_eq!(mine.len(), 2, "the sender is confirmed again");
        assert_eq!(mine[0], mine[1]);
        assert_eq!(hub.snapshot("lobby").1.len(), 1);
    }

    #[test]
    fn duplicate_names_are_refused_case_insensitively() {
        let hub = hub();
        let _ada = connect(&hub, &session("Ada", "fox"));
        let (tx, _rx) = outbox(8);
        let other = session("ADA", "owl");
        assert_eq!(
            hub.join("lobby", hub.next_conn_id(), &other, tx, None)
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
        let hub = hub();
        let ada = session("Ada", "fox");
        hub.reserve("lobby", "Ada", &ada.sid).unwrap();
        let impostor = session("ada", "owl");
        assert!(!hub.name_free_for("lobby", "ada", &impostor.sid));
        assert!(hub.name_free_for("lobby", "Ada", &ada.sid));
        let (tx, _rx) = outbox(8);
        assert!(hub
            .join("lobby", hub.next_conn_id(), &impostor, tx, None)
            .is_err());
        let _c = connect(&hub, &ada);
    }

    #[test]
    fn two_tabs_are_one_member_who_leaves_with_the_last_tab() {
        let hub = hub();
        let ada = session("Ada", "fox");
        let tab1 = connect(&hub, &ada);
        let tab2 = connect(&hub, &ada);
        let mut bob = connect(&hub, &session("Bob", "owl"));
        assert_eq!(names(&hub.snapshot("lobby").0), ["Ada", "Bob"]);
        frames(&mut bob);

        hub.leave(&tab1.room, tab1.id);
        assert!(frames(&mut bob).is_empty(), "no leave while a tab is open");
        assert_eq!(names(&hub.snapshot("lobby").0), ["Ada", "Bob"]);

        hub.leave(&tab2.room, tab2.id);
        assert!(
            matches!(&frames(&mut bob)[..], [ServerFrame::Left { member }] if member.name == "Ada")
        );
        assert_eq!(names(&hub.snapshot("lobby").0), ["Bob"]);
    }

    #[test]
    fn room_disappears_with_its_last_member() {
        let hub = hub();
        let ada = connect(&hub, &session("Ada", "fox"));
        ada.room.post(ada.id, "a".into(), "hello".into()).unwrap();
        assert_eq!(hub.room_count(), 1);
        hub.leave(&ada.room, ada.id);
        assert_eq!(hub.room_count(), 0);
        assert_eq!(hub.snapshot("lobby"), (vec![], vec![]));
    }

    #[test]
    fn bad_posts_are_refused_and_nothing_is_broadcast() {
        let hub = hub();
        let mut ada = connect(&hub, &session("Ada", "fox"));
        frames(&mut ada);
        let r = &ada.room;
        assert_eq!(
            r.post(ada.id, "a".into(), "  \n ".into())
                .unwrap_err()
                .code(),
            ErrorCode::EmptyMessage
        );
        assert_eq!(
            r.post(ada.id, "a".into(), "x".repeat(101))
                .unwrap_err()
                .code(),
            ErrorCode::MessageTooLong
        );
        assert_eq!(
            r.post(ada.id, "bad id!".into(), "x".into())
                .unwrap_err()
                .code(),
            ErrorCode::InvalidClientId
        );
        assert_eq!(
            r.post(999, "a".into(), "x".into()).unwrap_err(),
            super::super::room::PostError::NotJoined
        );
        assert!(frames(&mut ada).is_empty());
    }

    #[test]
    fn room_limit_and_recent_window_hold() {
        let hub = hub();
        let a = connect(&hub, &session("A", "fox"));
        let _b = connect(&hub, &session("B", "fox"));
        let _c = connect(&hub, &session("C", "fox"));
        let (tx, _rx) = outbox(8);
        assert_eq!(
            hub.join("lobby", hub.next_conn_id(), &session("D", "fox"), tx, None)
                .err(),
            Some(JoinError::RoomFull)
        );
        for i in 0..8 {
            a.room.post(a.id, format!("m{i}"), format!("{i}")).unwrap();
        }
        let recent = hub.snapshot("lobby").1;
        assert_eq!(
            recent.iter().map(|m| m.id).collect::<Vec<_>>(),
            [4, 5, 6, 7, 8]
        );
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_is_closed_and_others_go_on() {
        let hub = hub();
        let ada = session("Ada", "fox");
        let (slow_tx, mut slow_rx) = outbox(3);
        let slow_id = hub.next_conn_id();
        let room = hub.join("lobby", slow_id, &ada, slow_tx, None).unwrap();
        let mut bob = connect(&hub, &session("Bob", "owl"));
        frames(&mut bob);
        for i in 0..10 {
            room.post(bob.id, format!("m{i}"), "x".into()).unwrap();
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
}
