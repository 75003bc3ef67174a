//! The WebSocket routes, `/ws/<room>` and the old protocol's `/`: check origin and limits, pick the codec, upgrade.

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::rules::validate_room;
use crate::server::chat::codec::Codec;
use crate::server::chat::session::{self, Session};
use crate::server::http::limits::LimitError;
use crate::server::http::proxy;
use crate::server::legacy;
use crate::server::net::conn::{run, Start};
use crate::server::net::wire;
use crate::server::ops::metrics::Refusal;
use crate::server::state::AppState;

/// Who a new connection is, as far as its upgrade request tells.
enum Who {
    /// The current protocol: the session in the request's cookie, if any (the `join` frame needs one).
    Member(Option<Session>),
    /// Another protocol, whose frames say who.
    Speaks(Arc<dyn Codec>),
    /// The Autobahn echo harness: messages come back as sent.
    #[cfg(feature = "autobahn")]
    Echo,
}

/// An upgrade refused: counted, and answered with `status` and `text`.
fn refuse(state: &AppState, why: Refusal, status: StatusCode, text: &str) -> Response {
    state.hub.metrics().refused(why);
    (status, text.to_string()).into_response()
}

/// The accept key and the pending upgrade of a valid WebSocket upgrade request, or the
/// status and reason to refuse it with.
fn handshake(
    req: &mut Request,
) -> Result<(header::HeaderValue, hyper::upgrade::OnUpgrade), (StatusCode, &'static str)> {
    let accept = wire::accept_key(req.headers()).map_err(|why| (StatusCode::BAD_REQUEST, why))?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or((
            StatusCode::UPGRADE_REQUIRED,
            "connection cannot be upgraded",
        ))?;
    Ok((accept, on_upgrade))
}

/// `GET /ws/<room>`: refuses bad rooms, foreign origins, draining servers and connections over
/// the limits; otherwise upgrades.
pub async fn ws_route(
    Path(room): Path<String>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    let headers = req.headers();
    let Ok(room) = validate_room(&room) else {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::NOT_FOUND,
            "no such room",
        );
    };
    if !origin_allowed(headers, &state.config.allowed_origins) {
        return refuse(
            &state,
            Refusal::Origin,
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused",
        );
    }
    let session = session::from_headers(&state.keys, headers, &room);
    let peer = client_of(&state, peer, headers);
    upgrade(state, on_upgrade, accept, room, Who::Member(session), peer)
}

/// A WebSocket upgrade of `/`: an old PHP/Swoole chat client, which joins the configured
/// `legacy_room` and speaks the old protocol (see [`crate::server::legacy`]). Any origin may connect
/// unless `legacy_origins` lists them: these sockets carry no session.
pub async fn legacy_route(state: AppState, mut req: Request) -> Response {
    if state.config.legacy_room.is_empty() {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::NOT_FOUND,
            "the old protocol is off on this server",
        );
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return refuse(
            &state,
            Refusal::BadRequest,
            StatusCode::BAD_REQUEST,
            "no peer address",
        );
    };
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    let headers = req.headers();
    let allowed = state.config.legacy_origins.trim();
    if allowed != "*" && !origin_allowed(headers, allowed) {
        return refuse(
            &state,
            Refusal::Origin,
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused",
        );
    }
    let tls = req
        .extensions()
        .get::<crate::server::http::proxy::Transport>()
        .is_some_and(|t| t.tls);
    let https = proxy::is_https(tls, peer.ip(), headers, &state.proxies);
    let codec = legacy::codec::codec(site_of(headers, https).into(), state.legacy_clock.clone());
    let peer = client_of(&state, peer, headers);
    let room = state.config.legacy_room.clone();
    upgrade(state, on_upgrade, accept, room, Who::Speaks(codec), peer)
}

/// An echo socket on any path, for the Autobahn conformance suite: text and binary messages
/// come back as sent, through the chat sockets' decoder, writer and connection loop. Built
/// with the `autobahn` feature only, which no release build has.
#[cfg(feature = "autobahn")]
pub async fn echo_route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let (accept, on_upgrade) = match handshake(&mut req) {
        Ok(h) => h,
        Err((status, why)) => return refuse(&state, Refusal::BadRequest, status, why),
    };
    upgrade(state, on_upgrade, accept, "echo".into(), Who::Echo, peer)
}

/// The client's address: the TCP peer's, or behind a trusted proxy the one it forwards.
fn client_of(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    SocketAddr::new(
        proxy::client_addr(peer.ip(), headers, &state.proxies),
        peer.port(),
    )
}

/// `scheme://host` as the client reached this server (`https` over TLS, ours or a trusted
/// proxy's): where it finds the avatar images.
fn site_of(headers: &HeaderMap, https: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Refuses draining servers and connections over the limits; otherwise answers 101 and
/// starts the connection's task.
fn upgrade(
    state: AppState,
    on_upgrade: hyper::upgrade::OnUpgrade,
    accept: header::HeaderValue,
    room: String,
    who: Who,
    peer: SocketAddr,
) -> Response {
    if state.draining.is_cancelled() {
        return refuse(
            &state,
            Refusal::Draining,
            StatusCode::SERVICE_UNAVAILABLE,
            "server is restarting",
        );
    }
    let permit = match state.limits.acquire(peer.ip()) {
        Ok(p) => p,
        Err(e @ LimitError::PerIp) => {
            return refuse(
                &state,
                Refusal::IpLimit,
                StatusCode::TOO_MANY_REQUESTS,
                &e.to_string(),
            )
        }
        Err(e @ LimitError::Total) => {
            return refuse(
                &state,
                Refusal::TotalLimit,
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            )
        }
    };
    let (session, codec) = match who {
        Who::Member(session) => (
            session.map(Box::new),
            Some(crate::server::net::codec::codec()),
        ),
        Who::Speaks(codec) => (None, Some(codec)),
        #[cfg(feature = "autobahn")]
        Who::Echo => (None, None),
    };
    let tracker = state.tracker.clone();
    let start = Box::new(Start {
        on_upgrade,
        state,
        room,
        session,
        codec,
        peer,
        permit,
    });
    tokio::spawn(tracker.track_future(run(start)));
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Is the page that opens this socket allowed to? Browsers always send `Origin` on a
/// WebSocket upgrade; clients that send none (scripts, tests) are not pages, so no cookie of
/// a user's can be riding along.
pub fn origin_allowed(headers: &HeaderMap, allowed: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if !allowed.trim().is_empty() {
        return allowed
            .split(',')
            .map(|o| o.trim().trim_end_matches('/'))
            .any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')));
    }
    // Same origin: the Origin's host:port is the Host the request was sent to.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_may_open_sockets() {
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            ""
        ));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "127.0.0.1:3000"),
            ""
        ));
        assert!(!origin_allowed(
            &headers(Some("null"), "127.0.0.1:3000"),
            ""
        ));
        assert!(
            origin_allowed(&headers(None, "127.0.0.1:3000"), ""),
            "not a page"
        );
        let list = "https://chat.example.com, https://other.example";
        assert!(origin_allowed(
            &headers(Some("https://other.example"), "internal:3000"),
            list
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "internal:3000"),
            list
        ));
    }
}
