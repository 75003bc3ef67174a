//! The database's tables, connection settings and row mapping, shared by reads and writer.

use rusqlite::Connection;
use std::path::{Path, PathBuf};

use crate::protocol::{ChatMessage, MessageId};

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
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// Sets the pragmas every connection to the database runs with.
pub(super) fn configure(conn: &Connection, max_pages: Option<u64>) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
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

/// A message from a row of `id, ts, name, avatar, text, client_id`.
pub(super) fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        id: r.get::<_, i64>(0)? as MessageId,
        ts: r.get(1)?,
        name: r.get(2)?,
        avatar: r.get(3)?,
        text: r.get(4)?,
        client_id: r.get(5)?,
    })
}
