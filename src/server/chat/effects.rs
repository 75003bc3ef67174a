//! What a moderation entry does on this node as it is delivered.
//!
//! Every node gets every entry of a room it serves (cluster mode: through the relay), so a
//! kick or ban closes the member's connections on whichever node they are, and each node
//! reads the room's moderation state again after the entry that changed it.

use std::sync::Arc;
use tokio::runtime::Handle;

use crate::protocol::{close, Change, ChangeAction};
use crate::rules::name_key;
use crate::server::chat::moderation::{field, read, value, with_reason, Sanction};
use crate::server::chat::room::Room;
use crate::server::log::MessageLog;

/// Longest close reason a close frame carries, in bytes (RFC 6455 allows 123).
const REASON_BYTES: usize = 120;

/// `text` as a close frame's reason: cut to fit, on a character boundary.
pub fn close_reason(text: &str) -> &str {
    cut(text, REASON_BYTES)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Before moderation entry `change` is passed on in `room`: what it changes in the room's
/// state holds here from now (its members' next frames are checked against it).
pub fn before(room: &Room, change: &Change) {
    if let Some(state) = room.moderation.get() {
        let next = state.after(change, |key| room.holder(key).map(|s| s.0));
        room.moderation.set(change.id, Arc::new(next));
    }
}

/// After moderation entry `change` was passed on in `room`: closes the connections of a
/// kicked or banned member, and reads the room's state again from the log.
pub fn enforce(room: &Arc<Room>, log: &MessageLog, runtime: &Handle, change: &Change) {
    // A ban with `address` keeps out the addresses of the member's connections here.
    let mut banned = None;
    match &change.action {
        ChangeAction::Kick { member, reason } => {
            let why = with_reason("You were removed from the room by a moderator", reason);
            room.close_member(&name_key(member), close::KICKED, cut(&why, REASON_BYTES));
        }
        ChangeAction::Ban {
            member,
            until,
            address,
            reason,
        } => {
            let record = Sanction {
                until: *until,
                reason: reason.clone(),
                name: member.clone(),
            };
            let why = record.describe("You are banned from this room");
            let key = name_key(member);
            let addrs = room.close_member(&key, close::BANNED, cut(&why, REASON_BYTES));
            if *address {
                banned = Some((addrs, value(&record)));
            }
        }
        _ => {}
    }
    let (log, room, at) = (log.clone(), room.clone(), change.id);
    runtime.spawn(async move {
        let name = room.name().to_string();
        for ip in banned.iter().flat_map(|(addrs, _)| addrs) {
            let record = banned.as_ref().map(|(_, r)| r.as_str());
            let f = field::ban_address(*ip);
            if let Err(e) = log.set_moderation(&name, &f, record, false).await {
                tracing::error!(room = %name, error = %e, "could not record a banned address");
            }
        }
        match read(&log, &name).await {
            Ok(state) => room.moderation.set(at, state),
            Err(e) => tracing::error!(room = %name, error = %e, "could not reload moderation"),
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_are_cut_on_character_boundaries() {
        let s = "é".repeat(100);
        let c = super::cut(&s, 121);
        assert_eq!(c.len(), 120);
        assert!(super::cut("short", 120) == "short");
    }
}
