//! Joining a room: name claims on every node, history and resume, and membership that ends with the connection.
//!
//! A connection of a protocol with history is staged in its room while its history is read
//! from the log (see [`Room::join`]): live events meanwhile are held and follow the history,
//! so that nothing is missed or shown twice. A resume (`after`) replays exactly what
//! followed that message, or starts afresh (`reset`) when the gap is too long or no longer
//! in the log.

use std::net::IpAddr;
use std::sync::Arc;

use crate::protocol::{Member, MessageId};
use crate::rules::{name_key, MAX_NAME_CHARS};
use crate::server::chat::hub::Hub;
use crate::server::chat::moderate::Moderator;
use crate::server::chat::moderation::ModState;
use crate::server::chat::room::{History, JoinError, Line, Room};
use crate::server::chat::session::Session;
use crate::server::config::Config;
use crate::server::ids::{ConnId, SessionId};
use crate::server::log::StoreError;
use crate::server::log::{Entry, MessageLog};

/// Names tried with a numeric suffix (" (2)" to " (N)") when a name given at the join is taken.
pub const MAX_NAME_SUFFIX: u32 = 50;

/// What a join needs: the rooms, the log and the settings.
#[derive(Clone, Copy)]
pub struct Joins<'a> {
    pub hub: &'a Arc<Hub>,
    pub log: &'a MessageLog,
    pub config: &'a Config,
}

/// A connection just registered in its room.
struct Entered {
    room: Arc<Room>,
    conn: ConnId,
    /// The room was live here before (else the log hears it was created).
    live: bool,
    /// The history up to here is the joiner's to read.
    upto: MessageId,
    /// Its protocol waits for history (see `Codec::with_history`).
    history: bool,
}

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinFailure {
    #[error("Already joined on this connection")]
    AlreadyJoined,
    #[error("No valid session for this room: join again")]
    NoSession,
    #[error(transparent)]
    Refused(#[from] JoinError),
    #[error("Could not read or hold in the message log: {0}")]
    Storage(#[from] StoreError),
    /// Banned: the reason and until when, as the member is told.
    #[error("{0}")]
    Banned(String),
}

/// Membership of one connection in a room; leaving happens on drop, whatever ended the connection.
pub struct Membership {
    hub: Arc<Hub>,
    room: Arc<Room>,
    conn: ConnId,
}

impl Membership {
    /// Connection `conn`'s membership of `room`, which it has joined.
    pub fn new(hub: Arc<Hub>, room: Arc<Room>, conn: ConnId) -> Self {
        Membership { hub, room, conn }
    }

    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, self.conn);
    }
}

/// Holds `name` for session `sid` in `room` on every node (the log), then claims it here with
/// `claim`; lets go of the hold when the claim fails. Used by the join form and by joins
/// that name themselves.
pub async fn claim_name<T>(
    log: &MessageLog,
    room: &str,
    name: &str,
    sid: &SessionId,
    hold_ms: u64,
    claim: impl FnOnce() -> Result<T, JoinError>,
) -> Result<T, JoinFailure> {
    let key = name_key(name);
    if !log.hold_name(room, &key, sid, hold_ms).await? {
        return Err(JoinError::NameTaken.into());
    }
    match claim() {
        Ok(t) => Ok(t),
        Err(e) => {
            // Not this session's after all.
            log.release_name(room, &key, sid).await;
            Err(e.into())
        }
    }
}

/// `name` with the numeric suffix `n` (`"Tom42 (2)"`), shortened to stay a valid name.
pub fn with_suffix(name: &str, n: u32) -> String {
    let suffix = format!(" ({n})");
    let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let base: String = name.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end())
}

impl Joins<'_> {
    /// The room's newest stored message id, and whether the room is live here: a live room
    /// knows it, only a new one asks the log.
    async fn stored_last(&self, room: &str) -> Result<(MessageId, bool), StoreError> {
        if let Some(id) = self.hub.room(room).and_then(|r| r.known_last()) {
            return Ok((id, true));
        }
        Ok((self.log.last_id(room).await?, false))
    }

    /// Refuses a banned session, name or address; else the room's moderation, to keep.
    async fn not_banned(
        &self,
        room: &str,
        sid: &SessionId,
        name: &str,
        addr: Option<IpAddr>,
    ) -> Result<Arc<ModState>, JoinFailure> {
        let moderator = Moderator {
            hub: self.hub,
            log: self.log,
        };
        match moderator.admission(room, sid, name, addr).await? {
            (_, Some(why)) => Err(JoinFailure::Banned(why)),
            (state, None) => Ok(state),
        }
    }

    /// Joins connection `conn` to `room` as the session's member, then sends its welcome
    /// with the history: the latest page, or with `after` what followed that message.
    /// `addr` is the client's address.
    pub async fn join(
        &self,
        room: &str,
        conn: ConnId,
        session: &Session,
        line: Line,
        after: Option<MessageId>,
    ) -> Result<Membership, JoinFailure> {
        let addr = line.addr;
        let (stored_last, live) = self.stored_last(room).await?;
        let mods = self
            .not_banned(room, &session.sid, &session.name, addr)
            .await?;
        let history = line.codec.with_history();
        let (joined, upto) = self.hub.join(room, conn, session, line, stored_last)?;
        joined.moderation.set(stored_last, mods);
        let entered = Entered {
            room: joined,
            conn,
            live,
            upto,
            history,
        };
        self.enter(entered, session, after).await
    }

    /// Makes the membership of a connection just registered in its room, and sends it its
    /// welcome with the history (after `after`) unless it was welcomed at the join.
    async fn enter(
        &self,
        e: Entered,
        session: &Session,
        after: Option<MessageId>,
    ) -> Result<Membership, JoinFailure> {
        let membership = Membership::new(self.hub.clone(), e.room.clone(), e.conn);
        if !e.live {
            self.log.room_created(e.room.name());
        }
        if e.history {
            let (mut history, reset) = self.history(e.room.name(), after, e.upto).await?;
            history.standing = e.room.moderation.standing(&session.sid);
            e.room.activate(e.conn, session.member(), history, reset);
        }
        Ok(membership)
    }

    /// History up to `upto` (anything later is held by the room), and whether it starts
    /// afresh instead of following on from `after`.
    async fn history(
        &self,
        room: &str,
        after: Option<MessageId>,
        upto: MessageId,
    ) -> Result<(History, bool), StoreError> {
        let (log, page, max_gap) = (
            self.log,
            self.config.recent_messages,
            self.config.max_resume_gap,
        );
        let latest = || async {
            let recent = log.recent(room, upto, page).await?;
            Ok::<_, StoreError>(History {
                recent,
                changes: Vec::new(),
                upto,
                ..History::default()
            })
        };
        let entries = match after {
            // Nothing to read: caught up, or the room has never had a message.
            _ if upto == 0 => Vec::new(),
            Some(after) if after >= upto => Vec::new(),
            Some(after) => log.between(room, after, upto, max_gap + 1).await?,
            None => return Ok((latest().await?, false)),
        };
        // Ids are gapless, so a resume must start right after `after`; it cannot when the gap
        // is too long, or older than what the log keeps (cluster mode trims it).
        let resumable = match (after, entries.first()) {
            (Some(a), Some(first)) => first.id() == a + 1 && entries.len() <= max_gap,
            (Some(a), None) => a >= upto,
            (None, _) => true,
        };
        if !resumable {
            return Ok((latest().await?, true));
        }
        let mut history = History {
            upto: upto.max(after.unwrap_or(0)),
            ..History::default()
        };
        for entry in entries {
            match entry {
                Entry::Message(m) => history.recent.push(m),
                Entry::Change(c) => history.changes.push(c),
            }
        }
        Ok((history, false))
    }

    /// Joins connection `conn` to `room` as `member` under a new session, with the first
    /// free numbered variant of the name when it is taken (see [`with_suffix`]).
    pub async fn join_as(
        &self,
        room: &str,
        conn: ConnId,
        member: Member,
        line: Line,
    ) -> Result<Membership, JoinFailure> {
        let Line {
            outbox,
            codec,
            addr,
        } = line;
        let (stored_last, live) = self.stored_last(room).await?;
        let sid = SessionId::random();
        // The name asked for, not a numbered variant of it, is what a ban names.
        let mods = self.not_banned(room, &sid, &member.name, addr).await?;
        let hold_ms = self.config.name_reservation_secs * 1000;
        for n in 1..=MAX_NAME_SUFFIX {
            let name = match n {
                1 => member.name.clone(),
                n => with_suffix(&member.name, n),
            };
            let session = Session {
                sid: sid.clone(),
                room: room.to_string(),
                name,
                avatar: member.avatar.clone(),
                exp: 0,
            };
            let claim = || {
                let line = Line {
                    outbox: outbox.clone(),
                    codec: codec.clone(),
                    addr,
                };
                self.hub.join(room, conn, &session, line, stored_last)
            };
            match claim_name(self.log, room, &session.name, &sid, hold_ms, claim).await {
                Ok((joined, upto)) => {
                    joined.moderation.set(stored_last, mods);
                    let entered = Entered {
                        room: joined,
                        conn,
                        live,
                        upto,
                        history: codec.with_history(),
                    };
                    return self.enter(entered, &session, None).await;
                }
                Err(JoinFailure::Refused(JoinError::NameTaken)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(JoinError::NameTaken.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::validate_name;

    #[test]
    fn suffixed_names_stay_valid() {
        assert_eq!(with_suffix("Tom42", 2), "Tom42 (2)");
        let long = "x".repeat(MAX_NAME_CHARS);
        let s = with_suffix(&long, 12);
        assert_eq!(s.chars().count(), MAX_NAME_CHARS);
        assert!(s.ends_with(" (12)"));
        assert!(validate_name(&s).is_ok());
    }
}
