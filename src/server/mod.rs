//! Server-only code: configuration, sessions, the room hub, the WebSocket route and the HTTP app around them.

pub mod abuse;
pub mod api_limits;
pub mod app;
#[cfg(feature = "embed")]
pub mod assets;
pub mod cluster;
pub mod config;
pub mod headers;
pub mod hub;
pub mod legacy;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod outbox;
pub mod presence;
pub mod procstat;
pub mod proxy;
pub mod room;
pub mod serve;
pub mod session;
pub mod status;
pub mod store;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod wire;
pub mod ws;

pub use app::AppState;
