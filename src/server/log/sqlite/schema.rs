//! The database's tables, connection settings and row mapping, shared by reads and writer.
//!
//! A room's log is one table of entries, `messages`, numbered per room: `kind` 0 is a
//! message (its row always holds its newest state: text, `edited`, `deleted`), 1–3 are
//! changes to message `target` (edit, delete, react), 4 a moderation change (its action as
//! JSON in `json`). Edit rows keep no text of their own: the message's row is the one place
//! its text lives, so that a deletion removes it. `reactions` holds each message's current
//! reactions; `moderation` and `audit` a room's moderation fields and audit records.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::protocol::{Change, ChangeAction, ChatMessage, MessageId, Quote};
use crate::server::log::types::Entry;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rooms (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    last_id INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    room_id    INTEGER NOT NULL REFERENCES rooms(id),
    id         INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    name       TEXT NOT NULL,
    avatar     TEXT NOT NULL,
    text       TEXT NOT NULL,
    session    TEXT,
    client_id  TEXT,
    PRIMARY KEY (room_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_client
    ON messages (room_id, session, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS reactions (
    room_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    emoji      TEXT NOT NULL,
    name       TEXT NOT NULL,
    id         INTEGER NOT NULL,
    PRIMARY KEY (room_id, message_id, emoji, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS moderation (
    room_id INTEGER NOT NULL,
    field   TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (room_id, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    room_id INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    json    TEXT NOT NULL,
    PRIMARY KEY (room_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// Columns added to `messages` since its first version: name and declaration.
const ADDED: [(&str, &str); 9] = [
    ("kind", "INTEGER NOT NULL DEFAULT 0"),
    ("target", "INTEGER"),
    ("reply_to", "INTEGER"),
    ("edited", "INTEGER"),
    ("deleted", "INTEGER NOT NULL DEFAULT 0"),
    ("emoji", "TEXT"),
    ("flag", "INTEGER"),
    ("removed", "INTEGER NOT NULL DEFAULT 0"),
    ("json", "TEXT"),
];

/// Entry kinds in `messages.kind`.
pub(super) const MESSAGE: i64 = 0;
pub(super) const EDIT: i64 = 1;
pub(super) const DELETE: i64 = 2;
pub(super) const REACT: i64 = 3;
pub(super) const MODERATE: i64 = 4;

/// Brings a database of an earlier version up to this one (adds the columns it lacks).
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('messages')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, decl) in ADDED {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE messages ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

/// Sets the pragmas every connection to the database runs with.
pub(super) fn configure(conn: &Connection, max_pages: Option<u64>) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // A deleted message's text is overwritten where it lay, not only unlinked.
    conn.pragma_update(None, "secure_delete", "FAST")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if let Some(pages) = max_pages {
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    Ok(())
}

/// The WAL file of the database at `db`.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// SQLite integers are signed: clamp ids (e.g. `u64::MAX` for "no bound").
pub(super) fn sql_id(id: MessageId) -> i64 {
    id.min(i64::MAX as u64) as i64
}

/// The columns [`row_to_entry`] reads, for `messages m` with the message a row refers to
/// (its reply's original, or its change's target) as `o`.
pub(super) const ENTRY_COLUMNS: &str = "m.id, m.ts, m.name, m.avatar, m.text, m.client_id, \
     m.kind, m.target, m.reply_to, m.edited, m.deleted, m.emoji, m.flag, \
     o.name, o.text, o.deleted, m.removed, m.json";

/// The join that gives [`ENTRY_COLUMNS`] its `o`.
pub(super) const ENTRY_JOIN: &str = "LEFT JOIN messages o ON o.room_id = m.room_id \
     AND o.id = coalesce(m.reply_to, m.target) AND o.kind = 0";

/// An entry from a row of [`ENTRY_COLUMNS`]; `None` for an edit whose message is no longer
/// kept (its text went with it). Reactions are added by [`add_reactions`].
pub(super) fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Entry>> {
    let id = r.get::<_, i64>(0)? as MessageId;
    let ts = r.get(1)?;
    let name: String = r.get(2)?;
    let avatar: String = r.get(3)?;
    let client_id: Option<String> = r.get(5)?;
    let kind: i64 = r.get(6)?;
    let original: Option<(String, String, bool)> = match r.get::<_, Option<String>>(13)? {
        Some(n) => Some((n, r.get(14)?, r.get(15)?)),
        None => None,
    };
    if kind == MESSAGE {
        let reply_to = r.get::<_, Option<i64>>(8)?.map(|to| {
            let to = to as MessageId;
            match &original {
                Some((n, text, false)) => Quote::of(to, n, text),
                Some((n, _, true)) => Quote::gone(to, n),
                None => Quote::gone(to, ""),
            }
        });
        return Ok(Some(Entry::Message(ChatMessage {
            id,
            ts,
            name,
            avatar,
            text: r.get(4)?,
            client_id,
            reply_to,
            edited: r.get(9)?,
            deleted: r.get(10)?,
            reactions: Vec::new(),
            removed: r.get(16)?,
        })));
    }
    let target = r.get::<_, Option<i64>>(7)?.unwrap_or(0) as MessageId;
    let action = match kind {
        EDIT => match original {
            Some((_, text, _)) => ChangeAction::Edit { text },
            None => return Ok(None),
        },
        DELETE => ChangeAction::Delete,
        MODERATE => {
            let json: String = r.get::<_, Option<String>>(17)?.unwrap_or_default();
            serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(17, rusqlite::types::Type::Text, e.into())
            })?
        }
        _ => ChangeAction::React {
            emoji: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            on: r.get::<_, Option<bool>>(12)?.unwrap_or(false),
        },
    };
    Ok(Some(Entry::Change(Change {
        id,
        ts,
        target,
        name,
        avatar,
        client_id,
        action,
    })))
}

/// Fills in the reactions of `messages` (all of one room).
pub(super) fn add_reactions(
    conn: &Connection,
    room_id: i64,
    messages: &mut [&mut ChatMessage],
) -> rusqlite::Result<()> {
    let (Some(lo), Some(hi)) = (
        messages.iter().map(|m| m.id).min(),
        messages.iter().map(|m| m.id).max(),
    ) else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, emoji, name FROM reactions
         WHERE room_id = ?1 AND message_id BETWEEN ?2 AND ?3 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![room_id, sql_id(lo), sql_id(hi)], |r| {
        Ok((
            r.get::<_, i64>(0)? as MessageId,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut at: HashMap<MessageId, usize> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        at.insert(m.id, i);
    }
    for row in rows {
        let (id, emoji, name) = row?;
        if let Some(&i) = at.get(&id) {
            messages[i].react(&emoji, &name, true);
        }
    }
    Ok(())
}

/// The row id of room `name`, if it has a log.
pub(super) fn room_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM rooms WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// Entry `id` of room `room_id` as it is now, with its reactions.
pub(super) fn entry_at(
    conn: &Connection,
    room_id: i64,
    id: MessageId,
) -> rusqlite::Result<Option<Entry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM messages m {ENTRY_JOIN} WHERE m.room_id = ?1 AND m.id = ?2"
    );
    let entry = conn
        .prepare_cached(&sql)?
        .query_row(params![room_id, sql_id(id)], row_to_entry)
        .optional()?
        .flatten();
    match entry {
        Some(Entry::Message(mut m)) => {
            add_reactions(conn, room_id, &mut [&mut m])?;
            Ok(Some(Entry::Message(m)))
        }
        other => Ok(other),
    }
}
