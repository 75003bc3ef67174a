//! Posting a message: checked, signed with its author as the room knows them, and appended to the log.
//!
//! The confirmation (or a refusal from the log) comes later, from the hub, once the log's
//! writer is done with it.

use crate::protocol::ErrorCode;
use crate::rules::{self, TextError};
use crate::server::chat::join::Membership;
use crate::server::config::Config;
use crate::server::ids::ConnId;
use crate::server::log::Append;
use crate::server::log::MessageLog;

/// Why a posted message was refused before reaching the store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("Join the room before sending")]
    NotJoined,
    #[error("Message id must be 1–64 letters, digits, - or _")]
    InvalidClientId,
    #[error(transparent)]
    Text(#[from] TextError),
}

impl PostError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PostError::NotJoined => ErrorCode::NotJoined,
            PostError::InvalidClientId => ErrorCode::InvalidClientId,
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

/// A message refused before it reached the log, with what to tell its sender.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

/// Queues `text` from connection `conn` for the log.
pub fn post(
    log: &MessageLog,
    config: &Config,
    membership: &Membership,
    conn: ConnId,
    client_id: &str,
    text: String,
) -> Result<(), Refused> {
    let room = membership.room();
    let refused = |code: ErrorCode, message: String| Refused { code, message };
    check_post(client_id, &text, config.max_message_chars)
        .map_err(|e| refused(e.code(), e.to_string()))?;
    let (author, sid) = room.author(conn).ok_or_else(|| {
        let e = PostError::NotJoined;
        refused(e.code(), e.to_string())
    })?;
    if config.log_message_text {
        tracing::info!(conn, room = %room.name(), client_id, text, "message");
    }
    let append = Append {
        room: room.name().into(),
        conn,
        session: sid.0.into(),
        client_id: client_id.to_string(),
        author,
        text,
        received: std::time::Instant::now(),
    };
    log.append(append)
        .map_err(|e| refused(e.code(), e.to_string()))
}
