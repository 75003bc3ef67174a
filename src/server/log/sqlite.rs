//! The message log: an embedded SQLite database (WAL) with one writer thread that group-commits, and reads for history and resume.
//!
//! Every message is committed before anyone sees it: the writer takes whatever is queued
//! (up to [`MAX_BATCH`]), assigns each room's next ids, writes them in one transaction and
//! only then hands each outcome to the [`Delivery`] (the hub), which broadcasts and so
//! acknowledges. A message whose commit failed is reported to its sender as not stored.
//! `synchronous=NORMAL` in WAL mode keeps every committed message across a crash of the
//! process (kill -9); only a crash of the whole machine may lose the last commits.
//!
//! A client id is stored once per room and session (a unique index), so a re-sent message
//! is confirmed again instead of stored twice.
//!
//! The WAL stays bounded: a checkpointer thread copies it into the database beside the
//! writer, and the writer itself truncates it (`wal_checkpoint(TRUNCATE)`) between commits
//! once it passes the limit, which no stream of commits can starve. [`Appender::close`]
//! truncates it at shutdown. With a retention period, old messages are deleted in small
//! batches queued between the commits ([`spawn_retention`]).

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::{ChatMessage, Member, MessageId};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 4096;
/// Appends queued for the writer before senders are told the server is busy.
pub const QUEUE: usize = 65_536;
/// WAL size at which the writer truncates it, unless [`Store::with_wal_limit`] says otherwise.
pub const DEFAULT_WAL_LIMIT: u64 = 64 * 1024 * 1024;
/// How long the writer's truncating checkpoint waits for readers to leave the WAL.
const CHECKPOINT_BUSY: std::time::Duration = std::time::Duration::from_millis(200);
/// Pause before the writer tries again after a checkpoint that found the WAL in use.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_millis(10);
/// Pause before the writer tries again after a checkpoint that failed (e.g. a full disk).
const CHECKPOINT_FAILED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// Busy timeout of the writer's and the checkpointer's connections.
const BUSY: std::time::Duration = std::time::Duration::from_secs(5);
/// Most messages one retention job deletes: a short pause of the writer.
pub const PURGE_BATCH: usize = 1000;
/// How often the retention task looks for messages past the retention period.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the store could not do something.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the message database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the folder for the message database {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the message database {path} is unusable ({source}); move it away or restore a backup"
    )]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the message database is full (its max_db_mb limit or the disk)")]
    Full,
    #[error("the message store is busy; try again")]
    Busy,
    #[error("the message store is closed")]
    Closed,
    #[error("message store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("message store task failed: {0}")]
    Task(String),
    #[error("the message store cannot be written: {0}")]
    NotWritable(String),
    #[error("the shared message store (Redis) failed: {0}")]
    Redis(String),
}

impl StoreError {
    fn from_write(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => StoreError::Sql(e),
        }
    }
}

/// A message to store.
#[derive(Clone, Debug)]
pub struct Append {
    pub room: Arc<str>,
    /// The sending connection, for the confirmation or the error.
    pub conn: u64,
    /// Scopes `client_id`: the sender's session.
    pub session: Arc<str>,
    pub client_id: String,
    pub author: Member,
    pub text: String,
    /// When the server received it, for the fan-out latency.
    pub received: std::time::Instant,
}

/// What became of an append.
#[derive(Debug)]
pub enum Outcome {
    /// Newly stored: broadcast it.
    Stored(ChatMessage),
    /// This client id was stored before, as this message: confirm it to the sender only.
    Duplicate(ChatMessage),
    /// Not stored.
    Failed(StoreError),
}

/// Receives the writer's outcomes, in commit order.
pub trait Delivery: Send + Sync + 'static {
    fn deliver(&self, append: Append, outcome: Outcome);
}

/// Work for the writer thread, done in queue order.
enum Job {
    Append(Append),
    /// Delete up to `limit` messages older than `before_ms`; answers how many went.
    Purge {
        before_ms: i64,
        limit: usize,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Commit what is queued before, truncate the WAL, close the database and stop.
    Close(oneshot::Sender<()>),
}

/// Queues appends for the writer. Cheap to clone.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Job>,
}

impl Appender {
    /// Queues `append` without waiting; fails when the writer is overwhelmed or gone.
    pub fn append(&self, append: Append) -> Result<(), StoreError> {
        self.tx.try_send(Job::Append(append)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })
    }

    /// Deletes up to `limit` messages stamped before `before_ms`, between the writer's
    /// commits; returns how many were deleted.
    pub async fn purge(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Purge {
                before_ms,
                limit,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the writer once everything queued before is committed, leaving the WAL empty
    /// (truncated) and the writer's connections closed. Later appends fail as closed.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Job::Close(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// True when nothing is waiting for the writer.
    pub fn is_idle(&self) -> bool {
        self.tx.capacity() == self.tx.max_capacity()
    }
}

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

/// How long a probe of [`Store::check_writable`] stands for.
const PROBE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a probe waits for a lock held by someone else.
const PROBE_BUSY: std::time::Duration = std::time::Duration::from_millis(500);

const SCHEMA: &str = "
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

/// Milliseconds since the Unix epoch: a message's timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn configure(conn: &Connection, max_pages: Option<u64>) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if let Some(pages) = max_pages {
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    Ok(())
}

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
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        configure(&conn, self.max_pages)?;
        // Checkpoints run on their own thread (below), never inside a commit: an automatic
        // checkpoint in the writer would stall every message waiting behind it. Only past
        // the WAL limit does the writer truncate it itself (see `Writer::limit_wal`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        let checkpointer = Connection::open(&self.path).map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        checkpointer.busy_timeout(BUSY)?;
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, rx) = mpsc::channel(QUEUE);
        let checkpoint_running = running.clone();
        let (wal, wal_limit) = (wal_path(&self.path), self.wal_limit);
        let checkpoint = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, wal, wal_limit, checkpoint_running))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let writer = Writer::new(conn, wal_path(&self.path), self.wal_limit);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let (writer, closed) = writer.run(rx, delivery);
                running.store(false, std::sync::atomic::Ordering::Relaxed);
                let _ = checkpoint.join();
                writer.finish();
                if let Some(reply) = closed {
                    let _ = reply.send(());
                }
            })
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok((Appender { tx }, handle))
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
        self.page(
            room,
            "m.id <= ?2 ORDER BY m.id DESC",
            upto,
            None,
            limit,
            true,
        )
        .await
    }

    /// Up to `limit` messages of `room` older than `before`, oldest first.
    pub async fn before(
        &self,
        room: &str,
        before: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.page(
            room,
            "m.id < ?2 ORDER BY m.id DESC",
            before,
            None,
            limit,
            true,
        )
        .await
    }

    /// Up to `limit` messages of `room` with `after < id <= upto`, oldest first.
    pub async fn between(
        &self,
        room: &str,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
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

    async fn page(
        &self,
        room: &str,
        condition: &'static str,
        a: MessageId,
        b: Option<MessageId>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let room = room.to_string();
        self.read_sized(limit <= SMALL_READ, move |c| {
            let sql = format!(
                "SELECT m.id, m.ts, m.name, m.avatar, m.text, m.client_id
                 FROM messages m JOIN rooms r ON r.id = m.room_id
                 WHERE r.name = ?1 AND {condition} LIMIT ?4"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![room, sql_id(a), sql_id(b.unwrap_or(0)), limit as i64],
                row_to_message,
            )?;
            let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            if reverse {
                out.reverse();
            }
            Ok(out)
        })
        .await
    }

    /// Could a message be stored now? The writer must be running and the database must take
    /// a write (a one-row probe, at most once a second: later calls get the last answer, so
    /// that a busy health check cannot load the database).
    pub async fn check_writable(&self, appender: &Appender) -> Result<(), StoreError> {
        if appender.tx.is_closed() {
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

/// The WAL file of the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Starts a task that deletes messages older than `days` now and every minute, a batch at a
/// time between the writer's commits. It ends when the writer stops.
pub fn spawn_retention(appender: Appender, days: u64) -> tokio::task::JoinHandle<()> {
    let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        loop {
            let before_ms = now_ms().saturating_sub(keep_ms);
            let mut deleted = 0;
            loop {
                match appender.purge(before_ms, PURGE_BATCH).await {
                    Ok(n) => {
                        deleted += n;
                        if n < PURGE_BATCH {
                            break;
                        }
                    }
                    Err(StoreError::Closed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "retention: deleting old messages failed");
                        break;
                    }
                }
            }
            if deleted > 0 {
                tracing::info!(deleted, days, "retention: deleted old messages");
            }
            tokio::time::sleep(PURGE_INTERVAL).await;
        }
    })
}

/// SQLite integers are signed: clamp ids (e.g. `u64::MAX` for "no bound").
fn sql_id(id: MessageId) -> i64 {
    id.min(i64::MAX as u64) as i64
}

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        id: r.get::<_, i64>(0)? as MessageId,
        ts: r.get(1)?,
        name: r.get(2)?,
        avatar: r.get(3)?,
        text: r.get(4)?,
        client_id: r.get(5)?,
    })
}

/// Copies the WAL into the database now and then, beside the writer (PASSIVE: never blocks
/// it). Past the WAL limit it stands aside: the writer's truncating checkpoint needs the
/// checkpoint lock this one would hold.
fn checkpoint_loop(
    conn: Connection,
    wal: PathBuf,
    wal_limit: u64,
    running: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut failing = false;
    while running.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if wal_limit > 0 && size > wal_limit {
            continue;
        }
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            // Once per failing spell (a full disk fails every time until space returns).
            Err(e) if !failing => {
                tracing::warn!(error = %e, "checkpoint failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// Room name → (row id, last message id), as committed.
    rooms: HashMap<Arc<str>, (i64, MessageId)>,
    wal: PathBuf,
    /// WAL size past which the writer truncates it (0: never, by size).
    wal_limit: u64,
    /// No truncating checkpoint before this (after one that could not finish).
    next_checkpoint: std::time::Instant,
    /// The last truncating checkpoint failed (its warning is logged once).
    checkpoint_failing: bool,
}

impl Writer {
    fn new(conn: Connection, wal: PathBuf, wal_limit: u64) -> Self {
        Writer {
            conn,
            rooms: HashMap::new(),
            wal,
            wal_limit,
            next_checkpoint: std::time::Instant::now(),
            checkpoint_failing: false,
        }
    }

    /// Does the jobs until a close (returned, to be answered) or until every sender is gone.
    fn run(
        mut self,
        mut rx: mpsc::Receiver<Job>,
        delivery: Arc<dyn Delivery>,
    ) -> (Self, Option<oneshot::Sender<()>>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(job) => job,
                None => match rx.blocking_recv() {
                    Some(job) => job,
                    None => return (self, None),
                },
            };
            match job {
                Job::Append(first) => {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Job::Append(a)) => batch.push(a),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(&mut batch, &*delivery);
                }
                Job::Purge {
                    before_ms,
                    limit,
                    reply,
                } => {
                    let result = self.purge(before_ms, limit).map_err(StoreError::from_write);
                    let _ = reply.send(result);
                }
                Job::Close(reply) => return (self, Some(reply)),
            }
            self.limit_wal();
        }
    }

    /// Commits `batch` and hands every outcome to `delivery`, emptying the batch.
    fn commit_batch(&mut self, batch: &mut Vec<Append>, delivery: &dyn Delivery) {
        match self.commit(batch) {
            Ok(outcomes) => {
                for (append, outcome) in batch.drain(..).zip(outcomes) {
                    delivery.deliver(append, outcome);
                }
            }
            Err(e) => {
                // Nothing of the batch is stored; forget cached ids, which may have moved.
                self.rooms.clear();
                let error = StoreError::from_write(e);
                tracing::error!(%error, messages = batch.len(), "commit failed");
                for append in batch.drain(..) {
                    let outcome = Outcome::Failed(match &error {
                        StoreError::Full => StoreError::Full,
                        StoreError::Busy => StoreError::Busy,
                        other => StoreError::Task(other.to_string()),
                    });
                    delivery.deliver(append, outcome);
                }
            }
        }
    }

    /// Truncates the WAL once it is past the limit. Run by the writer between commits, so
    /// that no commit can append to the WAL meanwhile and starve the checkpoint.
    fn limit_wal(&mut self) {
        if self.wal_limit == 0 || std::time::Instant::now() < self.next_checkpoint {
            return;
        }
        let size = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        if size <= self.wal_limit {
            return;
        }
        match self.checkpoint(CHECKPOINT_BUSY) {
            Ok(true) => {
                tracing::debug!(wal_bytes = size, "WAL truncated");
                self.checkpoint_failing = false;
            }
            Ok(false) => {
                // Another checkpoint holds the lock, or a reader is still in the WAL.
                self.next_checkpoint = std::time::Instant::now() + CHECKPOINT_RETRY;
            }
            Err(e) => {
                // E.g. a full disk: the database cannot grow to take the WAL's pages.
                if !self.checkpoint_failing {
                    tracing::warn!(error = %e, wal_bytes = size, "WAL checkpoint failed");
                }
                self.checkpoint_failing = true;
                self.next_checkpoint = std::time::Instant::now() + CHECKPOINT_FAILED_RETRY;
            }
        }
    }

    /// Copies the whole WAL into the database and truncates it to 0 bytes, waiting up to
    /// `busy` for readers. False if it could not finish.
    fn checkpoint(&self, busy: std::time::Duration) -> rusqlite::Result<bool> {
        self.conn.busy_timeout(busy)?;
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|blocked| blocked == 0);
        self.conn.busy_timeout(BUSY)?;
        done
    }

    /// At shutdown: leaves the WAL empty, then closes the connection.
    fn finish(self) {
        match self.checkpoint(BUSY) {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the WAL could not be truncated at shutdown: still in use"),
            Err(e) => tracing::warn!(error = %e, "the WAL could not be truncated at shutdown"),
        }
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(error = %e, "closing the message database failed");
        }
    }

    /// Deletes up to `limit` messages stamped before `before_ms`, oldest first in each room,
    /// in one transaction. Ids grow with time in a room, so each room's deletes are one
    /// range of its primary key.
    fn purge(&mut self, before_ms: i64, limit: usize) -> rusqlite::Result<usize> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = self.purge_rooms(before_ms, limit);
        let finished = match result {
            Ok(n) => self.conn.execute_batch("COMMIT").map(|()| n),
            Err(e) => Err(e),
        };
        if finished.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        finished
    }

    fn purge_rooms(&mut self, before_ms: i64, limit: usize) -> rusqlite::Result<usize> {
        let rooms = self
            .conn
            .prepare_cached("SELECT id FROM rooms")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut deleted = 0;
        for room in rooms {
            while deleted < limit {
                let oldest = self
                    .conn
                    .prepare_cached(
                        "SELECT id, ts FROM messages WHERE room_id = ?1 ORDER BY id LIMIT 1",
                    )?
                    .query_row([room], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .optional()?;
                let Some((first, _)) = oldest.filter(|(_, ts)| *ts < before_ms) else {
                    break;
                };
                let n = self
                    .conn
                    .prepare_cached(
                        "DELETE FROM messages
                         WHERE room_id = ?1 AND id >= ?2 AND id < ?3 AND ts < ?4",
                    )?
                    .execute(params![
                        room,
                        first,
                        first.saturating_add((limit - deleted) as i64),
                        before_ms
                    ])?;
                if n == 0 {
                    break;
                }
                deleted += n;
            }
            if deleted >= limit {
                break;
            }
        }
        Ok(deleted)
    }

    fn room(&mut self, name: &Arc<str>) -> rusqlite::Result<(i64, MessageId)> {
        if let Some(r) = self.rooms.get(name) {
            return Ok(*r);
        }
        self.conn
            .execute("INSERT OR IGNORE INTO rooms (name) VALUES (?1)", [&**name])?;
        let r = self.conn.query_row(
            "SELECT id, last_id FROM rooms WHERE name = ?1",
            [&**name],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as MessageId)),
        )?;
        self.rooms.insert(name.clone(), r);
        Ok(r)
    }

    /// Writes a batch in one transaction; on error nothing of it is stored.
    fn commit(&mut self, batch: &[Append]) -> rusqlite::Result<Vec<Outcome>> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match self.write(batch) {
            Ok(outcomes) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(outcomes),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write(&mut self, batch: &[Append]) -> rusqlite::Result<Vec<Outcome>> {
        let ts = now_ms();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut touched: HashMap<Arc<str>, (i64, MessageId)> = HashMap::new();
        for a in batch {
            let (room_id, last) = match touched.get(&a.room) {
                Some(r) => *r,
                None => self.room(&a.room)?,
            };
            let earlier = self
                .conn
                .prepare_cached(
                    "SELECT id, ts, name, avatar, text, client_id FROM messages
                     WHERE room_id = ?1 AND session = ?2 AND client_id = ?3",
                )?
                .query_row(params![room_id, &*a.session, a.client_id], row_to_message)
                .optional()?;
            if let Some(m) = earlier {
                outcomes.push(Outcome::Duplicate(m));
                continue;
            }
            let id = last + 1;
            self.conn
                .prepare_cached(
                    "INSERT INTO messages (room_id, id, ts, name, avatar, text, session, client_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    room_id,
                    id as i64,
                    ts,
                    a.author.name,
                    a.author.avatar,
                    a.text,
                    &*a.session,
                    a.client_id
                ])?;
            touched.insert(a.room.clone(), (room_id, id));
            outcomes.push(Outcome::Stored(ChatMessage {
                id,
                ts,
                name: a.author.name.clone(),
                avatar: a.author.avatar.clone(),
                text: a.text.clone(),
                client_id: Some(a.client_id.clone()),
            }));
        }
        for (name, (room_id, last)) in &touched {
            self.conn
                .prepare_cached("UPDATE rooms SET last_id = ?2 WHERE id = ?1")?
                .execute(params![room_id, *last as i64])?;
            let _ = name;
        }
        // Only now, with every statement done, update the cache (the commit may still fail:
        // then `run` clears it).
        self.rooms.extend(touched);
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;

    struct Collect(Mutex<std_mpsc::Sender<(Append, Outcome)>>);

    impl Delivery for Collect {
        fn deliver(&self, append: Append, outcome: Outcome) {
            let _ = self.0.lock().unwrap().send((append, outcome));
        }
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
            text: text.into(),
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
                    (a, Outcome::Stored(m)) => (a.room.to_string(), m.id),
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
        assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(m) if m.id == 4));
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
        assert!(matches!(&outcomes[0], Outcome::Stored(m) if m.id == 1));
        assert!(matches!(&outcomes[1], Outcome::Duplicate(m) if m.id == 1 && m.text == "one"));
        assert!(matches!(&outcomes[2], Outcome::Stored(m) if m.id == 2));
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
        assert_eq!(ids(store.between("a", 7, 9, 10).await.unwrap()), [8, 9]);
        assert_eq!(ids(store.between("a", 2, 10, 3).await.unwrap()), [3, 4, 5]);
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
        assert!(matches!(rx.recv().unwrap().1, Outcome::Stored(m) if m.id == 6));
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
