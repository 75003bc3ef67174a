//! The chat domain: the hub of rooms, each room's members and fan-out, sessions and outboxes.

pub mod codec;
pub mod effects;
pub mod hub;
pub mod join;
pub mod limits;
pub mod members;
pub mod moderate;
pub mod moderation;
pub mod outbox;
pub mod post;
pub mod room;
pub mod session;
pub mod text;
