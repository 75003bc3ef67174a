//! Server-only code, one folder per layer of a message's way (see ARCHITECTURE.md).
//!
//! Top to bottom: `app` (router, serving, drain) and `assets`; `net/` (the WebSocket edge:
//! upgrade, connection loop, codec of the current protocol); `state` (what every handler
//! shares); `legacy/` (the old PHP/Swoole protocol as a codec); `chat/` (hub, rooms, joins,
//! sessions, outboxes); `ops/` (metrics, status, process figures); `log/` (the message log:
//! its interface, SQLite, Redis); `http/` (accept loop, TLS, proxies, limits, headers);
//! `config` at the bottom, and `ids` (identifiers) beside it as a leaf. A file imports only from its own folder or the folders below it.

pub mod admin;
pub mod app;
#[cfg(feature = "embed")]
pub mod assets;
pub mod chat;
pub mod clock;
pub mod config;
pub mod http;
pub mod ids;
pub mod legacy;
pub mod log;
pub mod net;
pub mod ops;
pub mod state;

pub use state::AppState;
