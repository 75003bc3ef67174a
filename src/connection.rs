//! The live connection as the page shows it (its state), and when to try it again.

/// Delay before reconnect attempt `attempt` (1-based), given `jitter` in 0..=1: the first
/// within 0.5–1 s, then doubling, never more than 30 s; the jitter spreads a crowd of
/// clients that lost the same server.
pub fn reconnect_delay_ms(attempt: u32, jitter: f64) -> u32 {
    let base = 1000u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(30_000);
    (base as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as u32
}

/// State of the live connection, as the status badge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Online,
    Reconnecting,
    Offline,
}

impl ConnState {
    pub const ALL: [ConnState; 4] = [
        ConnState::Connecting,
        ConnState::Online,
        ConnState::Reconnecting,
        ConnState::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Online => "online",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Offline => "offline",
        }
    }

    /// The badge's message key.
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "conn-connecting",
            ConnState::Online => "conn-online",
            ConnState::Reconnecting => "conn-reconnecting",
            ConnState::Offline => "conn-offline",
        }
    }
}
