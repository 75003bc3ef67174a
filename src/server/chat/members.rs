//! A room's state behind its lock: members, connections, reservations, and the fan-out to every connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{close, Member, MessageId};
use crate::server::chat::codec::{Codec, Event, Frames};
use crate::server::chat::outbox::Outbox;
use crate::server::chat::text::Utf8Bytes;
use crate::server::ids::SessionId;

/// Shortest time between two online counts sent to a big room.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct MemberEntry {
    pub member: Member,
    pub sid: SessionId,
    /// Open connections (tabs) of this member.
    pub conns: usize,
    /// Join order, for the member list.
    pub seq: u64,
    /// Set while the member has no connection but is kept for the presence grace period.
    pub lingering: Option<u64>,
    /// Cluster mode: the other nodes this member is also present on.
    pub remote: BTreeSet<String>,
}

impl MemberEntry {
    /// Present on this node: connected, or within the grace period.
    pub fn here(&self) -> bool {
        self.conns > 0 || self.lingering.is_some()
    }
}

/// A connection's way out, as its room sends to it: its queue, its wire format, its address.
pub struct Line {
    pub outbox: Outbox,
    pub codec: Arc<dyn Codec>,
    /// The client's address, for bans that include it.
    pub addr: Option<IpAddr>,
}

impl Line {
    /// A line with no known address.
    pub fn new(outbox: Outbox, codec: Arc<dyn Codec>) -> Line {
        Line {
            outbox,
            codec,
            addr: None,
        }
    }
}

/// A live event held for a staged connection.
pub(crate) struct Staged {
    pub message_id: Option<MessageId>,
    pub frame: Utf8Bytes,
}

pub(crate) struct ConnEntry {
    /// Its member's name key (boxed: a `String`'s capacity is not needed).
    pub key: Box<str>,
    pub outbox: Outbox,
    /// `Some` until the connection's history has been sent.
    pub staged: Option<Vec<Staged>>,
    /// Its wire format.
    pub codec: Arc<dyn Codec>,
    /// The client's address, for bans that include it.
    pub addr: Option<IpAddr>,
}

impl ConnEntry {
    /// Queues `frame`, or holds it while the connection is staged; a connection that cannot
    /// keep up is closed as a slow consumer.
    fn queue(&mut self, frame: Utf8Bytes, message_id: Option<MessageId>, max_staged: usize) {
        match &mut self.staged {
            Some(held) if held.len() < max_staged => held.push(Staged { message_id, frame }),
            Some(_) => self.outbox.close_now(close::SLOW_CONSUMER, "slow consumer"),
            None => {
                if self.outbox.push(frame).is_err() {
                    self.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
                }
            }
        }
    }

    /// Sends `event` to this connection alone, in its wire format.
    pub fn send(&mut self, event: Event<'_>, max_staged: usize) {
        if let Some(frame) = self.codec.frame(&mut Frames::new(event)) {
            self.queue(frame, None, max_staged);
        }
    }
}

/// The frame last asked of a codec during one fan-out: connections sharing one codec (every
/// current-protocol connection) get the same frame, asked once, then only a pointer compared.
#[derive(Default)]
struct SharedFrame(Option<(*const (), Option<Utf8Bytes>)>);

impl SharedFrame {
    fn frame(&mut self, conn: &ConnEntry, frames: &mut Frames<'_>) -> Option<Utf8Bytes> {
        let codec = Arc::as_ptr(&conn.codec) as *const ();
        match &self.0 {
            Some((seen, frame)) if *seen == codec => frame.clone(),
            _ => {
                let frame = conn.codec.frame(frames);
                self.0 = Some((codec, frame.clone()));
                frame
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct RoomState {
    pub members: HashMap<String, MemberEntry>,
    pub reservations: HashMap<String, (SessionId, Instant)>,
    pub conns: HashMap<u64, ConnEntry>,
    /// Member keys by join order, for the member list.
    pub order: BTreeMap<u64, String>,
    /// The online count changed since it was last sent (big rooms only).
    pub count_dirty: bool,
    pub count_sent_at: Option<Instant>,
    /// Newest message delivered here.
    pub last_delivered: MessageId,
    /// `last_delivered` is the store's newest id too: false for a room made only to hold a
    /// reservation, until a connection joins it.
    pub last_known: bool,
    pub next_seq: u64,
    pub next_linger: u64,
}

impl RoomState {
    /// Sends one event to every connection, each in its wire format; closes those that
    /// cannot keep up. Returns to how many connections it went.
    pub fn fan_out(
        &mut self,
        frames: &mut Frames<'_>,
        message_id: Option<MessageId>,
        max_staged: usize,
    ) -> usize {
        let mut sent = 0;
        let mut shared = SharedFrame::default();
        for conn in self.conns.values_mut() {
            if let Some(frame) = shared.frame(conn, frames) {
                sent += 1;
                conn.queue(frame, message_id, max_staged);
            }
        }
        sent
    }

    /// Sends a volatile event to every live connection but those of member `skip`: queued
    /// only where there is room, never held for a staged connection, never a reason to close.
    pub fn fan_out_volatile(&mut self, frames: &mut Frames<'_>, skip: &str) {
        let mut shared = SharedFrame::default();
        for conn in self.conns.values() {
            if conn.staged.is_some() || &*conn.key == skip {
                continue;
            }
            if let Some(frame) = shared.frame(conn, frames) {
                conn.outbox.push_droppable(frame);
            }
        }
    }

    /// The first `limit` members in join order, with their places in it.
    pub fn members_in_order(&self, limit: usize) -> Vec<(Member, u64)> {
        self.order
            .values()
            .filter_map(|k| self.members.get(k))
            .take(limit)
            .map(|e| (e.member.clone(), e.seq))
            .collect()
    }

    /// Sends the online count to every active connection, or marks it due when one was sent
    /// less than [`COUNT_INTERVAL`] ago. A full queue only skips it: the next one corrects it.
    pub fn count_changed(&mut self, now: Instant) {
        if self
            .count_sent_at
            .is_some_and(|at| now.duration_since(at) < COUNT_INTERVAL)
        {
            self.count_dirty = true;
            return;
        }
        self.send_count(now);
    }

    pub fn send_count(&mut self, now: Instant) {
        self.count_dirty = false;
        self.count_sent_at = Some(now);
        let mut frames = Frames::new(Event::Online {
            count: self.members.len(),
        });
        for conn in self.conns.values() {
            if conn.staged.is_some() {
                continue;
            }
            if let Some(frame) = conn.codec.frame(&mut frames) {
                let _ = conn.outbox.push(frame);
            }
        }
    }

    /// Is `key` free for session `sid`: not online and not reserved by another session?
    pub fn free_for(&self, key: &str, sid: &SessionId, now: Instant) -> bool {
        let online_elsewhere = self.members.get(key).is_some_and(|m| &m.sid != sid);
        let reserved_elsewhere = self
            .reservations
            .get(key)
            .is_some_and(|(owner, until)| owner != sid && *until > now);
        !online_elsewhere && !reserved_elsewhere
    }
}
