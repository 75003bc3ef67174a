//! A connection's outgoing queue: bounded, fed by the room's fan-out without waiting, drained by the connection's task.
//!
//! Fan-out never blocks on a slow socket: `push` fails at once when the queue is full, and
//! the room then closes that connection (see `protocol::close::SLOW_CONSUMER`). `close`
//! queues the close behind what is already queued (an error event before a refusal arrives
//! first); `close_now` overtakes the queue, so a stuck consumer is cut off without draining.
//!
//! An empty queue holds no buffer (it is given back once drained), so that ten thousand idle
//! connections cost a few hundred bytes each here, not a preallocated channel each. The
//! receiver is polled (`poll_next`, `poll_urgent`) rather than awaited, so that the
//! connection's task holds no waiting future for it either.

use crate::server::chat::text::Utf8Bytes;
use futures::task::AtomicWaker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// The sending side, held by the room (and the connection, for its own replies).
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, held by the connection's task.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// The receiver's task, woken when the queue stops being empty, the last sender goes,
    /// or `close_now` is asked for.
    waker: AtomicWaker,
    /// Set by `close_now`.
    urgent: AtomicBool,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    senders: usize,
    receiver_gone: bool,
    /// The `close_now` request, taken by the receiver ahead of everything queued.
    close_now: Option<(u16, String)>,
    /// Droppable frames queued.
    droppable: usize,
}

impl Queue {
    /// Drops every droppable frame, to make room.
    fn drop_droppable(&mut self) {
        let mut freed = 0;
        self.items.retain(|item| match item {
            Item::Droppable(f) => {
                freed += f.len();
                false
            }
            _ => true,
        });
        self.bytes -= freed;
        self.droppable = 0;
    }
}

/// What travels through the queue.
#[derive(Debug)]
enum Item {
    Frame(Utf8Bytes),
    /// A frame that may be dropped to make room (typing).
    Droppable(Utf8Bytes),
    Ping,
    Close(u16, String),
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
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            senders: 1,
            ..Queue::default()
        }),
        waker: AtomicWaker::new(),
        urgent: AtomicBool::new(false),
        max_frames: capacity.max(1),
        max_bytes,
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver { shared },
    )
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue is plain data; a panic elsewhere while holding it leaves it usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.queue().senders += 1;
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let last = {
            let mut q = self.shared.queue();
            q.senders -= 1;
            q.senders == 0
        };
        if last {
            self.shared.waker.wake();
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut q = self.shared.queue();
        q.receiver_gone = true;
        q.items = VecDeque::new();
    }
}

impl Outbox {
    /// Queues `item` if `fits` says there is room; wakes the receiver if it may be waiting.
    fn enqueue(&self, item: Item, fits: impl FnOnce(&mut Queue) -> bool) -> Result<(), Full> {
        let was_empty = {
            let mut q = self.shared.queue();
            if q.receiver_gone || !fits(&mut q) {
                return Err(Full);
            }
            match &item {
                Item::Frame(f) => q.bytes += f.len(),
                Item::Droppable(f) => {
                    q.bytes += f.len();
                    q.droppable += 1;
                }
                Item::Ping | Item::Close(..) => {}
            }
            let was_empty = q.items.is_empty();
            q.items.push_back(item);
            was_empty
        };
        // A receiver only waits after finding the queue empty: later pushes need not wake it.
        if was_empty {
            self.shared.waker.wake();
        }
        Ok(())
    }

    /// Queues a frame without waiting. A full queue first drops its droppable frames.
    pub fn push(&self, frame: Utf8Bytes) -> Result<(), Full> {
        let (max_frames, max_bytes) = (self.shared.max_frames, self.shared.max_bytes);
        let len = frame.len();
        self.enqueue(Item::Frame(frame), |q| {
            let fits = |q: &Queue| q.items.len() < max_frames && q.bytes + len <= max_bytes;
            if fits(q) {
                return true;
            }
            // Only a full queue looks again, after dropping what may be dropped.
            q.droppable > 0 && {
                q.drop_droppable();
                fits(q)
            }
        })
    }

    /// Queues a frame that matters only while fresh (typing) if the queue is at most a
    /// quarter full; a full queue drops it before anything else (see [`Outbox::push`]).
    pub fn push_droppable(&self, frame: Utf8Bytes) {
        let (max_frames, max_bytes) = (self.shared.max_frames, self.shared.max_bytes);
        let len = frame.len();
        let _ = self.enqueue(Item::Droppable(frame), |q| {
            q.items.len() < max_frames / 4 && q.bytes + len <= max_bytes / 4
        });
    }

    /// Queues a frame only if nothing else is waiting: for events that matter only to an idle
    /// connection (heartbeats). Dropping one is never a reason to close the connection.
    pub fn push_volatile(&self, frame: Utf8Bytes) {
        let max_bytes = self.shared.max_bytes;
        let len = frame.len();
        let _ = self.enqueue(Item::Frame(frame), |q| {
            q.items.is_empty() && len <= max_bytes
        });
    }

    /// Queues a WebSocket ping (dropped if the queue is full: the connection is busy anyway).
    pub fn ping(&self) {
        let max_frames = self.shared.max_frames;
        let _ = self.enqueue(Item::Ping, |q| q.items.len() < max_frames);
    }

    /// Asks the writer to close after the frames already queued (at once if the queue is full).
    pub fn close(&self, code: u16, reason: &str) {
        let max_frames = self.shared.max_frames;
        let queued = self.enqueue(Item::Close(code, reason.to_string()), |q| {
            q.items.len() < max_frames
        });
        if queued.is_err() {
            self.close_now(code, reason);
        }
    }

    /// Asks the writer to send a close frame and stop, ahead of anything queued. The first request wins.
    pub fn close_now(&self, code: u16, reason: &str) {
        {
            let mut q = self.shared.queue();
            if q.close_now.is_none() {
                q.close_now = Some((code, reason.to_string()));
            }
        }
        self.shared.urgent.store(true, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Frames waiting to be written.
    pub fn depth(&self) -> usize {
        self.shared.queue().items.len()
    }
}

impl OutboxReceiver {
    /// Waits for the next frame or a close request (which comes first).
    pub async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next frame or close request, or `Pending` with `cx`'s task woken when one comes.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(next) = self.try_next_or_done() {
            return Poll::Ready(next);
        }
        // Registered before looking again, so that a push in between is not missed.
        self.shared.waker.register(cx.waker());
        match self.try_next_or_done() {
            Some(next) => Poll::Ready(next),
            None => Poll::Pending,
        }
    }

    /// Ready once `close_now` was asked for, with its code unless the request was already
    /// taken; until then `cx`'s task is woken when it is.
    pub fn poll_urgent(&mut self, cx: &mut Context<'_>) -> Poll<Option<u16>> {
        if !self.urgent() {
            self.shared.waker.register(cx.waker());
            if !self.urgent() {
                return Poll::Pending;
            }
        }
        // `close_now` stores its request before it raises the flag.
        Poll::Ready(
            self.shared
                .queue()
                .close_now
                .as_ref()
                .map(|(code, _)| *code),
        )
    }

    /// What is already waiting, if anything (to batch writes).
    pub fn try_next(&mut self) -> Option<Next> {
        self.try_next_or_done().filter(|n| *n != Next::Done)
    }

    fn try_next_or_done(&mut self) -> Option<Next> {
        let mut q = self.shared.queue();
        if let Some((code, reason)) = q.close_now.take() {
            return Some(Next::Close(code, reason));
        }
        match q.items.pop_front() {
            Some(item) => {
                if q.items.is_empty() && q.items.capacity() > 0 {
                    // Give the buffer back: an idle connection should hold none.
                    q.items = VecDeque::new();
                }
                Some(match item {
                    Item::Frame(f) => {
                        q.bytes -= f.len();
                        Next::Frame(f)
                    }
                    Item::Droppable(f) => {
                        q.bytes -= f.len();
                        q.droppable -= 1;
                        Next::Frame(f)
                    }
                    Item::Ping => Next::Ping,
                    Item::Close(code, reason) => Next::Close(code, reason),
                })
            }
            None if q.senders == 0 => Some(Next::Done),
            None => None,
        }
    }

    /// Was the connection cut off ahead of its queue (`close_now`)?
    pub fn urgent(&self) -> bool {
        self.shared.urgent.load(Ordering::Acquire)
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
    async fn droppable_frames_wait_for_room_and_are_dropped_first() {
        let (tx, mut rx) = outbox(8, 1024);
        tx.push_droppable("t1".into());
        tx.push("m1".into()).unwrap();
        tx.push_droppable("t2".into());
        assert_eq!(tx.depth(), 2, "t2 is dropped: the queue is a quarter full");
        for m in ["m2", "m3", "m4", "m5", "m6", "m7"] {
            tx.push(m.into()).unwrap();
        }
        // Full: the next real frame drops the typing frame instead of failing.
        tx.push("m8".into()).unwrap();
        assert_eq!(tx.push("m9".into()), Err(Full), "nothing droppable is left");
        let got: Vec<Next> = std::iter::from_fn(|| rx.try_next()).collect();
        let want: Vec<Next> = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]
            .into_iter()
            .map(|f| Next::Frame(f.into()))
            .collect();
        assert_eq!(got, want);
        tx.push_droppable("t4".into());
        assert_eq!(
            rx.next().await,
            Next::Frame("t4".into()),
            "an idle queue takes them"
        );
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
    async fn a_waiting_receiver_wakes_for_a_frame_and_for_close_now() {
        let (tx, mut rx) = outbox(4, 1024);
        let waiting = tokio::spawn(async move {
            let first = rx.next().await;
            let urgent = std::future::poll_fn(|cx| rx.poll_urgent(cx)).await;
            (first, urgent)
        });
        tokio::task::yield_now().await;
        tx.push("late".into()).unwrap();
        tokio::task::yield_now().await;
        tx.close_now(4008, "slow consumer");
        let (first, urgent) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the receiver was woken")
            .unwrap();
        assert_eq!(first, Next::Frame("late".into()));
        assert_eq!(urgent, Some(4008));
    }

    #[tokio::test]
    async fn dropped_senders_end_the_stream() {
        let (tx, mut rx) = outbox(1, 1024);
        drop(tx);
        assert_eq!(rx.next().await, Next::Done);
    }
}
