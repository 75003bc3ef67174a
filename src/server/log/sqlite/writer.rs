//! The writer thread: group commits, a bounded WAL, retention between commits.
//!
//! The writer takes whatever is queued (up to [`MAX_BATCH`]), assigns each room's next ids,
//! writes them in one transaction and only then hands each outcome to the [`Delivery`].
//!
//! The WAL stays bounded: a checkpointer thread copies it into the database beside the
//! writer, and the writer itself truncates it (`wal_checkpoint(TRUNCATE)`) between commits
//! once it passes the limit, which no stream of commits can starve; past twice the limit it
//! commits nothing more until the truncation succeeds (for up to 5 s). [`Appender::close`]
//! truncates it at shutdown. With a retention period, old messages are deleted in small
//! batches queued between the commits ([`spawn_retention`]).

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::MessageId;
use crate::server::log::sqlite::schema::{configure, entry_at, room_id, wal_path};
use crate::server::log::sqlite::{apply, moderation};
use crate::server::log::types::{now_ms, Append, Delivery, Outcome, Refusal, StoreError, QUEUE};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 4096;
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
pub(super) const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A failed write as the sender hears of it: a full disk or a busy database by name.
fn write_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy
        }
        _ => StoreError::Sql(e),
    }
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
    /// Set or delete a moderation field (see [`Appender::set_moderation`]).
    SetModeration {
        room: Arc<str>,
        field: String,
        value: Option<String>,
        only_if_absent: bool,
        reply: oneshot::Sender<Result<bool, StoreError>>,
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

    /// Sets (`Some`) or deletes a moderation field of `room` between the writer's commits;
    /// with `only_if_absent`, sets only a missing one. Returns whether it wrote.
    pub async fn set_moderation(
        &self,
        room: &str,
        field: &str,
        value: Option<&str>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::SetModeration {
                room: room.into(),
                field: field.to_string(),
                value: value.map(str::to_string),
                only_if_absent,
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

    /// True once the writer has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True when nothing is waiting for the writer.
    pub fn is_idle(&self) -> bool {
        self.tx.capacity() == self.tx.max_capacity()
    }
}

/// Starts the writer thread on the database at `path`, and the checkpointer beside it; the
/// writer runs until [`Appender::close`], or until every [`Appender`] is dropped and the
/// queue is empty.
pub(super) fn start(
    path: &Path,
    max_pages: Option<u64>,
    wal_limit: u64,
    delivery: Arc<dyn Delivery>,
) -> Result<(Appender, std::thread::JoinHandle<()>), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn, max_pages)?;
    // Checkpoints run on their own thread (below), never inside a commit: an automatic
    // checkpoint in the writer would stall every message waiting behind it. Only past
    // the WAL limit does the writer truncate it itself (see `Writer::limit_wal`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    let checkpointer = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    checkpointer.busy_timeout(BUSY)?;
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (tx, rx) = mpsc::channel(QUEUE);
    let checkpoint_running = running.clone();
    let (wal, wal_limit) = (wal_path(path), wal_limit);
    let checkpoint = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || checkpoint_loop(checkpointer, wal, wal_limit, checkpoint_running))
        .map_err(|e| StoreError::Task(e.to_string()))?;
    let writer = Writer::new(conn, wal_path(path), wal_limit);
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
                    let result = self.purge(before_ms, limit).map_err(write_error);
                    let _ = reply.send(result);
                }
                Job::SetModeration {
                    room,
                    field,
                    value,
                    only_if_absent,
                    reply,
                } => {
                    let result = self
                        .set_moderation(&room, &field, value.as_deref(), only_if_absent)
                        .map_err(write_error);
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
                    hand_over(delivery, append, outcome);
                }
            }
            Err(e) => {
                // Nothing of the batch is stored; forget cached ids, which may have moved.
                self.rooms.clear();
                let error = write_error(e);
                tracing::error!(%error, messages = batch.len(), "commit failed");
                for append in batch.drain(..) {
                    let outcome = Outcome::Failed(match &error {
                        StoreError::Full => StoreError::Full,
                        StoreError::Busy => StoreError::Busy,
                        other => StoreError::Task(other.to_string()),
                    });
                    hand_over(delivery, append, outcome);
                }
            }
        }
    }

    /// Truncates the WAL once it is past the limit. Run by the writer between commits, so
    /// that no commit can append to the WAL meanwhile and starve the checkpoint.
    fn limit_wal(&mut self) {
        if self.wal_limit == 0 {
            return;
        }
        let size = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        // Past twice the limit the writer commits nothing more until the WAL is truncated:
        // the checkpointer's fsync on a busy disk can hold the checkpoint lock for seconds,
        // and a CI run saw the WAL reach 7x its limit while commits went on meanwhile.
        let hard = size > self.wal_limit.saturating_mul(2);
        if size <= self.wal_limit || (!hard && std::time::Instant::now() < self.next_checkpoint) {
            return;
        }
        let deadline = std::time::Instant::now() + BUSY;
        let mut result = self.checkpoint(CHECKPOINT_BUSY);
        while hard && matches!(result, Ok(false)) && std::time::Instant::now() < deadline {
            std::thread::sleep(CHECKPOINT_RETRY);
            result = self.checkpoint(CHECKPOINT_BUSY);
        }
        match result {
            Ok(true) => {
                tracing::debug!(wal_bytes = size, "WAL truncated");
                self.checkpoint_failing = false;
            }
            Ok(false) => {
                // Another checkpoint holds the lock, or a reader is still in the WAL.
                if hard {
                    tracing::warn!(
                        wal_bytes = size,
                        "the WAL is past twice its limit and still in use"
                    );
                }
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
                self.conn
                    .prepare_cached(
                        "DELETE FROM reactions WHERE room_id = ?1 AND message_id >= ?2
                         AND message_id < ?3 AND NOT EXISTS (SELECT 1 FROM messages m
                         WHERE m.room_id = ?1 AND m.id = reactions.message_id)",
                    )?
                    .execute(params![
                        room,
                        first,
                        first.saturating_add((limit - deleted) as i64)
                    ])?;
                deleted += n;
            }
            if deleted >= limit {
                break;
            }
        }
        Ok(deleted)
    }

    /// Sets or deletes one moderation field in its own transaction (a deletion in a room
    /// without a log writes nothing).
    fn set_moderation(
        &mut self,
        room: &Arc<str>,
        field: &str,
        value: Option<&str>,
        only_if_absent: bool,
    ) -> rusqlite::Result<bool> {
        if value.is_none() && room_id(&self.conn, room)?.is_none() {
            return Ok(false);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let written = self.room(room).and_then(|(room_id, _)| {
            moderation::set_field(&self.conn, room_id, field, value, only_if_absent)
        });
        let finished = match written {
            Ok(w) => self.conn.execute_batch("COMMIT").map(|()| w),
            Err(e) => Err(e),
        };
        if finished.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            // A room made in the rolled back transaction is not there.
            self.rooms.remove(room);
        }
        finished
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
            let earlier: Option<i64> = self
                .conn
                .prepare_cached(
                    "SELECT id FROM messages WHERE room_id = ?1 AND session = ?2 AND client_id = ?3",
                )?
                .query_row(params![room_id, &*a.session, a.client_id], |r| r.get(0))
                .optional()?;
            if let Some(earlier) = earlier {
                match entry_at(&self.conn, room_id, earlier as MessageId)? {
                    Some(entry) => outcomes.push(Outcome::Duplicate(entry)),
                    None => outcomes.push(Outcome::Refused(Refusal::NoSuchMessage)),
                }
                continue;
            }
            let id = last + 1;
            match apply::write(&self.conn, room_id, id, ts, a)? {
                Ok(entry) => {
                    touched.insert(a.room.clone(), (room_id, id));
                    outcomes.push(Outcome::Stored(entry));
                }
                Err(refusal) => {
                    touched.insert(a.room.clone(), (room_id, last));
                    outcomes.push(Outcome::Refused(refusal));
                }
            }
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

/// Hands `outcome` to `delivery`. A panic there (a bug in a room's fan-out) is logged and
/// goes no further: it must not end the writer, which every room's messages need.
fn hand_over(delivery: &dyn Delivery, append: Append, outcome: Outcome) {
    let room = append.room.clone();
    let handed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        delivery.deliver(append, outcome)
    }));
    if handed.is_err() {
        tracing::error!(%room, "delivering a stored entry panicked; the writer goes on");
    }
}
