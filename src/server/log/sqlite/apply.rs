//! One append written inside the writer's transaction: a message, or a change checked against its message.
//!
//! A change is refused (nothing written) unless its message exists and is not deleted;
//! an edit or deletion also needs the session that posted it. A message's row is updated
//! to its new state, so that reads find it there, and the change gets its own row.

use rusqlite::{params, Connection, OptionalExtension};

use crate::protocol::{Change, ChangeAction, ChatMessage, MessageId, Quote, Timestamp};
use crate::server::log::sqlite::moderation;
use crate::server::log::sqlite::schema::{sql_id, DELETE, EDIT, MESSAGE, REACT};
use crate::server::log::types::{Action, Append, Entry, Refusal, MAX_REACTIONS};

/// A message as the checks see it.
struct Target {
    name: String,
    text: String,
    session: Option<String>,
}

/// Message `id` of room `room_id`, unless it is deleted or not kept.
fn target(conn: &Connection, room_id: i64, id: MessageId) -> rusqlite::Result<Option<Target>> {
    conn.prepare_cached(
        "SELECT name, text, session FROM messages
         WHERE room_id = ?1 AND id = ?2 AND kind = 0 AND deleted = 0",
    )?
    .query_row(params![room_id, sql_id(id)], |r| {
        Ok(Target {
            name: r.get(0)?,
            text: r.get(1)?,
            session: r.get(2)?,
        })
    })
    .optional()
}

/// Writes `a` as entry `id` of room `room_id` at `ts`, or says why it is refused.
pub(super) fn write(
    conn: &Connection,
    room_id: i64,
    id: MessageId,
    ts: Timestamp,
    a: &Append,
) -> rusqlite::Result<Result<Entry, Refusal>> {
    let (kind, target_id) = match &a.action {
        Action::Post { .. } => (MESSAGE, None),
        Action::Edit { target, .. } => (EDIT, Some(*target)),
        Action::Delete { target } => (DELETE, Some(*target)),
        Action::React { target, .. } => (REACT, Some(*target)),
        Action::Moderate(m) => return moderation::write(conn, room_id, id, ts, a, m),
    };
    let target = match target_id.or(match &a.action {
        Action::Post { reply_to, .. } => *reply_to,
        _ => None,
    }) {
        Some(t) => match target(conn, room_id, t)? {
            Some(found) => Some((t, found)),
            None => return Ok(Err(Refusal::NoSuchMessage)),
        },
        None => None,
    };
    if matches!(a.action, Action::Edit { .. } | Action::Delete { .. })
        && target
            .as_ref()
            .is_none_or(|(_, t)| t.session.as_deref() != Some(&*a.session))
    {
        return Ok(Err(Refusal::NotAuthor));
    }
    let change = |action: ChangeAction| {
        Entry::Change(Change {
            id,
            ts,
            target: target_id.unwrap_or(0),
            name: a.author.name.clone(),
            avatar: a.author.avatar.clone(),
            client_id: Some(a.client_id.clone()),
            action,
        })
    };
    let entry = match &a.action {
        Action::Post { text, reply_to } => Entry::Message(ChatMessage {
            id,
            ts,
            name: a.author.name.clone(),
            avatar: a.author.avatar.clone(),
            text: text.clone(),
            client_id: Some(a.client_id.clone()),
            reply_to: reply_to
                .zip(target.as_ref())
                .map(|(to, (_, t))| Quote::of(to, &t.name, &t.text)),
            ..ChatMessage::default()
        }),
        Action::Edit { target, text } => {
            conn.prepare_cached(
                "UPDATE messages SET text = ?3, edited = ?4 WHERE room_id = ?1 AND id = ?2",
            )?
            .execute(params![room_id, sql_id(*target), text, ts])?;
            change(ChangeAction::Edit { text: text.clone() })
        }
        Action::Delete { target } => {
            moderation::erase(conn, room_id, *target, false)?;
            change(ChangeAction::Delete)
        }
        Action::React { target, emoji, on } => {
            if *on {
                // The same order as the Redis script: a pair already there is kept as it
                // is; a new one needs room under the cap.
                let key = params![room_id, sql_id(*target), emoji, a.author.name];
                let had = conn
                    .prepare_cached(
                        "SELECT 1 FROM reactions WHERE room_id = ?1 AND message_id = ?2
                         AND emoji = ?3 AND name = ?4",
                    )?
                    .exists(key)?;
                if !had {
                    let count: i64 = conn
                        .prepare_cached(
                            "SELECT count(*) FROM reactions WHERE room_id = ?1 AND message_id = ?2",
                        )?
                        .query_row(params![room_id, sql_id(*target)], |r| r.get(0))?;
                    if count >= MAX_REACTIONS as i64 {
                        return Ok(Err(Refusal::TooManyReactions));
                    }
                    conn.prepare_cached(
                        "INSERT INTO reactions (room_id, message_id, emoji, name, id)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        room_id,
                        sql_id(*target),
                        emoji,
                        a.author.name,
                        sql_id(id)
                    ])?;
                }
            } else {
                conn.prepare_cached(
                    "DELETE FROM reactions WHERE room_id = ?1 AND message_id = ?2
                     AND emoji = ?3 AND name = ?4",
                )?
                .execute(params![
                    room_id,
                    sql_id(*target),
                    emoji,
                    a.author.name
                ])?;
            }
            change(ChangeAction::React {
                emoji: emoji.clone(),
                on: *on,
            })
        }
        Action::Moderate(m) => return moderation::write(conn, room_id, id, ts, a, m),
    };
    let (text, reply_to, emoji, flag) = match &a.action {
        Action::Post { text, reply_to } => (text.as_str(), reply_to.map(sql_id), None, None),
        Action::React { emoji, on, .. } => ("", None, Some(emoji.as_str()), Some(*on)),
        _ => ("", None, None, None),
    };
    conn.prepare_cached(
        "INSERT INTO messages (room_id, id, ts, name, avatar, text, session, client_id,
                               kind, target, reply_to, emoji, flag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        room_id,
        sql_id(id),
        ts,
        a.author.name,
        a.author.avatar,
        text,
        &*a.session,
        a.client_id,
        kind,
        target_id.map(sql_id),
        reply_to,
        emoji,
        flag
    ])?;
    Ok(Ok(entry))
}
