//! Which parts of a room a change touched, so that only the views showing them redraw.

/// Which parts of the room a change touched: each view subscribes to the parts it shows, so a
/// change re-renders only those (a new message, say, never the member list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts(u16);

impl Parts {
    pub const NONE: Parts = Parts(0);
    /// `me` and `join_error`.
    pub const ME: Parts = Parts(1);
    pub const MEMBERS: Parts = Parts(1 << 1);
    pub const ONLINE: Parts = Parts(1 << 2);
    /// `entries`, `has_older` and `last_id`.
    pub const ENTRIES: Parts = Parts(1 << 3);
    pub const PENDING: Parts = Parts(1 << 4);
    pub const CONN: Parts = Parts(1 << 5);
    pub const ERROR: Parts = Parts(1 << 6);
    /// `max_message_chars` and `silence_ms`.
    pub const LIMITS: Parts = Parts(1 << 7);
    /// The content of shown messages (edits, deletions, reactions, quotes): see `version`.
    pub const EDITS: Parts = Parts(1 << 8);
    /// Who is typing.
    pub const TYPING: Parts = Parts(1 << 9);
    /// The room's settings (topic, lock, slow mode).
    pub const ROOM: Parts = Parts(1 << 10);
    /// The reader's standing: role, mute, removal, owner link, claim.
    pub const STANDING: Parts = Parts(1 << 11);
    /// How many parts there are.
    pub const COUNT: usize = 12;

    pub fn contains(self, other: Parts) -> bool {
        self.0 & other.0 == other.0
    }

    /// The indexes (0..`COUNT`) of the parts in this set.
    pub fn indexes(self) -> impl Iterator<Item = usize> {
        (0..Self::COUNT).filter(move |i| self.0 & (1 << i) != 0)
    }
}

impl std::ops::BitOr for Parts {
    type Output = Parts;
    fn bitor(self, rhs: Parts) -> Parts {
        Parts(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Parts {
    fn bitor_assign(&mut self, rhs: Parts) {
        self.0 |= rhs.0;
    }
}
