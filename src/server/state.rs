//! What every handler shares: the [`AppState`] with the config, hub, log, keys and limits, and how it is built.

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::chat::hub::Hub;
use crate::server::chat::room::RoomLimits;
use crate::server::chat::session::SessionKeys;
use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::http::abuse::AddressLimits;
use crate::server::http::limits::{connections_from_file_limit, ConnectionLimits};
use crate::server::http::proxy::TrustedProxies;
use crate::server::log::redis::RedisLog;
use crate::server::log::sqlite::Store;
use crate::server::log::{MessageLog, StoreError};
use crate::server::ops::status::StatusLog;

/// Everything a request handler or server function may need: one shared allocation, so that
/// each connection's task holds a pointer to it, not a copy.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    /// Where messages are stored and history is read: SQLite, or Redis in cluster mode.
    pub log: MessageLog,
    pub keys: Arc<SessionKeys>,
    pub limits: Arc<ConnectionLimits>,
    /// Per-address limits on joins, names held and new rooms.
    pub address_limits: AddressLimits,
    /// The last minutes of connections, rooms and message rates, for `/status`.
    pub status: Arc<StatusLog>,
    /// Cancelled when the drain begins: `/readyz` answers 503 and new sockets are refused.
    pub draining: CancellationToken,
    /// Cancelled when open sockets are to close (after the drain delay).
    pub shutdown: CancellationToken,
    /// Tracks every connection task, so that shutdown can wait for them.
    pub tracker: TaskTracker,
    /// The clock of the old protocol's `time` fields (`time_zone`).
    pub legacy_clock: Clock,
    /// Peers whose `X-Forwarded-*` headers count (`trust_proxy`).
    pub proxies: Arc<TrustedProxies>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// Opens the message log (failing with a clear error if it is unusable: the SQLite file,
    /// or in cluster mode Redis), starts its writer and the hub.
    pub async fn new(config: Config, leptos_options: LeptosOptions) -> Result<Self, StoreError> {
        let limits = RoomLimits {
            max_members: config.max_room_members,
            max_message_chars: config.max_message_chars,
            max_staged: config.outgoing_queue_frames,
            silence_ms: (config.ping_interval_secs + config.pong_timeout_secs + 5) * 1000,
            presence_list_limit: config.presence_list_limit,
        };
        let max_total = match config.max_connections {
            0 => connections_from_file_limit(),
            n => n,
        };
        let conn_limits = Arc::new(ConnectionLimits::new(
            config.max_connections_per_ip,
            max_total,
        ));
        let hub = Arc::new(Hub::new(
            limits,
            Duration::from_secs(config.name_reservation_secs),
            Duration::from_millis(config.presence_grace_ms),
        ));
        let log = if config.redis_url.is_empty() {
            let store = Store::open(&config.data_path, config.max_db_mb)?
                .with_wal_limit(config.wal_limit_mb.saturating_mul(1024 * 1024));
            let (appender, _writer) = store.start_writer(hub.clone())?;
            let store = Arc::new(store);
            MessageLog::Local { store, appender }
        } else {
            let log = RedisLog::start(
                &config.redis_url,
                config.redis_stream_len,
                Duration::from_secs(config.presence_ttl_secs),
                hub.clone(),
            )
            .await?;
            MessageLog::Cluster(log)
        };
        hub.use_log(log.clone(), tokio::runtime::Handle::current());
        if config.retention_days > 0 {
            log.start_retention(config.retention_days);
        }
        let lifetime = config.session_days * 24 * 3600;
        let keys = if config.session_secret.is_empty() {
            SessionKeys::from_key(log.session_secret().await?, lifetime)
        } else {
            SessionKeys::new(&config.session_secret, lifetime)
        };
        let address_limits = AddressLimits::new(
            config.joins_per_minute,
            config.join_burst,
            config.max_reservations_per_ip,
            Duration::from_secs(config.name_reservation_secs),
            config.new_rooms_per_hour,
        );
        hub.metrics().set_ready(true);
        // Checked when the settings were loaded.
        let proxies = Arc::new(TrustedProxies::parse(&config.trust_proxy).unwrap_or_default());
        Ok(AppState(Arc::new(Shared {
            // Checked when the settings were loaded.
            legacy_clock: Clock::new(&config.time_zone).unwrap_or_default(),
            proxies,
            leptos_options,
            config: Arc::new(config),
            status: Arc::new(StatusLog::default()),
            draining: CancellationToken::new(),
            hub,
            log,
            keys: Arc::new(keys),
            limits: conn_limits,
            address_limits,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })))
    }
}
