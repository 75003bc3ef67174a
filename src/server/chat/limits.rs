//! The limits and settings every room shares.

use crate::rules;

/// Limits and settings that apply to every room.
#[derive(Clone, Debug)]
pub struct RoomLimits {
    pub max_members: usize,
    pub max_message_chars: usize,
    /// Live events held for a staged connection before it counts as a slow consumer.
    pub max_staged: usize,
    /// Silence after which clients should reconnect (sent in the welcome).
    pub silence_ms: u64,
    /// Rooms up to this size list every member and announce each join and leave; bigger
    /// rooms list this many and send the online count instead (announcing every join to
    /// every member costs members² frames).
    pub presence_list_limit: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_members: 25_000,
            max_message_chars: rules::DEFAULT_MAX_MESSAGE_CHARS,
            max_staged: 1024,
            silence_ms: 40_000,
            presence_list_limit: 200,
        }
    }
}
