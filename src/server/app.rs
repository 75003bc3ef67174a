//! The HTTP application: the axum router, serving, and the graceful drain.
//!
//! Routes: SSR pages, server functions, `/ws/<room>`, the old protocol's `/` upgrade, health checks, `/metrics`.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos_axum::{AxumRouteListing, LeptosRoutes};
use leptos_router::{Method, SsrMode};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::address::Page;
use crate::app::shell;
use crate::server::config::Config;
use crate::server::http::api_limits;
use crate::server::http::serve as accept;
use crate::server::http::tcp::{self, Keepalive};
use crate::server::http::tls;
use crate::server::net::route as ws;
use crate::server::ops::metrics;

use crate::server::state::AppState;

/// Paths for operators only: on the admin address when one is set, on the app's only with `metrics_public`.
const ADMIN_PATHS: [&str; 3] = ["/metrics", "/status", "/api/status"];

/// Which listener a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Everything: the admin address, or the public one with `metrics_public`.
    All,
    /// The public listener: the admin paths are 404 here.
    Public,
}

impl Surface {
    /// What the public listener serves: the admin paths only when asked for and not served apart.
    fn public(config: &Config, admin_apart: bool) -> Surface {
        if config.metrics_public && !admin_apart {
            Surface::All
        } else {
            Surface::Public
        }
    }
}

/// The pages' paths (`address::Page` tells them apart), each with how it streams.
fn pages() -> Vec<AxumRouteListing> {
    // A room's page waits for nothing (its snapshot is loaded before, `room_snapshot`).
    [
        ("/", SsrMode::InOrder),
        ("/r/{room}", SsrMode::InOrder),
        ("/status", SsrMode::OutOfOrder),
    ]
    .into_iter()
    .map(|(path, mode)| AxumRouteListing::new(path.into(), mode, [Method::Get], vec![]))
    .collect()
}

/// The whole app as one router.
pub fn router(state: AppState, surface: Surface) -> Router {
    let options = state.leptos_options.clone();
    let app = Router::new()
        .route("/ws/{room}", get(ws::ws_route))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_route))
        .merge(crate::server::admin::member_routes());
    // The admin API: on the admin address when there is one, else here (with its token).
    let admin_here = surface == Surface::All || state.config.admin_addr().is_none();
    let token = state
        .config
        .admin_token()
        .ok()
        .flatten()
        .filter(|_| admin_here);
    let app = app
        .merge(crate::server::admin::routes(token))
        .leptos_routes(&state, pages(), move || shell(options.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), room_snapshot));
    // Static files and the 404 page: from inside the binary, or from `site_root` on disk.
    #[cfg(feature = "embed")]
    let app = app.fallback_service(crate::server::assets::fallback(state.clone()));
    #[cfg(not(feature = "embed"))]
    let app = app.fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell));
    let app = match surface {
        Surface::All => app,
        Surface::Public => app.layer(middleware::from_fn(hide_admin_paths)),
    };
    // Server-function bodies bounded (413), malformed arguments 400: inside the trace, so that
    // the request's log line has the status the client got.
    let app = app.layer(middleware::from_fn(api_limits::guard));
    // Pages and files are compressed when the client accepts it (not if already compressed,
    // nor upgrades, whose bodies are empty); every response gets the security headers.
    let app = app
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(crate::server::http::headers::secure));
    let app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        old_protocol_on_root,
    ));
    // One line per request at INFO: method and path in the span, status and latency in the line.
    let trace = TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    app.layer(trace).with_state(state)
}

/// Loads a room page's snapshot before the page is rendered, into the request's extensions
/// (`components::room_page` reads it there and sends it in the page).
async fn room_snapshot(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    use crate::protocol::pages::{PageError, PageSnapshot};
    if req.method() == axum::http::Method::GET {
        if let Page::Room(room) = Page::at(req.uri().path()) {
            let snapshot: PageSnapshot = match crate::rules::validate_room(&room) {
                Err(_) => Err(PageError::InvalidRoom),
                Ok(room) => crate::api::room_snapshot(&state, &room, req.headers())
                    .await
                    .map_err(|e| match e {
                        leptos::prelude::ServerFnError::ServerError(message) => {
                            PageError::Server(message)
                        }
                        other => PageError::Server(other.to_string()),
                    }),
            };
            req.extensions_mut().insert(snapshot);
        }
    }
    next.run(req).await
}

/// A WebSocket upgrade of `/` is an old PHP/Swoole chat client; a plain `GET /` is the app.
async fn old_protocol_on_root(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/" && crate::server::net::wire::wants_websocket(req.headers()) {
        return ws::legacy_route(state, req).await;
    }
    next.run(req).await
}

async fn hide_admin_paths(req: Request, next: Next) -> Response {
    let path = req.uri().path().trim_end_matches('/');
    if ADMIN_PATHS.contains(&path) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    next.run(req).await
}

/// Why the server is not ready, if it is not: draining, or the store cannot be written.
/// Also sets the `chatroom_ready` gauge.
async fn readiness(state: &AppState) -> Result<(), String> {
    let ready = if state.draining.is_cancelled() {
        Err("draining".to_string())
    } else {
        state.log.check_writable().await.map_err(|e| e.to_string())
    };
    state.hub.metrics().set_ready(ready.is_ok());
    ready
}

/// `GET /readyz`: 200 while accepting connections with a writable store; 503 while draining
/// or when the store cannot be written.
async fn readyz(State(state): State<AppState>) -> Response {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, "ready".to_string()).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// `GET /metrics`: Prometheus exposition.
async fn metrics_route(State(state): State<AppState>) -> Response {
    let _ = readiness(&state).await;
    match state.hub.metrics().render(state.hub.stats(true)) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

/// Serves until `stop` resolves, then drains (see [`serve_with_admin`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_admin(listener, None, state, stop).await
}

/// Serves the app on `listener` (and `/metrics` and `/status` on `admin`, if given, instead)
/// until `stop` resolves, then drains (see [`serve_listeners`]).
pub async fn serve_with_admin(
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listeners = Listeners {
        public: listener,
        admin,
        redirect: None,
        tls: None,
    };
    serve_listeners(listeners, state, stop).await
}

/// Where the server listens, and its TLS if it has any.
pub struct Listeners {
    /// The app: pages, server functions and sockets (over TLS when `tls` is set).
    pub public: tokio::net::TcpListener,
    /// `/metrics` and `/status`, off the public address.
    pub admin: Option<tokio::net::TcpListener>,
    /// Plain HTTP that redirects to the public address over https.
    pub redirect: Option<tokio::net::TcpListener>,
    pub tls: Option<Arc<tls::Tls>>,
}

/// Serves until `stop` resolves, then drains: `/readyz` turns 503 and new sockets are
/// refused; after the drain delay open sockets are closed with 1012 "service restart"; HTTP
/// goes on being served until they are gone or the deadline passes.
pub async fn serve_listeners(
    listeners: Listeners,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep(state.clone()));
    let config = state.config.clone();
    let keepalive = Keepalive {
        idle: Duration::from_secs(config.tcp_keepalive_idle_secs),
        interval: Duration::from_secs(config.tcp_keepalive_interval_secs),
        probes: config.tcp_keepalive_probes,
    };
    let deadline = Duration::from_secs(config.shutdown_deadline_secs);
    let options = accept::Options {
        header_timeout: Duration::from_secs(config.http_header_timeout_secs),
        idle_timeout: Duration::from_secs(config.http_idle_timeout_secs),
        max_per_ip: config.max_http_connections_per_ip,
        trusted: state.proxies.clone(),
        tls: None,
    };
    // The admin and redirect listeners, and the certificate watch, stop last.
    let done = CancellationToken::new();
    let mut helpers = Vec::new();
    let admin_apart = listeners.admin.is_some();
    if let Some(admin) = listeners.admin {
        let app = router(state.clone(), Surface::All);
        let run = accept::run(admin, app, options.clone(), done.clone(), deadline);
        helpers.push(tokio::spawn(run));
    }
    let surface = Surface::public(&config, admin_apart);
    if let Some(redirect) = listeners.redirect {
        let port = listeners.public.local_addr()?.port();
        let run = accept::run(
            redirect,
            tls::redirect_router(port),
            options.clone(),
            done.clone(),
            deadline,
        );
        helpers.push(tokio::spawn(run));
    }
    let options = accept::Options {
        tls: listeners.tls.as_ref().map(|t| t.acceptor()),
        ..options
    };
    if let Some(tls) = listeners.tls {
        helpers.push(tokio::spawn(
            tls.watch(Duration::from_secs(5), done.clone()),
        ));
    }
    tcp::tune(&listeners.public, keepalive);
    // HTTP stops only once the drain is over: clients can still load pages meanwhile.
    let http_stop = CancellationToken::new();
    let drained = {
        let state = state.clone();
        let http_stop = http_stop.clone();
        tokio::spawn(async move {
            stop.await;
            drain(&state, deadline).await;
            http_stop.cancel();
        })
    };
    let app = router(state.clone(), surface);
    accept::run(listeners.public, app, options, http_stop, deadline).await;
    drained.abort();
    // Let the writer commit what is queued (unconfirmed, so clients would re-send it anyway).
    let _ = tokio::time::timeout(deadline, async {
        while !state.log.is_idle() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Close the SQLite writer: the WAL is checkpointed into the database and truncated.
    let _ = tokio::time::timeout(deadline, state.log.close()).await;
    done.cancel();
    for helper in helpers {
        let _ = helper.await;
    }
    sweeper.abort();
    Ok(())
}

/// The drain, while HTTP is still served: not ready, then sockets closed and waited for.
async fn drain(state: &AppState, deadline: Duration) {
    state.draining.cancel();
    state.hub.metrics().set_ready(false);
    let delay = Duration::from_millis(state.config.drain_delay_ms);
    tracing::info!(
        delay_ms = state.config.drain_delay_ms,
        open = state.tracker.len(),
        "draining: not ready, new sockets refused"
    );
    tokio::time::sleep(delay).await;
    state.shutdown.cancel();
    state.tracker.close();
    if tokio::time::timeout(deadline, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.tracker.len(),
            "shutdown deadline passed with connections still open"
        );
    }
}

/// Housekeeping until the sockets close: drops empty rooms, sends big rooms their online
/// counts, and samples the status page's figures every second.
async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut second = tokio::time::interval(crate::server::chat::members::COUNT_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                state.hub.sweep();
                state.address_limits.sweep();
            }
            _ = second.tick() => {
                state.hub.flush_counts();
                // The status page shows no queues: not worth a look at every connection each second.
                state.status.sample(state.hub.stats(false), state.hub.metrics());
            }
            _ = state.shutdown.cancelled() => return,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Page;

    #[test]
    fn every_served_page_is_one_the_app_shows() {
        for listing in pages() {
            assert_ne!(
                Page::at(listing.path()),
                Page::NotFound,
                "{}",
                listing.path()
            );
        }
    }
}
