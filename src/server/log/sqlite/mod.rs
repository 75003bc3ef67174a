//! The message log on one node: an SQLite database, and its reads.
//!
//! The database is embedded, in WAL mode; the reads serve history and resume.
//!
//! Every message is committed before anyone sees it: the writer thread (`writer.rs`) takes
//! whatever is queued (up to [`MAX_BATCH`]), assigns each room's next ids, writes them in one
//! transaction and only then hands each outcome to the [`Delivery`] (the hub), which
//! broadcasts and so acknowledges. A message whose commit failed is reported to its sender as
//! not stored. `synchronous=NORMAL` in WAL mode keeps every committed message across a crash
//! of the process (kill -9); only a crash of the whole machine may lose the last commits.
//!
//! A client id is stored once per room and session (a unique index), so a re-sent message
//! is confirmed again instead of stored twice.
//!
//! The WAL stays bounded and old messages are deleted by the writer, between its commits
//! (see `writer.rs`).
//!
//! A moderation step is written in the same transaction as any append (`moderation.rs`),
//! with its removals, its writes to the room's moderation fields and its audit record.

mod apply;
mod moderation;
mod retention;
mod schema;
mod writer;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::protocol::{ChatMessage, MessageId};
use crate::server::log::sqlite::schema::{
    add_reactions, configure, migrate, room_id, row_to_entry, sql_id, wal_path, ENTRY_COLUMNS,
    ENTRY_JOIN, SCHEMA,
};
use crate::server::log::types::{now_ms, Delivery, Entry, StoreError};

pub use retention::spawn_retention;
pub use writer::{Appender, MAX_BATCH, PURGE_BATCH};

/// WAL size at which the writer truncates it, unless [`Store::with_wal_limit`] says otherwise.
pub const DEFAULT_WAL_LIMIT: u64 = 64 * 1024 * 1024;

/// Most rows a read may return to run on the async thread (see [`Store::read_sized`]).
const SMALL_READ: usize = 100;

/// The database, for reads; [`Store::start_writer`] starts the one writer.
pub struct Store {
    path: PathBuf,
    max_pages: Option<u64>,
    /// WAL size in bytes at which the writer truncates it (0: never, by size).
    wal_limit: u64,
    read: Arc<Mutex<Connection>>,
    /// When the database last took a probe write, and how that went.
    probe: Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// The messages among `entries`.
fn messages(entries: Vec<Entry>) -> Vec<ChatMessage> {
    entries
        .into_iter()
        .filter_map(Entry::into_message)
        .collect()
}

/// How long a probe of [`Store::check_writable`] stands for.
const PROBE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a probe waits for a lock held by someone else.
const PROBE_BUSY: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
    /// Opens (creating if needed) the database at `path`. `max_mb` caps its size (0: no cap).
    /// A file that is not a usable database is an error that names it, never an empty history.
    pub fn open(path: &Path, max_mb: u64) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let corrupt = |source| StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        // Reading the schema is the first touch of the file: a non-database fails here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(corrupt)?;
        let page_size: u64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(corrupt)?;
        let max_pages = (max_mb > 0).then(|| (max_mb * 1024 * 1024 / page_size.max(512)).max(16));
        configure(&conn, max_pages).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| migrate(&conn))
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                source: rusqlite::Error::InvalidParameterName(check),
            });
        }
        Ok(Store {
            path: path.to_path_buf(),
            max_pages,
            wal_limit: DEFAULT_WAL_LIMIT,
            read: Arc::new(Mutex::new(conn)),
            probe: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the WAL size in bytes past which the writer truncates it (0: only at shutdown).
    pub fn with_wal_limit(mut self, bytes: u64) -> Store {
        self.wal_limit = bytes;
        self
    }

    /// The WAL file beside the database.
    pub fn wal_path(&self) -> PathBuf {
        wal_path(&self.path)
    }

    /// Starts the writer thread; it runs until [`Appender::close`], or until every
    /// [`Appender`] is dropped and the queue is empty.
    pub fn start_writer(
        &self,
        delivery: Arc<dyn Delivery>,
    ) -> Result<(Appender, std::thread::JoinHandle<()>), StoreError> {
        writer::start(&self.path, self.max_pages, self.wal_limit, delivery)
    }

    /// Runs `f` on the read connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read_sized(false, f).await
    }

    /// Like [`Store::read`], but a `small` read (an indexed lookup of a few dozen rows, some
    /// microseconds from the page cache) runs right here when the connection is free: a trip
    /// to the blocking pool costs two thread switches, more than the read itself.
    async fn read_sized<T: Send + 'static>(
        &self,
        small: bool,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        if small {
            if let Ok(conn) = self.read.try_lock() {
                return f(&conn).map_err(StoreError::Sql);
            }
        }
        let read = self.read.clone();
        tokio::task::spawn_blocking(move || {
            let conn = read.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn).map_err(StoreError::Sql)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The newest message id of `room` (0 if none).
    pub async fn last_id(&self, room: &str) -> Result<MessageId, StoreError> {
        let room = room.to_string();
        self.read_sized(true, move |c| {
            // Cached: every join into a room this node has not seen asks this.
            c.prepare_cached("SELECT last_id FROM rooms WHERE name = ?1")?
                .query_row([room], |r| r.get::<_, i64>(0))
                .optional()
                .map(|v| v.unwrap_or(0) as MessageId)
        })
        .await
    }

    /// How many rooms have a history.
    pub async fn room_count(&self) -> Result<usize, StoreError> {
        self.read(|c| c.query_row("SELECT count(*) FROM rooms", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as usize)
    }

    /// The `limit` newest messages of `room` with ids up to `upto`, oldest first.
    pub async fn recent(
        &self,
        room: &str,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let entries = self
            .page(
                room,
                "m.kind = 0 AND m.id <= ?2 ORDER BY m.id DESC",
                upto,
                None,
                limit,
                true,
            )
            .await?;
        Ok(messages(entries))
    }

    /// Up to `limit` messages of `room` older than `before`, oldest first.
    pub async fn before(
        &self,
        room: &str,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let entries = self
            .page(
                room,
                "m.kind = 0 AND m.id < ?2 ORDER BY m.id DESC",
                before,
                None,
                limit,
                true,
            )
            .await?;
        Ok(messages(entries))
    }

    /// Up to `limit` entries of `room` with `after < id <= upto`, oldest first.
    pub async fn between(
        &self,
        room: &str,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.page(
            room,
            "m.id > ?2 AND m.id <= ?3 ORDER BY m.id ASC",
            after,
            Some(upto),
            limit,
            false,
        )
        .await
    }

    /// Entries of `room` matching `condition`, messages with their reactions.
    async fn page(
        &self,
        room: &str,
        condition: &'static str,
        a: MessageId,
        b: Option<MessageId>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let room = room.to_string();
        self.read_sized(limit <= SMALL_READ, move |c| {
            let Some(room_id) = room_id(c, &room)? else {
                return Ok(Vec::new());
            };
            let sql = format!(
                "SELECT {ENTRY_COLUMNS} FROM messages m {ENTRY_JOIN}
                 WHERE m.room_id = ?1 AND {condition} LIMIT ?4"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![room_id, sql_id(a), sql_id(b.unwrap_or(0)), limit as i64],
                row_to_entry,
            )?;
            let mut out: Vec<Entry> = rows
                .filter_map(|r| r.transpose())
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if reverse {
                out.reverse();
            }
            let mut shown: Vec<&mut ChatMessage> = out
                .iter_mut()
                .filter_map(|e| match e {
                    Entry::Message(m) => Some(m),
                    Entry::Change(_) => None,
                })
                .collect();
            add_reactions(c, room_id, &mut shown)?;
            Ok(out)
        })
        .await
    }

    /// Could a message be stored now? The writer must be running and the database must take
    /// a write (a one-row probe, at most once a second: later calls get the last answer, so
    /// that a busy health check cannot load the database).
    pub async fn check_writable(&self, appender: &Appender) -> Result<(), StoreError> {
        if appender.is_closed() {
            return Err(StoreError::Closed);
        }
        let fresh = |p: &Option<(std::time::Instant, Result<(), String>)>| {
            p.as_ref()
                .filter(|(at, _)| at.elapsed() < PROBE_FRESH)
                .map(|(_, r)| r.clone())
        };
        if let Some(r) = fresh(&self.probe.lock().unwrap_or_else(|e| e.into_inner())) {
            return r.map_err(StoreError::NotWritable);
        }
        // Its own short-lived connection with a short busy timeout: a locked or failing
        // database answers within a second and holds up no reader.
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
            let c = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            c.busy_timeout(PROBE_BUSY)?;
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [now_ms()],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        *self.probe.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), result.clone()));
        result.map_err(StoreError::NotWritable)
    }

    /// The secret that signs sessions, created on first use, so that sessions outlive restarts.
    pub async fn session_secret(&self) -> Result<Vec<u8>, StoreError> {
        self.read(|c| {
            if let Some(v) = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'session_secret'",
                    [],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .optional()?
            {
                return Ok(v);
            }
            let mut secret = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('session_secret', ?1)",
                [&secret],
            )?;
            c.query_row(
                "SELECT value FROM meta WHERE key = 'session_secret'",
                [],
                |r| r.get(0),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Member;
    use crate::server::log::types::{Action, Append, Outcome, Refusal};
    use std::sync::mpsc as std_mpsc;

    struct Collect(Mutex<std_mpsc::Sender<(Append, Outcome)>>);

    impl Delivery for Collect {
        fn deliver(&self, append: Append, outcome: Outcome) {
            let _ = self.0.lock().unwrap().send((append, outcome));
        }

        fn deliver_committed(&self, _: &str, _: Entry, _: Option<std::time::Instant>) {}

        fn deliver_typing(&self, _: &str, _: &str) {}
    }

    fn append(room: &str, session: &str, client_id: &str, text: &str) -> Append {
        Append {
            room: room.into(),
            conn: 1,
            session: session.into(),
            client_id: client_id.into(),
            author: Member {
                name: "Ada".into(),
                avatar: "fox".into(),
            },
            action: crate::server::log::types::Action::Post {
                text: text.into(),
                reply_to: None,
            },
            received: std::time::Instant::now(),
        }
    }

    fn writer(
        store: &Store,
    ) -> (
        Appender,
        std::thread::JoinHandle<()>,
        std_mpsc::Receiver<(Append, Outcome)>,
    ) {
        let (tx, rx) = std_mpsc::channel();
        let (appender, handle) = store
            .start_writer(Arc::new(Collect(Mutex::new(tx))))
            .unwrap();
        (appender, handle, rx)
    }

    #[tokio::test]
    async fn messages_get_increasing_ids_per_room_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/chat.db");
        {
            let store = Store::open(&path, 0).unwrap();
            let (appender, handle, rx) = writer(&store);
            for (i, room) in ["a", "a", "b", "a"].iter().enumerate() {
                appender
                    .append(append(room, "s", &format!("c{i}"), "hi"))
                    .unwrap();
            }
            let ids: Vec<(String, u64)> = (0..4)
                .map(|_| match rx.recv().unwrap() {
                    (a, Outcome::Stored(m)) => (a.room.to_string(), m.id()),
                    (_, other) => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                ids,
                [
                    ("a".into(), 1),
                    ("a".into(), 2),
                    ("b".into(), 1),
                    ("a".into(), 3)
                ]
            );
            drop(appender);
            handle.join().unwrap();
        }
        let store = Store::open(&path, 0).unwrap();
        assert_eq!(store.last_id("a").await.unwrap(), 3);
        assert_eq!(store.last_id("nowhere").await.unwrap(), 0);
        let (appender, _handle, rx) = writer(&store);
        appender.append(append("a", "s", "c9", "again")).unwrap();
        assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(m) if m.id() == 4));
    }

    #[tokio::test]
    async fn a_client_id_is_stored_once_per_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), 0).unwrap();
        let (appender, _h, rx) = writer(&store);
        appender.append(append("a", "s1", "x", "one")).unwrap();
        appender
            .append(append("a", "s1", "x", "one again"))
            .unwrap();
        appender
            .append(append("a", "s2", "x", "other session"))
            .unwrap();
        let outcomes: Vec<Outcome> = (0..3).map(|_| rx.recv().unwrap().1).collect();
        assert!(matches!(&outcomes[0], Outcome::Stored(m) if m.id() == 1));
        assert!(
            matches!(&outcomes[1], Outcome::Duplicate(Entry::Message(m)) if m.id == 1 && m.text == "one")
        );
        assert!(matches!(&outcomes[2], Outcome::Stored(m) if m.id() == 2));
        assert_eq!(store.recent("a", u64::MAX, 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn pages_are_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), 0).unwrap();
        let (appender, _h, rx) = writer(&store);
        for i in 0..10 {
            appender
                .append(append("a", "s", &format!("c{i}"), "m"))
                .unwrap();
        }
        for _ in 0..10 {
            rx.recv().unwrap();
        }
        let ids = |v: Vec<ChatMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(store.recent("a", 10, 3).await.unwrap()), [8, 9, 10]);
        assert_eq!(ids(store.recent("a", 6, 3).await.unwrap()), [4, 5, 6]);
        assert_eq!(ids(store.before("a", 4, 10).await.unwrap()), [1, 2, 3]);
        let entries = |v: Vec<Entry>| v.iter().map(Entry::id).collect::<Vec<_>>();
        assert_eq!(entries(store.between("a", 7, 9, 10).await.unwrap()), [8, 9]);
        assert_eq!(
            entries(store.between("a", 2, 10, 3).await.unwrap()),
            [3, 4, 5]
        );
    }

    #[tokio::test]
    async fn a_full_store_refuses_and_stores_nothing_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), 1).unwrap();
        let (appender, _h, rx) = writer(&store);
        let big = "x".repeat(1900);
        let mut stored = 0;
        let mut full = 0;
        for i in 0..1200 {
            appender
                .append(append("a", "s", &format!("c{i}"), &big))
                .unwrap();
            match rx.recv().unwrap().1 {
                Outcome::Stored(_) => stored += 1,
                Outcome::Failed(StoreError::Full) => full += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(stored > 0 && full > 0, "stored {stored}, full {full}");
        // Exactly what was reported stored is there.
        let all = store.between("a", 0, u64::MAX, 10_000).await.unwrap();
        assert_eq!(all.len(), stored);
    }

    #[tokio::test]
    async fn the_wal_stays_near_its_limit_under_steady_writes_and_reads_and_is_empty_after_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(&dir.path().join("chat.db"), 0)
                .unwrap()
                .with_wal_limit(256 * 1024),
        );
        let (appender, handle, rx) = writer(&store);
        let wal = store.wal_path();
        // Readers all the while, as members joining and paging would be.
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let reader = {
            let (store, reading) = (store.clone(), reading.clone());
            tokio::spawn(async move {
                while reading.load(std::sync::atomic::Ordering::Relaxed) {
                    store.recent("a", u64::MAX, 50).await.unwrap();
                }
            })
        };
        let text = "x".repeat(1000);
        let (mut sent, mut done, mut largest) = (0usize, 0usize, 0u64);
        while done < 8000 {
            // Keep the writer busy: a window of messages always queued.
            while sent < 8000 && sent - done < 64 {
                appender
                    .append(append("a", "s", &format!("c{sent}"), &text))
                    .unwrap();
                sent += 1;
            }
            assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(_)));
            done += 1;
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        reading.store(false, std::sync::atomic::Ordering::Relaxed);
        reader.await.unwrap();
        // About 10 MB went through the WAL; it never held much more than its limit.
        assert!(largest < 1024 * 1024, "the WAL reached {largest} bytes");
        appender.close().await;
        handle.join().unwrap();
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
        assert!(matches!(
            appender.append(append("a", "s", "late", "after close")),
            Err(StoreError::Closed)
        ));
        assert_eq!(store.last_id("a").await.unwrap(), 8000);
    }

    #[tokio::test]
    async fn a_reader_that_holds_the_wal_delays_writes_instead_of_letting_the_wal_swell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = Store::open(&path, 0).unwrap().with_wal_limit(64 * 1024);
        let (appender, _h, rx) = writer(&store);
        appender.append(append("a", "s", "c0", "first")).unwrap();
        rx.recv().unwrap();
        // A reader inside a transaction pins the WAL: no checkpoint can truncate it.
        let (release, released) = std_mpsc::channel::<()>();
        let (pinned, is_pinned) = std_mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
                .unwrap();
            pinned.send(()).unwrap();
            released.recv().unwrap();
            conn.execute_batch("COMMIT").unwrap();
        });
        is_pinned.recv().unwrap();
        let text = "x".repeat(1000);
        let wal = store.wal_path();
        let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        // The writer stops committing once the WAL passes twice its limit…
        let mut sent = 1;
        while size() <= 2 * 64 * 1024 {
            appender
                .append(append("a", "s", &format!("c{sent}"), &text))
                .unwrap();
            assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(_)));
            sent += 1;
        }
        appender.append(append("a", "s", "held", &text)).unwrap();
        let held = rx.recv_timeout(std::time::Duration::from_millis(500));
        assert!(
            held.is_err(),
            "stored with the WAL pinned at {} bytes",
            size()
        );
        let pinned_size = size();
        // …and goes on, with nothing lost, once the reader leaves.
        release.send(()).unwrap();
        reader.join().unwrap();
        assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(_)));
        assert!(
            size() < 64 * 1024,
            "the WAL was not truncated: {} bytes",
            size()
        );
        assert!(
            pinned_size < 3 * 64 * 1024,
            "the WAL reached {pinned_size} bytes"
        );
        assert_eq!(store.last_id("a").await.unwrap(), sent as u64 + 1);
    }

    #[tokio::test]
    async fn a_purge_deletes_the_oldest_messages_in_batches_and_ids_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), 0).unwrap();
        let (appender, _h, rx) = writer(&store);
        for (i, room) in ["a", "a", "a", "b", "a"].iter().enumerate() {
            appender
                .append(append(room, "s", &format!("c{i}"), "old"))
                .unwrap();
            rx.recv().unwrap();
        }
        let cutoff = now_ms() + 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
        appender.append(append("a", "s", "new", "new")).unwrap();
        rx.recv().unwrap();
        assert_eq!(appender.purge(cutoff, 3).await.unwrap(), 3);
        assert_eq!(appender.purge(cutoff, 3).await.unwrap(), 2);
        assert_eq!(appender.purge(cutoff, 3).await.unwrap(), 0);
        let ids = |v: Vec<ChatMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(store.recent("a", u64::MAX, 10).await.unwrap()), [5]);
        assert!(store.recent("b", u64::MAX, 10).await.unwrap().is_empty());
        appender.append(append("a", "s", "later", "later")).unwrap();
        assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(m) if m.id() == 6));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&path, 0).err().expect("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("chat.db"), "{err}");
    }

    fn change(session: &str, client_id: &str, action: Action) -> Append {
        Append {
            action,
            ..append("a", session, client_id, "")
        }
    }

    #[tokio::test]
    async fn a_deleted_text_is_gone_from_the_file_and_changes_are_checked_in_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = Store::open(&path, 0).unwrap();
        let (appender, handle, rx) = writer(&store);
        let secret = "SECRET-d41d8cd98f00b204";
        // One commit each, as in a live room.
        let commit = |a: Append| {
            appender.append(a).unwrap();
            rx.recv().unwrap().1
        };
        commit(append("a", "s1", "m1", secret));
        // Neighbours on the same page, as in a real room.
        for i in 0..20 {
            let text = format!("neighbour {i} {}", "x".repeat(40));
            commit(append("a", "s3", &format!("n{i}"), &text));
        }
        let edit = |text: &str| Action::Edit {
            target: 1,
            text: text.into(),
        };
        let stolen = commit(change("s2", "e1", edit("stolen")));
        assert!(matches!(stolen, Outcome::Refused(Refusal::NotAuthor)));
        let edited = commit(change("s1", "e2", edit(&format!("{secret}!"))));
        assert!(matches!(edited, Outcome::Stored(Entry::Change(c)) if c.id == 22));
        let deleted = commit(change("s1", "d1", Action::Delete { target: 1 }));
        assert!(matches!(deleted, Outcome::Stored(Entry::Change(c)) if c.id == 23));
        let again = commit(change("s1", "e3", edit("again")));
        assert!(matches!(again, Outcome::Refused(Refusal::NoSuchMessage)));
        let shown = store.recent("a", 1, 10).await.unwrap();
        assert!(shown[0].deleted && shown[0].text.is_empty());
        appender.close().await;
        handle.join().unwrap();
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the deleted text is still in the database file");
    }

    #[tokio::test]
    async fn the_session_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let first = Store::open(&path, 0)
            .unwrap()
            .session_secret()
            .await
            .unwrap();
        let again = Store::open(&path, 0)
            .unwrap()
            .session_secret()
            .await
            .unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(first, again);
    }
}
