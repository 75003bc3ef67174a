//! Typing members: each sends `typing` every 3 s, spread in time, beside the run's messages.
//!
//! A browser sends `typing` at most once every 3 s while its composer has text; here a share of
//! the members (`--typing-fraction`) does so from the first publish phase (or the idle hold) to
//! the end of the run. The server passes each frame on to the room's other members, and their
//! readers count the receipts (`traffic.rs`).

use futures::stream::SplitSink;
use futures::SinkExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::client::{short_ws_error, Ws};
use crate::traffic::Shared;

/// Time between two `typing` frames of one member: the most a browser sends (the server passes
/// on at most one every 2 s, so none of these is held back).
pub const TYPING_EVERY: Duration = Duration::from_secs(3);

/// A member that types: the sending half of its socket (its reader keeps the other).
pub struct Typist {
    pub sink: SplitSink<Ws, Message>,
    /// The other members of its room when the run began: the receipts each frame should get.
    pub others: u32,
}

/// The typing members at work, until [`Typing::stop`].
pub struct Typing {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Typing {
    /// Starts every typist: typist k of n sends its first frame k/n of [`TYPING_EVERY`] from
    /// now, so that the frames are spread evenly in time, then one every [`TYPING_EVERY`].
    pub fn start(shared: &Arc<Shared>, typists: Vec<Typist>) -> Typing {
        let stop = CancellationToken::new();
        let n = typists.len().max(1) as f64;
        let now = tokio::time::Instant::now();
        let tasks = typists
            .into_iter()
            .enumerate()
            .map(|(k, typist)| {
                let first = now + TYPING_EVERY.mul_f64(k as f64 / n);
                tokio::spawn(typist.run(shared.clone(), first, stop.clone()))
            })
            .collect();
        Typing { stop, tasks }
    }

    /// Members typing.
    pub fn members(&self) -> usize {
        self.tasks.len()
    }

    /// Stops the typing, then waits until every frame sent has reached the others, or at most
    /// `drain` (the server may drop a typing frame for a member that falls behind).
    pub async fn stop(self, shared: &Shared, drain: Duration) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let until = Instant::now() + drain;
        let behind = || {
            shared.typing_received.load(Ordering::Relaxed)
                < shared.typing_expected.load(Ordering::Relaxed)
        };
        while behind() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Typist {
    /// Sends `typing` at `first` and then every [`TYPING_EVERY`] until `stop`; a late tick
    /// moves the later ones, so that two frames are never closer than that.
    async fn run(
        mut self,
        shared: Arc<Shared>,
        first: tokio::time::Instant,
        stop: CancellationToken,
    ) {
        let Some(frame) = shared.peer.encode_typing() else {
            return;
        };
        let mut ticks = tokio::time::interval_at(first, TYPING_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.sink.send(Message::text(frame.clone())).await {
                let why = format!("typing not sent: {}", short_ws_error(&e));
                return Shared::count(&shared.errors, why);
            }
            shared.typing_sent.fetch_add(1, Ordering::Relaxed);
            shared
                .typing_expected
                .fetch_add(u64::from(self.others), Ordering::Relaxed);
        }
    }
}
