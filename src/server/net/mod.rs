//! The WebSocket edge: upgrade and refusals, the connection loop, the codec and the socket.

pub mod route;
pub mod stream;
pub mod wire;
