//! The WebSocket edge: upgrade and refusals, the connection loop, the current protocol's codec, the socket.

pub mod client;
pub mod codec;
pub mod conn;
pub mod route;
pub mod socket;
pub mod stream;
pub mod wire;
