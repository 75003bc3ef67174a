//! Posting a message or a change: checked, signed with its author as the room knows them, and appended to the log.
//!
//! The confirmation (or a refusal from the log) comes later, from the hub, once the log's
//! writer is done with it.

use crate::protocol::changes::is_single_emoji;
use crate::protocol::ErrorCode;
use crate::rules::{self, TextError};
use crate::server::chat::join::Membership;
use crate::server::chat::moderation::Silenced;
use crate::server::config::Config;
use crate::server::ids::ConnId;
use crate::server::log::MessageLog;
use crate::server::log::{Action, Append};

/// Why a posted message was refused before reaching the store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("Join the room before sending")]
    NotJoined,
    #[error("Message id must be 1–64 letters, digits, - or _")]
    InvalidClientId,
    #[error("A reaction must be a single emoji")]
    InvalidEmoji,
    #[error(transparent)]
    Text(#[from] TextError),
}

impl PostError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PostError::NotJoined => ErrorCode::NotJoined,
            PostError::InvalidClientId => ErrorCode::InvalidClientId,
            PostError::InvalidEmoji => ErrorCode::InvalidEmoji,
            PostError::Text(TextError::Empty) => ErrorCode::EmptyMessage,
            PostError::Text(TextError::TooLong { .. }) => ErrorCode::MessageTooLong,
            PostError::Text(TextError::Characters) => ErrorCode::InvalidText,
        }
    }
}

/// Checks a message before it is queued for the store.
pub fn check_post(client_id: &str, text: &str, max_chars: usize) -> Result<(), PostError> {
    if !rules::valid_client_id(client_id) {
        return Err(PostError::InvalidClientId);
    }
    rules::validate_text(text, max_chars)?;
    Ok(())
}

/// Checks a message or change before it is queued for the store: edits follow a message's
/// text rules, reactions are one emoji.
pub fn check(client_id: &str, action: &Action, max_chars: usize) -> Result<(), PostError> {
    match action {
        Action::Post { text, .. } | Action::Edit { text, .. } => {
            check_post(client_id, text, max_chars)
        }
        _ if !rules::valid_client_id(client_id) => Err(PostError::InvalidClientId),
        Action::React { emoji, .. } if !is_single_emoji(emoji) => Err(PostError::InvalidEmoji),
        Action::Delete { .. } | Action::React { .. } | Action::Moderate(_) => Ok(()),
    }
}

/// The error code of a moderation refusal.
fn silenced_code(s: &Silenced) -> ErrorCode {
    match s {
        Silenced::Muted => ErrorCode::Muted,
        Silenced::Locked => ErrorCode::Locked,
        Silenced::Slow(_) => ErrorCode::SlowMode,
        Silenced::Banned => ErrorCode::Banned,
    }
}

/// A message refused before it reached the log, with what to tell its sender.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

/// Queues `action` from connection `conn` for the log.
pub fn post(
    log: &MessageLog,
    config: &Config,
    membership: &Membership,
    conn: ConnId,
    client_id: &str,
    action: Action,
) -> Result<(), Refused> {
    let room = membership.room();
    let refused = |code: ErrorCode, message: String| Refused { code, message };
    check(client_id, &action, config.max_message_chars)
        .map_err(|e| refused(e.code(), e.to_string()))?;
    let (author, sid) = room.author(conn).ok_or_else(|| {
        let e = PostError::NotJoined;
        refused(e.code(), e.to_string())
    })?;
    if !matches!(action, Action::Delete { .. }) {
        let posting = matches!(action, Action::Post { .. });
        let (now_ms, now) = (crate::server::log::now_ms(), std::time::Instant::now());
        room.moderation
            .check(&sid, posting, now_ms, now)
            .map_err(|e| refused(silenced_code(&e), e.to_string()))?;
    }
    if config.log_message_text {
        tracing::info!(conn, room = %room.name(), client_id, ?action, "message");
    }
    let append = Append {
        room: room.name().into(),
        conn,
        session: sid.0.into(),
        client_id: client_id.to_string(),
        author,
        action,
        received: std::time::Instant::now(),
    };
    log.append(append)
        .map_err(|e| refused(e.code(), e.to_string()))
}
