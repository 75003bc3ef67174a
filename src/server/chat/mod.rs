//! The chat domain: the hub of rooms, each room's members and fan-out, sessions and outboxes.

pub mod hub;
pub mod outbox;
pub mod room;
pub mod session;
