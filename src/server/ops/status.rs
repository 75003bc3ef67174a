//! The status page's figures: connections, rooms, members and message rates, sampled every second, the last minutes kept.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::protocol::pages::{StatusSample, StatusSnapshot};
use crate::server::log::now_ms;
use crate::server::ops::metrics::{HubStats, Metrics};

/// Samples kept: five minutes.
pub const KEEP: usize = 300;

/// The recent samples.
pub struct StatusLog {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    samples: VecDeque<StatusSample>,
    /// The counters at the previous sample, to turn them into rates.
    last: Option<(Instant, u64, u64)>,
}

impl Default for StatusLog {
    fn default() -> Self {
        StatusLog {
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }
}

impl StatusLog {
    /// Takes this second's sample.
    pub fn sample(&self, hub: HubStats, metrics: &Metrics) {
        let now = Instant::now();
        let broadcast = metrics.messages_broadcast.get();
        let delivered = metrics.messages_delivered.get();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (messages_per_sec, deliveries_per_sec) = match inner.last {
            Some((at, b, d)) => {
                let secs = (now - at).as_secs_f64().max(1e-3);
                (
                    broadcast.saturating_sub(b) as f64 / secs,
                    delivered.saturating_sub(d) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        inner.last = Some((now, broadcast, delivered));
        let at_ms = now_ms();
        if inner.samples.len() == KEEP {
            inner.samples.pop_front();
        }
        inner.samples.push_back(StatusSample {
            at_ms,
            connections: metrics.connections_open().max(0) as u64,
            rooms: hub.rooms as u64,
            members: hub.members as u64,
            messages_per_sec,
            deliveries_per_sec,
        });
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        StatusSnapshot {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            samples: inner.samples.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_counter_differences_and_old_samples_go() {
        let log = StatusLog::default();
        let metrics = Metrics::new();
        let hub = HubStats {
            rooms: 2,
            members: 5,
            ..HubStats::default()
        };
        log.sample(hub, &metrics);
        metrics.messages_broadcast.inc_by(10);
        metrics.messages_delivered.inc_by(50);
        std::thread::sleep(std::time::Duration::from_millis(100));
        log.sample(hub, &metrics);
        let s = log.snapshot().samples;
        assert_eq!(s.len(), 2);
        assert_eq!((s[1].rooms, s[1].members), (2, 5));
        // 10 messages in about 0.1 s.
        assert!(
            s[1].messages_per_sec > 20.0 && s[1].messages_per_sec <= 100.0,
            "{}",
            s[1].messages_per_sec
        );
        assert!((s[1].deliveries_per_sec / s[1].messages_per_sec - 5.0).abs() < 1e-9);
        for _ in 0..KEEP {
            log.sample(hub, &metrics);
        }
        assert_eq!(log.snapshot().samples.len(), KEEP);
    }
}
