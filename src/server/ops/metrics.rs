//! Prometheus metrics: what the connections and the hub count, and the `/metrics` exposition.

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::protocol::ErrorCode;
use crate::server::ops::procstat::{self, Proc};

/// Why a connection ended: the `reason` label of `chatroom_connections_closed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed or went away.
    Client,
    /// Nothing came back within the heartbeat timeout (4000).
    HeartbeatTimeout,
    /// The connection fell behind the room (4008).
    SlowConsumer,
    /// It kept flooding after being told to slow down (4029).
    RateLimit,
    /// The server is draining (1012).
    Shutdown,
    /// A frame broke the WebSocket protocol (1002, 1007, 1009).
    ProtocolError,
    /// It could not join: no session, a taken name, a full room (4001).
    Refused,
    /// A server-side failure: storage, a write error, a panic (1011).
    Error,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::RateLimit => "rate_limit",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Refused => "refused",
            CloseReason::Error => "error",
        }
    }

    /// The reason behind a close code the server queued.
    pub fn from_code(code: u16) -> CloseReason {
        use crate::protocol::close;
        match code {
            close::HEARTBEAT_TIMEOUT => CloseReason::HeartbeatTimeout,
            close::SLOW_CONSUMER => CloseReason::SlowConsumer,
            close::FLOODING => CloseReason::RateLimit,
            close::SERVICE_RESTART => CloseReason::Shutdown,
            close::SESSION_REFUSED => CloseReason::Refused,
            1002 | 1007 | close::TOO_BIG => CloseReason::ProtocolError,
            1000 | 1001 => CloseReason::Client,
            _ => CloseReason::Error,
        }
    }
}

/// Why a WebSocket upgrade was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    BadRequest,
    Origin,
    IpLimit,
    TotalLimit,
    Draining,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::Origin => "origin",
            Refusal::IpLimit => "ip_limit",
            Refusal::TotalLimit => "total_limit",
            Refusal::Draining => "draining",
        }
    }
}

/// Why a client frame was refused: an error code of the protocol, or a broken WebSocket frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rejection {
    Code(ErrorCode),
    /// Larger than `max_frame_bytes` (1009).
    TooBig,
    /// Not UTF-8 where text was due (1007).
    InvalidUtf8,
    /// Any other breach of RFC 6455 (1002).
    Protocol,
    /// An old-protocol frame that is ignored: not JSON, an unknown token, a message before
    /// the open or a second open.
    OldIgnored,
}

/// A `reason` label, encoded from a small enum without allocating per increment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Reason<T>(T);

impl EncodeLabelSet for Reason<CloseReason> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [("reason", self.0.as_str())].encode(encoder)
    }
}

impl EncodeLabelSet for Reason<Refusal> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [("reason", self.0.as_str())].encode(encoder)
    }
}

impl EncodeLabelSet for Reason<Rejection> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let name = match self.0 {
            // The protocol's own spelling of the code (`snake_case`), so that there is one list.
            Rejection::Code(code) => serde_json::to_value(code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{code:?}")),
            Rejection::TooBig => "frame_too_big".into(),
            Rejection::InvalidUtf8 => "invalid_utf8".into(),
            Rejection::Protocol => "protocol_violation".into(),
            Rejection::OldIgnored => "old_protocol_ignored".into(),
        };
        [("reason", name)].encode(encoder)
    }
}

/// Upper bounds of the fan-out latency buckets, in seconds.
const FANOUT_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the server counts. Counters are atomics, cheap enough for every message.
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections_opened: Counter,
    connections_closed: Family<Reason<CloseReason>, Counter>,
    // The same three for old-protocol connections alone (they are in the totals too).
    legacy_open: Gauge,
    legacy_opened: Counter,
    legacy_closed: Family<Reason<CloseReason>, Counter>,
    /// Chat messages accepted from old-protocol connections (also in `messages_received`).
    pub legacy_messages_received: Counter,
    upgrades_refused: Family<Reason<Refusal>, Counter>,
    frames_rejected: Family<Reason<Rejection>, Counter>,
    pub messages_received: Counter,
    pub messages_broadcast: Counter,
    pub messages_delivered: Counter,
    fanout: Histogram,
    /// 1 while the last write failed for want of space (`max_db_mb` or the disk).
    store_full: Gauge,
    // Set at scrape time.
    ready: Gauge,
    rooms: Gauge,
    members: Gauge,
    queue_frames: Gauge,
    queue_frames_max: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    rss: Gauge,
    cpu: Counter<f64, AtomicU64>,
    started: Gauge<f64, AtomicU64>,
}

/// What the hub reports at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    pub rooms: usize,
    pub members: usize,
    pub connections: usize,
    /// Frames waiting in every connection's outgoing queue.
    pub queued: usize,
    /// The longest single queue.
    pub queued_max: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            connections_open: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed: Family::default(),
            legacy_open: Gauge::default(),
            legacy_opened: Counter::default(),
            legacy_closed: Family::default(),
            legacy_messages_received: Counter::default(),
            upgrades_refused: Family::default(),
            frames_rejected: Family::default(),
            messages_received: Counter::default(),
            messages_broadcast: Counter::default(),
            messages_delivered: Counter::default(),
            store_full: Gauge::default(),
            fanout: Histogram::new(FANOUT_BUCKETS),
            ready: Gauge::default(),
            rooms: Gauge::default(),
            members: Gauge::default(),
            queue_frames: Gauge::default(),
            queue_frames_max: Gauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
            rss: Gauge::default(),
            cpu: Counter::default(),
            started: Gauge::default(),
        };
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        m.started.set(since_epoch);
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = self.registry.sub_registry_with_prefix("chatroom");
        let embedded = if cfg!(feature = "embed") {
            "true"
        } else {
            "false"
        };
        r.register(
            "build",
            "Version of the running server",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("embedded", embedded),
            ]),
        );
        let gauges = [
            (
                "ready",
                "1 while accepting connections with a writable store, else 0",
                &self.ready,
            ),
            (
                "connections_open",
                "WebSocket connections open now",
                &self.connections_open,
            ),
            (
                "legacy_connections_open",
                "Old-protocol (Swoole chat) WebSocket connections open now, also in connections_open",
                &self.legacy_open,
            ),
            (
                "store_full",
                "1 while messages are refused because the database is full (max_db_mb or the disk), else 0",
                &self.store_full,
            ),
            ("rooms", "Rooms with members", &self.rooms),
            ("members", "Members online in all rooms", &self.members),
            (
                "outgoing_queue_frames",
                "Frames waiting in all connections' outgoing queues",
                &self.queue_frames,
            ),
            (
                "outgoing_queue_frames_max",
                "Frames waiting in the longest single outgoing queue",
                &self.queue_frames_max,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        let counters = [
            (
                "connections_opened",
                "WebSocket connections opened",
                &self.connections_opened,
            ),
            (
                "legacy_connections_opened",
                "Old-protocol WebSocket connections opened, also in connections_opened",
                &self.legacy_opened,
            ),
            (
                "legacy_messages_received",
                "Chat messages accepted from old-protocol clients, also in messages_received",
                &self.legacy_messages_received,
            ),
            (
                "messages_received",
                "Chat messages accepted from clients for storing",
                &self.messages_received,
            ),
            (
                "messages_broadcast",
                "Chat messages stored and fanned out to their room",
                &self.messages_broadcast,
            ),
            (
                "messages_delivered",
                "Chat message frames queued to members (one per member per message)",
                &self.messages_delivered,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        r.register(
            "connections_closed",
            "WebSocket connections closed, by reason",
            self.connections_closed.clone(),
        );
        r.register(
            "legacy_connections_closed",
            "Old-protocol WebSocket connections closed, by reason, also in connections_closed",
            self.legacy_closed.clone(),
        );
        r.register(
            "upgrades_refused",
            "WebSocket upgrades refused, by reason",
            self.upgrades_refused.clone(),
        );
        r.register(
            "frames_rejected",
            "Client frames refused, by reason",
            self.frames_rejected.clone(),
        );
        r.register(
            "fanout_seconds",
            "From a message's receipt to its last write to a member's socket",
            self.fanout.clone(),
        );
        // The process metrics every Prometheus client library exports, under their usual names.
        let p = self.registry.sub_registry_with_prefix("process");
        p.register("open_fds", "Open file descriptors", self.open_fds.clone());
        p.register(
            "max_fds",
            "Open file descriptor limit",
            self.max_fds.clone(),
        );
        p.register(
            "resident_memory_bytes",
            "Resident memory size in bytes",
            self.rss.clone(),
        );
        p.register(
            "cpu_seconds",
            "User and system CPU time spent in seconds",
            self.cpu.clone(),
        );
        p.register(
            "start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            self.started.clone(),
        );
        self
    }

    /// A connection was upgraded (`old`: speaking the old protocol); the guard counts it
    /// open until dropped.
    pub fn opened(self: &Arc<Self>, old: bool) -> OpenConnection {
        self.connections_opened.inc();
        self.connections_open.inc();
        if old {
            self.legacy_opened.inc();
            self.legacy_open.inc();
        }
        OpenConnection {
            metrics: self.clone(),
            old,
        }
    }

    pub fn closed(&self, reason: CloseReason) {
        self.connections_closed.get_or_create(&Reason(reason)).inc();
    }

    pub fn refused(&self, refusal: Refusal) {
        self.upgrades_refused.get_or_create(&Reason(refusal)).inc();
    }

    pub fn rejected(&self, rejection: Rejection) {
        self.frames_rejected.get_or_create(&Reason(rejection)).inc();
    }

    pub fn connections_open(&self) -> i64 {
        self.connections_open.get()
    }

    /// Whether the last write to the store failed because the database is full.
    pub fn set_store_full(&self, full: bool) {
        self.store_full.set(i64::from(full));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Records one message's fan-out, from its receipt until now.
    pub fn fanned_out(&self, received: Instant) {
        self.fanout.observe(received.elapsed().as_secs_f64());
    }

    /// The exposition, in the OpenMetrics text format (which Prometheus reads), with the
    /// hub's and the process's readings taken now.
    pub fn render(&self, hub: HubStats) -> Result<String, std::fmt::Error> {
        let gauge = |g: &Gauge, v: usize| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.rooms, hub.rooms);
        gauge(&self.members, hub.members);
        gauge(&self.queue_frames, hub.queued);
        gauge(&self.queue_frames_max, hub.queued_max);
        if let Ok(n) = Proc::Me.open_fds() {
            gauge(&self.open_fds, n as usize);
        }
        if let Some(n) = procstat::max_fds() {
            gauge(&self.max_fds, n as usize);
        }
        if let Ok(kib) = Proc::Me.rss_kib() {
            gauge(&self.rss, kib as usize * 1024);
        }
        if let Ok(secs) = Proc::Me.cpu_seconds() {
            let before = self.cpu.get();
            if secs > before {
                self.cpu.inc_by(secs - before);
            }
        }
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Counts one connection open while it lives.
pub struct OpenConnection {
    metrics: Arc<Metrics>,
    old: bool,
}

impl OpenConnection {
    /// Counts why the connection ended.
    pub fn closed(&self, reason: CloseReason) {
        self.metrics.closed(reason);
        if self.old {
            self.metrics
                .legacy_closed
                .get_or_create(&Reason(reason))
                .inc();
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
        if self.old {
            self.metrics.legacy_open.dec();
        }
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
