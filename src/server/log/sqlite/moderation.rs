//! Moderation in the SQLite log: the moderation step in the writer's transaction, the fields, the audit records.
//!
//! A moderation entry is a row of `messages` of kind [`MODERATE`] holding its action as
//! JSON. Removing a message empties its row as a deletion does and marks it `removed`.

use rusqlite::{params, Connection, OptionalExtension};

use crate::protocol::moderation::MAX_CLEARED;
use crate::protocol::pages::AuditEntry;
use crate::protocol::{Change, ChangeAction, MessageId, Timestamp};
use crate::server::log::sqlite::schema::{room_id, sql_id, MODERATE};
use crate::server::log::sqlite::Store;
use crate::server::log::types::{Append, Entry, Moderation, Refusal, StoreError};
use crate::server::log::AUDIT_KEPT;

/// Entries `session_of` looks through, newest first.
const NAME_WINDOW: i64 = 1000;
/// How far before a clear's start it still looks (the clock may have been set back a little).
const CLOCK_SLACK_MS: i64 = 60_000;

/// The value of moderation field `field` of room `room_id`.
fn field(conn: &Connection, room_id: i64, field: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM moderation WHERE room_id = ?1 AND field = ?2")?
        .query_row(params![room_id, field], |r| r.get(0))
        .optional()
}

/// Sets (`Some`) or deletes a moderation field; with `only_if_absent`, sets only a missing
/// one. Returns whether it wrote.
pub(super) fn set_field(
    conn: &Connection,
    room_id: i64,
    field: &str,
    value: Option<&str>,
    only_if_absent: bool,
) -> rusqlite::Result<bool> {
    let changed = match (value, only_if_absent) {
        (None, _) => conn
            .prepare_cached("DELETE FROM moderation WHERE room_id = ?1 AND field = ?2")?
            .execute(params![room_id, field])?,
        (Some(v), true) => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO moderation (room_id, field, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![room_id, field, v])?,
        (Some(v), false) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO moderation (room_id, field, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![room_id, field, v])?,
    };
    Ok(changed > 0)
}

/// Deletes message `id`'s text, edit mark and reactions; `removed`: a moderator did it
/// (an author's deletion and a removal share this).
pub(super) fn erase(
    conn: &Connection,
    room_id: i64,
    id: MessageId,
    removed: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET text = '', edited = NULL, deleted = 1, removed = ?3
         WHERE room_id = ?1 AND id = ?2 AND kind = 0",
    )?
    .execute(params![room_id, sql_id(id), removed])?;
    conn.prepare_cached("DELETE FROM reactions WHERE room_id = ?1 AND message_id = ?2")?
        .execute(params![room_id, sql_id(id)])?;
    Ok(())
}

/// The ids of the messages `session` posted in room `room_id` at `since` or later that are
/// not deleted (the newest `MAX_CLEARED`), ascending.
fn cleared(
    conn: &Connection,
    room_id: i64,
    session: &str,
    since: Timestamp,
) -> rusqlite::Result<Vec<MessageId>> {
    // Newest first, stopping at the first entry well before `since` (ids grow with time;
    // a minute's slack for the clock): no index needed.
    let mut stmt = conn.prepare_cached(
        "SELECT id, ts, kind = 0 AND deleted = 0 AND session IS ?2
         FROM messages WHERE room_id = ?1 ORDER BY id DESC",
    )?;
    let mut rows = stmt.query(params![room_id, session])?;
    let mut found: Vec<MessageId> = Vec::new();
    while let Some(row) = rows.next()? {
        let ts: i64 = row.get(1)?;
        if ts < since.saturating_sub(CLOCK_SLACK_MS) || found.len() >= MAX_CLEARED {
            break;
        }
        if ts >= since && row.get::<_, bool>(2)? {
            found.push(row.get::<_, i64>(0)? as MessageId);
        }
    }
    found.reverse();
    Ok(found)
}

/// Writes moderation step `m` of `a` as entry `id` of room `room_id` at `ts`, with its
/// removals, field writes and audit record, or says why it is refused (nothing written).
pub(super) fn write(
    conn: &Connection,
    room_id: i64,
    id: MessageId,
    ts: Timestamp,
    a: &Append,
    m: &Moderation,
) -> rusqlite::Result<Result<Entry, Refusal>> {
    if let Some((name, value)) = &m.require {
        if field(conn, room_id, name)?.as_deref() != Some(value.as_str()) {
            return Ok(Err(Refusal::Stale));
        }
    }
    let mut action = m.action.clone();
    match &mut action {
        ChangeAction::Remove { .. } => {
            let there = conn
                .prepare_cached(
                    "SELECT 1 FROM messages
                     WHERE room_id = ?1 AND id = ?2 AND kind = 0 AND deleted = 0",
                )?
                .exists(params![room_id, sql_id(m.target)])?;
            if !there {
                return Ok(Err(Refusal::NoSuchMessage));
            }
            erase(conn, room_id, m.target, true)?;
        }
        ChangeAction::Clear { ids, .. } => {
            ids.clear();
            if let Some((session, since)) = &m.clear {
                let found = cleared(conn, room_id, session, *since)?;
                for &id in &found {
                    erase(conn, room_id, id, true)?;
                }
                *ids = found;
            }
        }
        _ => {}
    }
    for (name, value) in &m.writes {
        set_field(conn, room_id, name, value.as_deref(), false)?;
    }
    let change = Change {
        id,
        ts,
        target: m.target,
        name: a.author.name.clone(),
        avatar: a.author.avatar.clone(),
        client_id: Some(a.client_id.clone()),
        action,
    };
    let json = serde_json::to_string(&change.action).map_err(to_sql)?;
    conn.prepare_cached(
        "INSERT INTO messages (room_id, id, ts, name, avatar, text, session, client_id,
                               kind, target, json)
         VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        room_id,
        sql_id(id),
        ts,
        change.name,
        change.avatar,
        &*a.session,
        a.client_id,
        MODERATE,
        (m.target > 0).then(|| sql_id(m.target)),
        json
    ])?;
    let record = AuditEntry {
        change: change.clone(),
        role: m.role,
    };
    let record = serde_json::to_string(&record).map_err(to_sql)?;
    conn.prepare_cached("INSERT INTO audit (room_id, id, json) VALUES (?1, ?2, ?3)")?
        .execute(params![room_id, sql_id(id), record])?;
    // Keeps the newest AUDIT_KEPT of the room.
    conn.prepare_cached(
        "DELETE FROM audit WHERE room_id = ?1 AND id <= (SELECT id FROM audit
         WHERE room_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![room_id, AUDIT_KEPT as i64])?;
    Ok(Ok(Entry::Change(change)))
}

/// A JSON failure as an SQLite one, so that the writer's transaction rolls back.
fn to_sql(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl Store {
    /// Every moderation field of `room`, by field name.
    pub async fn moderation(&self, room: &str) -> Result<Vec<(String, String)>, StoreError> {
        let room = room.to_string();
        self.read(move |c| {
            let Some(room_id) = room_id(c, &room)? else {
                return Ok(Vec::new());
            };
            c.prepare_cached(
                "SELECT field, value FROM moderation WHERE room_id = ?1 ORDER BY field",
            )?
            .query_map([room_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
        .await
    }

    /// Up to `limit` audit records of `room` with ids below `before`, newest first.
    pub async fn audit(
        &self,
        room: &str,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let room = room.to_string();
        let before = before.map_or(i64::MAX, sql_id);
        let rows: Vec<String> = self
            .read(move |c| {
                let Some(room_id) = room_id(c, &room)? else {
                    return Ok(Vec::new());
                };
                c.prepare_cached(
                    "SELECT json FROM audit WHERE room_id = ?1 AND id < ?2
                     ORDER BY id DESC LIMIT ?3",
                )?
                .query_map(
                    params![room_id, before, limit.min(i64::MAX as usize) as i64],
                    |r| r.get(0),
                )?
                .collect()
            })
            .await?;
        rows.iter()
            .map(|j| serde_json::from_str(j).map_err(|e| StoreError::Task(e.to_string())))
            .collect()
    }

    /// The session that last posted as exactly `name` among the room's newest entries.
    pub async fn session_of(&self, room: &str, name: &str) -> Result<Option<String>, StoreError> {
        let (room, name) = (room.to_string(), name.to_string());
        self.read(move |c| {
            // Ids are gapless per room: the newest entries are those above last_id - window.
            c.prepare_cached(
                "SELECT m.session FROM rooms r JOIN messages m ON m.room_id = r.id
                 WHERE r.name = ?1 AND m.id > r.last_id - ?3 AND m.kind = 0 AND m.name = ?2
                 ORDER BY m.id DESC LIMIT 1",
            )?
            .query_row(params![room, name, NAME_WINDOW], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
        })
        .await
    }

    /// The names of the rooms the database knows (those counted by `room_count`).
    pub async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT name FROM rooms ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Member, Role};
    use crate::server::log::types::{Action, Delivery, Outcome};
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Arc, Mutex};

    struct Collect(Mutex<std_mpsc::Sender<Outcome>>);

    impl Delivery for Collect {
        fn deliver(&self, _: Append, outcome: Outcome) {
            let _ = self.0.lock().unwrap().send(outcome);
        }

        fn deliver_committed(&self, _: &str, _: Entry, _: Option<std::time::Instant>) {}

        fn deliver_typing(&self, _: &str, _: &str) {}
    }

    fn remove(client_id: &str, target: MessageId) -> Append {
        let step = Moderation {
            action: ChangeAction::Remove {
                reason: String::new(),
            },
            target,
            clear: None,
            writes: vec![("topic".into(), Some("set with it".into()))],
            require: None,
            role: Some(Role::Owner),
        };
        Append {
            room: "a".into(),
            conn: 1,
            session: "sm".into(),
            client_id: client_id.into(),
            author: Member {
                name: "Mod".into(),
                avatar: "owl".into(),
            },
            action: Action::Moderate(Box::new(step)),
            received: std::time::Instant::now(),
        }
    }

    #[tokio::test]
    async fn an_older_database_gains_the_new_columns_and_its_messages_can_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            // The tables as they were before moderation.
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                     last_id INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE messages (room_id INTEGER NOT NULL REFERENCES rooms(id),
                     id INTEGER NOT NULL, ts INTEGER NOT NULL, name TEXT NOT NULL,
                     avatar TEXT NOT NULL, text TEXT NOT NULL, session TEXT, client_id TEXT,
                     kind INTEGER NOT NULL DEFAULT 0, target INTEGER, reply_to INTEGER,
                     edited INTEGER, deleted INTEGER NOT NULL DEFAULT 0, emoji TEXT,
                     flag INTEGER, PRIMARY KEY (room_id, id)) WITHOUT ROWID;
                 INSERT INTO rooms (id, name, last_id) VALUES (1, 'a', 1);
                 INSERT INTO messages (room_id, id, ts, name, avatar, text, session, client_id)
                     VALUES (1, 1, 5, 'Ann', 'fox', 'old words', 's1', 'c1');",
            )
            .unwrap();
        }
        let store = Store::open(&path, 0).unwrap();
        let shown = store.recent("a", u64::MAX, 10).await.unwrap();
        assert_eq!(
            (shown[0].text.as_str(), shown[0].removed),
            ("old words", false)
        );
        let (tx, rx) = std_mpsc::channel();
        let (appender, _h) = store
            .start_writer(Arc::new(Collect(Mutex::new(tx))))
            .unwrap();
        appender.append(remove("r1", 1)).unwrap();
        let Outcome::Stored(Entry::Change(c)) = rx.recv().unwrap() else {
            panic!("not stored")
        };
        assert_eq!((c.id, c.target, c.name.as_str()), (2, 1, "Mod"));
        let shown = store.recent("a", u64::MAX, 10).await.unwrap();
        assert!(shown[0].removed && shown[0].deleted && shown[0].text.is_empty());
        let fields = store.moderation("a").await.unwrap();
        assert_eq!(fields, [("topic".to_string(), "set with it".to_string())]);
        let audit = store.audit("a", None, 10).await.unwrap();
        assert_eq!(
            (audit[0].change.clone(), audit[0].role),
            (c, Some(Role::Owner))
        );
    }

    #[tokio::test]
    async fn a_field_deleted_in_a_room_without_a_log_makes_no_room() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), 0).unwrap();
        let (tx, _rx) = std_mpsc::channel();
        let (appender, _h) = store
            .start_writer(Arc::new(Collect(Mutex::new(tx))))
            .unwrap();
        assert!(!appender
            .set_moderation("x", "f", None, false)
            .await
            .unwrap());
        assert!(store.rooms().await.unwrap().is_empty());
        assert!(appender
            .set_moderation("y", "f", Some("1"), true)
            .await
            .unwrap());
        assert!(!appender
            .set_moderation("y", "f", Some("2"), true)
            .await
            .unwrap());
        assert!(appender
            .set_moderation("y", "f", Some("3"), false)
            .await
            .unwrap());
        assert_eq!(store.rooms().await.unwrap(), ["y"]);
        assert_eq!(
            store.moderation("y").await.unwrap(),
            [("f".to_string(), "3".to_string())]
        );
        assert_eq!(store.session_of("y", "Ann").await.unwrap(), None);
    }
}
