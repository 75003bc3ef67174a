//! Retention on Redis: trims every room's stream of the entries older than the period, and their bodies.

use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::time::Duration;

use crate::server::log::redis::stream::{body_key, floor_key, redis_error, rx_prefix, PRELUDE};
use crate::server::log::types::{now_ms, StoreError};

/// Stream entries read per step while looking for the end of a stream's expired part.
const TRIM_SCAN: usize = 500;
/// Drops the bodies and reactions of what the stream no longer holds: KEYS log, body, floor;
/// ARGV reactions prefix.
const CLEAN: &str = "clean(KEYS[1], KEYS[2], ARGV[1], KEYS[3])";

/// The clean script, hashed once.
fn clean_script() -> &'static redis::Script {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(&format!("{PRELUDE}{CLEAN}")));
    &SCRIPT
}

/// When an entry (message or change) was stored.
#[derive(serde::Deserialize)]
struct Stamp {
    ts: i64,
}

/// How often the retention task trims the streams.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Starts a task that trims every room's stream of messages older than `days`, now and every
/// minute (each node does it; trimming twice is harmless).
pub(super) fn spawn_retention(conn: ConnectionManager, days: u64) -> tokio::task::JoinHandle<()> {
    let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        loop {
            match trim_older(&conn, now_ms().saturating_sub(keep_ms)).await {
                Ok(0) => {}
                Ok(trimmed) => tracing::info!(trimmed, days, "retention: trimmed old messages"),
                Err(e) => tracing::warn!(error = %e, "retention: trimming the streams failed"),
            }
            tokio::time::sleep(TRIM_INTERVAL).await;
        }
    })
}

/// The stream id right after `id` (`5-0` → `5-1`).
fn next_stream_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    Some(format!("{ms}-{}", seq.parse::<u64>().ok()?.checked_add(1)?))
}

/// Trims every room's stream of the messages stamped before `before_ms` (stream ids are
/// message ids, not times, so the stamps are read); returns how many went.
async fn trim_older(conn: &ConnectionManager, before_ms: i64) -> Result<usize, StoreError> {
    let mut conn = conn.clone();
    let mut logs: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("chat:{*}:log")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        logs.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut trimmed = 0;
    for log in logs {
        loop {
            let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
                .arg(&log)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(TRIM_SCAN)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            let expired = entries
                .iter()
                .take_while(|(_, fields)| {
                    fields
                        .get("m")
                        .or(fields.get("c"))
                        .and_then(|m| serde_json::from_str::<Stamp>(m).ok())
                        .is_some_and(|m| m.ts < before_ms)
                })
                .count();
            if expired == 0 {
                break;
            }
            // Everything before the first entry kept, or up to the last one read.
            let min_id = match entries.get(expired).or(entries.last()) {
                Some((id, _)) if expired < entries.len() => id.clone(),
                Some((id, _)) => match next_stream_id(id) {
                    Some(next) => next,
                    None => break,
                },
                None => break,
            };
            let n: usize = redis::cmd("XTRIM")
                .arg(&log)
                .arg("MINID")
                .arg(&min_id)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            trimmed += n;
            if expired < entries.len() || n == 0 {
                break;
            }
        }
        if let Some(room) = log
            .strip_prefix("chat:{")
            .and_then(|r| r.strip_suffix("}:log"))
        {
            let _: () = clean_script()
                .key(&log)
                .key(body_key(room))
                .key(floor_key(room))
                .arg(rx_prefix(room))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
        }
    }
    Ok(trimmed)
}
