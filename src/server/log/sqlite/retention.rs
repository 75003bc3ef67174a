//! Retention on one node: deleting old messages in the background, a batch at a time between the writer's commits.

use crate::server::log::sqlite::writer::{Appender, PURGE_BATCH, PURGE_INTERVAL};
use crate::server::log::types::{now_ms, StoreError};

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
