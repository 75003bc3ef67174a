//! The old PHP/Swoole chat's protocol, spoken on a WebSocket upgrade of `/`, as one codec.
//!
//! Old pages insert every text field as raw HTML, so every text written here is escaped
//! (`& < > " '`). Old pages cannot show errors: what they send wrong is ignored, and an open
//! frame with an unusable name is answered with close code 4001. They get no history, no
//! confirmations, no online counts and no heartbeat event (their browsers answer pings).

pub mod codec;
pub mod frames;
