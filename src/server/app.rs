//! The HTTP application: shared state, the axum router (SSR pages, server functions, `/ws/<room>`, `/healthz`) and serving with a graceful drain.

use axum::extract::FromRef;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

use super::config::Config;
use super::hub::Hub;
use super::limits::{connections_from_file_limit, ConnectionLimits};
use super::room::RoomLimits;
use super::session::SessionKeys;
use super::store::{Appender, Store, StoreError};
use super::tcp::{self, Keepalive};
use super::ws;
use crate::app::{shell, App};

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
    pub store: Arc<Store>,
    pub appender: Appender,
    pub keys: Arc<SessionKeys>,
    pub limits: Arc<ConnectionLimits>,
    /// Cancelled when the server starts draining.
    pub shutdown: CancellationToken,
    /// Tracks every connection task, so that shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// Opens the store (failing with a clear error if it is unusable), starts its writer and the hub.
    pub async fn new(config: Config, leptos_options: LeptosOptions) -> Result<Self, StoreError> {
        let store = Store::open(&config.data_path, config.max_db_mb)?;
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
        let (appender, _writer) = store.start_writer(hub.clone())?;
        let lifetime = config.session_days * 24 * 3600;
        let keys = if config.session_secret.is_empty() {
            SessionKeys::from_key(store.session_secret().await?, lifetime)
        } else {
            SessionKeys::new(&config.session_secret, lifetime)
        };
        Ok(AppState(Arc::new(Shared {
            leptos_options,
            config: Arc::new(config),
            hub,
            store: Arc::new(store),
            appender,
            keys: Arc::new(keys),
            limits: conn_limits,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })))
    }
}

/// The whole app as one router.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .route("/ws/{room}", get(ws::ws_route))
        .route("/healthz", get(|| async { "ok" }))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `stop` resolves, then drains: refuses new sockets, closes open ones with
/// 1012 "service restart", and waits for them up to the configured deadline.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = {
        let hub = state.hub.clone();
        let token = state.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            let mut counts = tokio::time::interval(crate::server::room::COUNT_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => hub.sweep(),
                    _ = counts.tick() => hub.flush_counts(),
                    _ = token.cancelled() => return,
                }
            }
        })
    };
    let token = state.shutdown.clone();
    let tracker = state.tracker.clone();
    let deadline = Duration::from_secs(state.config.shutdown_deadline_secs);
    let appender = state.appender.clone();
    let keepalive = Keepalive {
        idle: Duration::from_secs(state.config.tcp_keepalive_idle_secs),
        interval: Duration::from_secs(state.config.tcp_keepalive_interval_secs),
        probes: state.config.tcp_keepalive_probes,
    };
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = listener.tap_io(move |stream| tcp::tune(stream, keepalive));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("draining connections");
            token.cancel();
        })
        .await;
    tracker.close();
    let drained = tokio::time::timeout(deadline, async {
        tracker.wait().await;
        // Let the writer commit what is queued (unconfirmed, so clients would re-send it anyway).
        while !appender.is_idle() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if drained.await.is_err() {
        tracing::warn!(
            open = tracker.len(),
            "shutdown deadline passed with connections still open"
        );
    }
    sweeper.abort();
    result
}

/// Resolves on SIGTERM or SIGINT.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
