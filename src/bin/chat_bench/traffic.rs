//! The traffic of a run: publishers that send timestamped messages, readers that time deliveries.
//!
//! Each publish phase counts what was sent, confirmed, delivered and lost.

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{short_ws_error, Ws};
use crate::peer::{Incoming, Peer};

/// Latencies are kept in microseconds, from 1 µs to one hour, at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Fixed, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// One published message, as far as the tool knows.
#[derive(Clone, Copy, Default)]
pub struct Msg {
    /// Members of its room when the phase began: the deliveries it should get.
    pub room_size: u32,
    pub delivered: u32,
    pub acked: bool,
    /// The sender's node (index into `--target`).
    pub node: u16,
}

/// Everything counted in one publish phase (one rate of a sweep).
pub struct PhaseStats {
    pub rate: f64,
    pub start: Instant,
    /// Set when the phase's drain ended: deliveries after it are late.
    pub drained: bool,
    pub msgs: Vec<Msg>,
    /// Publish-to-receipt latency at every receiver, µs.
    pub latency: Histogram<u64>,
    /// Publish-to-confirmation latency at the sender, µs.
    pub ack_latency: Histogram<u64>,
    /// Latency of the deliveries whose receiver is on another node than the sender, µs.
    pub cross_latency: Histogram<u64>,
    /// Deliveries whose receiver is on another node than the sender.
    pub cross_delivered: u64,
    /// Deliveries by second since `start`.
    pub per_second: Vec<u64>,
    pub sent: u64,
    pub acked: u64,
    /// Deliveries that every sent message should get in all.
    pub expected_sent: u64,
    /// Every delivery of this phase's messages, acked or not, in time or late.
    pub delivered: u64,
    pub late: u64,
    pub last_delivery: Option<Instant>,
    /// Error frames answering this phase's messages, by code.
    pub refused: BTreeMap<String, u64>,
    pub send_failures: u64,
}

impl PhaseStats {
    pub fn new(rate: f64, start: Instant) -> Self {
        PhaseStats {
            rate,
            start,
            drained: false,
            msgs: Vec::new(),
            latency: histogram(),
            ack_latency: histogram(),
            cross_latency: histogram(),
            cross_delivered: 0,
            per_second: Vec::new(),
            sent: 0,
            acked: 0,
            expected_sent: 0,
            delivered: 0,
            late: 0,
            last_delivery: None,
            refused: BTreeMap::new(),
            send_failures: 0,
        }
    }
}

/// State shared by every task of the run.
pub struct Shared {
    /// Marks this run's client ids, so that nothing else is counted.
    pub run: u32,
    /// The server's protocol: how frames are written and read.
    pub peer: Peer,
    /// Time zero of the embedded send times.
    pub epoch: Instant,
    pub phases: Mutex<Vec<PhaseStats>>,
    /// Set when the run is over: connections ending now are not counted as disconnects.
    pub stopping: AtomicBool,
    /// Connections that ended during the run, by why.
    pub disconnects: Mutex<BTreeMap<String, u64>>,
    /// Error frames not answering one of our messages, by code.
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub presence_frames: AtomicU64,
    pub heartbeats: AtomicU64,
    /// `typing` frames the typing members sent (`--typing-fraction`).
    pub typing_sent: AtomicU64,
    /// Receipts those frames should get: each goes to the other members of its room.
    pub typing_expected: AtomicU64,
    /// `typing` frames received about another member.
    pub typing_received: AtomicU64,
    /// Message frames that were not this run's.
    pub foreign: AtomicU64,
    pub alive: AtomicUsize,
}

impl Shared {
    pub fn new(run: u32, peer: Peer) -> Self {
        Shared {
            run,
            peer,
            epoch: Instant::now(),
            phases: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            disconnects: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            presence_frames: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            typing_sent: AtomicU64::new(0),
            typing_expected: AtomicU64::new(0),
            typing_received: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            alive: AtomicUsize::new(0),
        }
    }

    pub fn phases(&self) -> MutexGuard<'_, Vec<PhaseStats>> {
        self.phases.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn count(map: &Mutex<BTreeMap<String, u64>>, key: String) {
        *map.lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    fn client_id(&self, phase: usize, seq: usize) -> String {
        format!("{:x}-{phase}-{seq}", self.run)
    }

    /// The phase and sequence number of one of this run's client ids.
    fn parse_client_id(&self, id: &str) -> Option<(usize, usize)> {
        let mut parts = id.splitn(3, '-');
        let run = u32::from_str_radix(parts.next()?, 16).ok()?;
        if run != self.run {
            return None;
        }
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }
}

/// The send time embedded at the front of a message's text: `t=<nanos> `.
fn sent_ns(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("t=")?;
    let end = rest.find(' ').unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A message text of `bytes` characters (at least the time stamp) carrying `t=<now_ns> `.
fn message_text(now_ns: u64, bytes: usize) -> String {
    let mut text = format!("t={now_ns} ");
    while text.len() < bytes {
        text.push('x');
    }
    text
}

/// Who a reader reads for.
pub struct Reader {
    pub shared: Arc<Shared>,
    /// This connection's member name: its own messages are its confirmations.
    pub name: String,
    /// A publisher's window (`--rate 0`): each confirmation or refusal returns a place.
    pub window: Option<Arc<Semaphore>>,
    /// This connection's node (index into `--target`).
    pub node: u16,
}

impl Reader {
    /// Reads until the connection ends; the sink of a non-publisher is held here so that the
    /// socket stays open.
    pub async fn run(self, mut stream: SplitStream<Ws>, _sink: Option<SplitSink<Ws, Message>>) {
        let why = loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => format!("closed by server: {}", u16::from(f.code)),
                        None => "closed by server: no code".to_string(),
                    }
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => break format!("error: {}", short_ws_error(&e)),
                None => break "ended without close".to_string(),
            }
        };
        self.shared.alive.fetch_sub(1, Ordering::Relaxed);
        if !self.shared.stopping.load(Ordering::Relaxed) {
            Shared::count(&self.shared.disconnects, why);
        }
    }

    fn on_text(&self, text: &str) {
        match self.shared.peer.decode(text) {
            Incoming::Message {
                client_id,
                name,
                text,
            } => self.on_message(client_id.as_deref(), &name, &text),
            Incoming::Error { code, client_id } => self.on_error(code, client_id),
            Incoming::Heartbeat => {
                self.shared.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
            // The server never sends a member's typing to its own connections.
            Incoming::Typing { name } if name == self.name => {
                Shared::count(&self.shared.errors, "own typing sent back".into())
            }
            Incoming::Typing { .. } => {
                self.shared.typing_received.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Presence => {
                self.shared.presence_frames.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::SecondWelcome => Shared::count(&self.shared.errors, "second welcome".into()),
            Incoming::Undecodable => Shared::count(&self.shared.errors, "undecodable frame".into()),
        }
    }

    /// A chat message from `name`, sent under `client_id`: timed and counted if it is one of
    /// this run's; its sender's own copy is the confirmation.
    fn on_message(&self, client_id: Option<&str>, name: &str, text: &str) {
        let shared = &self.shared;
        let ids = client_id.and_then(|c| shared.parse_client_id(c));
        let (Some((phase, seq)), Some(sent)) = (ids, sent_ns(text)) else {
            shared.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = Instant::now();
        let latency_us = (shared.now_ns().saturating_sub(sent) / 1000).max(1);
        let own = name == self.name;
        let mut phases = shared.phases();
        let Some(p) = phases.get_mut(phase) else {
            shared.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(msg) = p.msgs.get_mut(seq) else {
            shared.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        msg.delivered += 1;
        p.delivered += 1;
        if p.drained {
            p.late += 1;
        }
        p.latency.saturating_record(latency_us);
        if msg.node != self.node {
            p.cross_delivered += 1;
            p.cross_latency.saturating_record(latency_us);
        }
        let second = now.saturating_duration_since(p.start).as_secs() as usize;
        if p.per_second.len() <= second {
            p.per_second.resize(second + 1, 0);
        }
        p.per_second[second] += 1;
        p.last_delivery = Some(now);
        if own && !msg.acked {
            msg.acked = true;
            p.acked += 1;
            p.ack_latency.saturating_record(latency_us);
            drop(phases);
            if let Some(w) = &self.window {
                w.add_permits(1);
            }
        }
    }

    fn on_error(&self, code: String, client_id: Option<String>) {
        let shared = &self.shared;
        let Some((phase, _)) = client_id.as_deref().and_then(|c| shared.parse_client_id(c)) else {
            return Shared::count(&shared.errors, code);
        };
        if let Some(p) = shared.phases().get_mut(phase) {
            *p.refused.entry(code).or_default() += 1;
        }
        if let Some(w) = &self.window {
            w.add_permits(1);
        }
    }
}

/// How one publisher sends during a phase.
pub struct Publisher {
    pub shared: Arc<Shared>,
    pub sink: SplitSink<Ws, Message>,
    pub window: Arc<Semaphore>,
    pub room_size: u32,
    /// The publisher's node (index into `--target`).
    pub node: u16,
}

/// Pacing of one publisher in one phase.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Messages per second, the first after `offset`.
    Rate { per_sec: f64, offset: Duration },
    /// As fast as confirmations allow, with at most this many unconfirmed.
    Window(usize),
}

impl Publisher {
    /// Sends until `until`; returns itself for the next phase.
    pub async fn run(
        mut self,
        phase: usize,
        pace: Pace,
        start: Instant,
        until: Instant,
        message_bytes: usize,
    ) -> Publisher {
        match pace {
            Pace::Rate { per_sec, offset } => {
                let period = Duration::from_secs_f64(1.0 / per_sec.max(1e-6));
                let first = tokio::time::Instant::from_std(start + offset);
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    let tick = ticks.tick().await;
                    if tick.into_std() >= until || !self.send_one(phase, message_bytes).await {
                        break;
                    }
                }
            }
            Pace::Window(size) => {
                // Places left over from an earlier phase are not this phase's.
                self.window.forget_permits(usize::MAX >> 4);
                self.window.add_permits(size);
                let deadline = tokio::time::Instant::from_std(until);
                loop {
                    let permit =
                        tokio::time::timeout_at(deadline, self.window.clone().acquire_owned())
                            .await;
                    match permit {
                        Ok(Ok(p)) => p.forget(),
                        _ => break,
                    }
                    if Instant::now() >= until || !self.send_one(phase, message_bytes).await {
                        break;
                    }
                }
            }
        }
        self
    }

    /// Registers and sends one message; false if the socket failed.
    async fn send_one(&mut self, phase: usize, message_bytes: usize) -> bool {
        let seq = {
            let mut phases = self.shared.phases();
            let Some(p) = phases.get_mut(phase) else {
                return false;
            };
            p.msgs.push(Msg {
                room_size: self.room_size,
                node: self.node,
                ..Msg::default()
            });
            p.sent += 1;
            p.expected_sent += u64::from(self.room_size);
            p.msgs.len() - 1
        };
        let frame = self.shared.peer.encode_send(
            self.shared.client_id(phase, seq),
            message_text(self.shared.now_ns(), message_bytes),
        );
        if self.sink.send(Message::text(frame)).await.is_err() {
            if let Some(p) = self.shared.phases().get_mut(phase) {
                p.send_failures += 1;
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_carry_their_send_time_and_ids_their_phase() {
        let text = message_text(123_456_789, 100);
        assert_eq!(text.len(), 100);
        assert_eq!(sent_ns(&text), Some(123_456_789));
        assert_eq!(sent_ns(&message_text(5, 1)), Some(5));
        let shared = Shared::new(0xbeef, Peer::Ours);
        assert_eq!(
            shared.parse_client_id(&shared.client_id(2, 17)),
            Some((2, 17))
        );
        assert_eq!(shared.parse_client_id("dead-2-17"), None);
        assert_eq!(shared.parse_client_id("k3j-9"), None);
    }
}
