//! A connection's outgoing queue: bounded, fed by the room's fan-out without waiting, drained by the connection's writer task.
//!
//! Fan-out never blocks on a slow socket: `push` fails at once when the queue is full, and
//! the room then closes that connection (see `protocol::close::SLOW_CONSUMER`). `close`
//! queues the close behind what is already queued (an error event before a refusal arrives
//! first); `close_now` overtakes the queue, so a stuck consumer is cut off without draining.

use axum::extract::ws::Utf8Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// The sending side, held by the room.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Item>,
    close: Arc<CloseSignal>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving side, held by the connection's writer.
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Item>,
    close: Arc<CloseSignal>,
    bytes: Arc<AtomicUsize>,
}

/// What travels through the queue.
#[derive(Debug)]
enum Item {
    Frame(Utf8Bytes),
    Ping,
    Close(u16, String),
}

#[derive(Debug, Default)]
struct CloseSignal {
    notify: Notify,
    reason: Mutex<Option<(u16, String)>>,
    /// Cancelled by `close_now`, for the connection task: a writer stuck on a full socket
    /// never reads the request, so the task gives it a moment and then cuts it off.
    urgent: tokio_util::sync::CancellationToken,
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame(Utf8Bytes),
    /// Send a WebSocket ping.
    Ping,
    Close(u16, String),
    /// Every sender is gone.
    Done,
}

/// The queue was full (or its connection is gone): the frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// A new queue of at most `capacity` frames and `max_bytes` bytes.
pub fn outbox(capacity: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let close = Arc::new(CloseSignal::default());
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            close: close.clone(),
            bytes: bytes.clone(),
            max_bytes,
        },
        OutboxReceiver { rx, close, bytes },
    )
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), Full> {
        let len = frame.as_str().len();
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(Full);
        }
        self.tx.try_send(Item::Frame(frame)).map_err(|_| {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            Full
        })
    }

    /// Queues a frame only if nothing else is waiting: for events that matter only to an idle
    /// connection (heartbeats). Dropping one is never a reason to close the connection.
    pub fn push_volatile(&self, frame: Utf8Bytes) {
        if self.depth() == 0 {
            let _ = self.push(frame);
        }
    }

    /// Queues a WebSocket ping (dropped if the queue is full: the connection is busy anyway).
    pub fn ping(&self) {
        let _ = self.tx.try_send(Item::Ping);
    }

    /// Asks the writer to close after the frames already queued (at once if the queue is full).
    pub fn close(&self, code: u16, reason: &str) {
        if self
            .tx
            .try_send(Item::Close(code, reason.to_string()))
            .is_err()
        {
            self.close_now(code, reason);
        }
    }

    /// Asks the writer to send a close frame and stop, ahead of anything queued. The first request wins.
    pub fn close_now(&self, code: u16, reason: &str) {
        if let Ok(mut slot) = self.close.reason.lock() {
            if slot.is_none() {
                *slot = Some((code, reason.to_string()));
            }
        }
        self.close.notify.notify_one();
        self.close.urgent.cancel();
    }

    /// Resolves once `close_now` was called.
    pub async fn closed_now(&self) {
        self.close.urgent.cancelled().await
    }

    /// Frames waiting to be written.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

impl OutboxReceiver {
    fn take_close(&self) -> Option<(u16, String)> {
        self.close.reason.lock().ok().and_then(|mut r| r.take())
    }

    /// Waits for the next frame or a close request (which comes first).
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some((code, reason)) = self.take_close() {
                return Next::Close(code, reason);
            }
            tokio::select! {
                biased;
                // Woken by `close`: the loop picks the reason up.
                _ = self.close.notify.notified() => continue,
                item = self.rx.recv() => return item.map_or(Next::Done, |i| self.taken(i)),
            }
        }
    }

    /// What is already waiting, if anything (to batch writes).
    pub fn try_next(&mut self) -> Option<Next> {
        self.rx.try_recv().ok().map(|item| self.taken(item))
    }

    fn taken(&self, item: Item) -> Next {
        match item {
            Item::Frame(f) => {
                self.bytes.fetch_sub(f.as_str().len(), Ordering::Relaxed);
                Next::Frame(f)
            }
            Item::Ping => Next::Ping,
            Item::Close(code, reason) => Next::Close(code, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_refuses_without_waiting() {
        let (tx, mut rx) = outbox(2, 1024);
        assert_eq!(tx.push("a".into()), Ok(()));
        assert_eq!(tx.push("b".into()), Ok(()));
        assert_eq!(tx.depth(), 2);
        assert_eq!(tx.push("c".into()), Err(Full));
        assert_eq!(rx.next().await, Next::Frame("a".into()));
        assert_eq!(rx.try_next(), Some(Next::Frame("b".into())));
        assert_eq!(rx.try_next(), None);
    }

    #[tokio::test]
    async fn the_byte_budget_counts_what_waits() {
        let (tx, mut rx) = outbox(100, 10);
        assert_eq!(tx.push("123456".into()), Ok(()));
        assert_eq!(tx.push("12345".into()), Err(Full), "11 bytes > 10");
        assert_eq!(tx.push("1234".into()), Ok(()));
        assert_eq!(rx.next().await, Next::Frame("123456".into()));
        assert_eq!(tx.push("123456".into()), Ok(()), "room again once written");
    }

    #[tokio::test]
    async fn volatile_frames_only_go_to_an_idle_queue() {
        let (tx, mut rx) = outbox(4, 1024);
        tx.push_volatile("beat".into());
        assert_eq!(rx.next().await, Next::Frame("beat".into()));
        tx.push("real".into()).unwrap();
        tx.push_volatile("beat".into());
        assert_eq!(rx.next().await, Next::Frame("real".into()));
        assert_eq!(rx.try_next(), None);
    }

    #[tokio::test]
    async fn close_now_overtakes_queued_frames() {
        let (tx, mut rx) = outbox(4, 1024);
        tx.push("a".into()).unwrap();
        tx.close_now(4008, "slow consumer");
        tx.close_now(1000, "later requests lose");
        assert_eq!(rx.next().await, Next::Close(4008, "slow consumer".into()));
    }

    #[tokio::test]
    async fn close_comes_after_what_is_queued() {
        let (tx, mut rx) = outbox(4, 1024);
        tx.push("error event".into()).unwrap();
        tx.close(4001, "refused");
        assert_eq!(rx.next().await, Next::Frame("error event".into()));
        assert_eq!(rx.next().await, Next::Close(4001, "refused".into()));
    }

    #[tokio::test]
    async fn close_on_a_full_queue_still_closes() {
        let (tx, mut rx) = outbox(1, 1024);
        tx.push("a".into()).unwrap();
        tx.close(1012, "restart");
        assert_eq!(rx.next().await, Next::Close(1012, "restart".into()));
    }

    #[tokio::test]
    async fn dropped_senders_end_the_stream() {
        let (tx, mut rx) = outbox(1, 1024);
        drop(tx);
        assert_eq!(rx.next().await, Next::Done);
    }
}
