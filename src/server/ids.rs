//! Identifiers every layer passes around.
//!
//! A session id names one joined browser (its tabs are one member), a connection id one
//! WebSocket. Both are plain values with no behaviour beyond making a fresh one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Identifies one WebSocket connection, unique per process.
pub type ConnId = u64;

/// A random id per joined browser: tabs sharing it are one member.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId(pub String);

impl SessionId {
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        SessionId(B64.encode(bytes))
    }
}
