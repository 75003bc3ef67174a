//! Server-only code: configuration, sessions, the room hub, the WebSocket route and the HTTP app around them.

pub mod app;
pub mod config;
pub mod hub;
pub mod limits;
pub mod outbox;
pub mod room;
pub mod session;
pub mod store;
pub mod tcp;
pub mod wire;
pub mod ws;

pub use app::AppState;
