//! The accept loop: one task per connection on hyper's HTTP/1 + HTTP/2 builder.
//!
//! With time limits, a cap per address, optional TLS and a graceful stop.
//!
//! Time limits: a request head must arrive within `header_timeout` (hyper's HTTP/1 timer,
//! which also runs while a kept-alive connection waits for its next request), the first request
//! of a connection must start within it too (this also bounds a TLS handshake and the HTTP/2
//! preface), and a connection with no request in flight for `idle_timeout` is closed
//! gracefully. A WebSocket upgrade leaves this loop: its socket is the connection task's of
//! `net::conn`, with its own heartbeat.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::server::http::limits::{ConnectionLimits, Permit};
use crate::server::http::proxy::{Transport, TrustedProxies};
use crate::server::http::tcp;

/// How a listener's connections are served.
#[derive(Clone)]
pub struct Options {
    /// Longest wait for a request head (and for a connection's first request).
    pub header_timeout: Duration,
    /// Longest time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Most open HTTP connections from one address (trusted proxies are not counted).
    pub max_per_ip: usize,
    /// Peers exempt from the cap: their connections carry many clients.
    pub trusted: Arc<TrustedProxies>,
    /// Set: connections are TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What every connection task of one listener shares.
struct Shared {
    router: Router,
    builder: Builder<TokioExecutor>,
    options: Options,
    per_ip: Arc<ConnectionLimits>,
    stop: CancellationToken,
}

/// Serves `router` on `listener` until `stop` is cancelled; then stops accepting, lets each
/// connection finish its request in flight, and waits for them up to `deadline`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    options: Options,
    stop: CancellationToken,
    deadline: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let shared = Arc::new(Shared {
        router,
        builder,
        per_ip: Arc::new(ConnectionLimits::new(options.max_per_ip, usize::MAX)),
        options,
        stop: stop.clone(),
    });
    let tasks = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait for some to be freed.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        tcp::start_keepalive(&stream);
        let permit = match admit(&shared, peer.ip()) {
            Ok(p) => p,
            Err(()) => {
                refuse(stream, shared.options.tls.is_some());
                continue;
            }
        };
        tasks.spawn(connection(shared.clone(), stream, peer, permit));
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(deadline, tasks.wait()).await.is_err() {
        tracing::warn!(
            open = tasks.len(),
            "HTTP connections still open at the deadline"
        );
    }
}

/// A place for one more connection from `ip`, unless it has its fill; none needed for a
/// trusted proxy.
fn admit(shared: &Shared, ip: IpAddr) -> Result<Option<Permit>, ()> {
    if shared.options.trusted.trusts(ip) {
        return Ok(None);
    }
    match shared.per_ip.acquire(ip) {
        Ok(p) => Ok(Some(p)),
        Err(_) => {
            tracing::debug!(peer = %ip, "HTTP connection refused: too many from this address");
            Err(())
        }
    }
}

/// Answers a connection over the cap with 429 if its socket takes it at once, and closes it.
fn refuse(stream: TcpStream, tls: bool) {
    const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\n\
        content-length: 39\r\nconnection: close\r\n\r\ntoo many connections from your address\n";
    if !tls {
        let _ = stream.try_write(TOO_MANY);
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// One connection: its TLS handshake if any, then HTTP until it closes, upgrades, idles out
/// or the server stops.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    permit: Option<Permit>,
) {
    let _permit = permit;
    match shared.options.tls.clone() {
        None => http(&shared, TokioIo::new(stream), peer, false).await,
        // Boxed: a plain connection's task should not hold room for TLS's futures.
        Some(acceptor) => Box::pin(tls(&shared, acceptor, stream, peer)).await,
    }
}

/// A TLS connection: the handshake, bounded by the header timeout, then HTTP.
async fn tls(
    shared: &Shared,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let handshake = tokio::select! {
        done = tokio::time::timeout(shared.options.header_timeout, acceptor.accept(stream)) => done,
        _ = shared.stop.cancelled() => return,
    };
    match handshake {
        Ok(Ok(tls)) => http(shared, TokioIo::new(tls), peer, true).await,
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
    }
}

/// Requests in flight on one connection, and since when it has had none.
struct Activity {
    state: Mutex<(usize, Instant, bool)>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new((0, Instant::now(), false)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the connection counts as idle if nothing starts: `None` while a request is in flight.
    fn idle_at(&self, first: Duration, idle: Duration) -> Option<Instant> {
        let (in_flight, since, served) = *self.lock();
        (in_flight == 0).then(|| since + if served { idle } else { first })
    }
}

/// One request in flight; dropping it marks the end.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        {
            let mut s = activity.lock();
            s.0 += 1;
            s.2 = true;
        }
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.0 = s.0.saturating_sub(1);
        s.1 = Instant::now();
    }
}

/// Resolves once the connection has been idle too long. Requests start and end unseen by
/// this loop, so it looks again at least every `min(first, idle)`.
async fn idle_out(activity: &Activity, first: Duration, idle: Duration) {
    let every = first.min(idle);
    loop {
        let now = Instant::now();
        match activity.idle_at(first, idle) {
            Some(at) if now >= at => return,
            Some(at) => tokio::time::sleep_until(at.min(now + every)).await,
            None => tokio::time::sleep(every).await,
        }
    }
}

/// Serves HTTP on `io` until the connection ends, upgrades, idles out or the server stops.
async fn http<I>(shared: &Shared, io: TokioIo<I>, peer: SocketAddr, tls: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let router = shared.router.clone();
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let ext = req.extensions_mut();
        ext.insert(ConnectInfo(peer));
        ext.insert(Transport { tls });
        let busy = Busy::start(seen.clone());
        let call = router.clone().oneshot(req);
        async move {
            let response = call.await;
            drop(busy);
            response
        }
    });
    let conn = shared.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let (first, idle) = (shared.options.header_timeout, shared.options.idle_timeout);
    // Once closing, what is in flight gets `idle` more to finish; then the connection is dropped.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(peer = %peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = shared.stop.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + idle);
            }
            _ = idle_out(&activity, first, idle), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + idle);
            }
            _ = tokio::time::sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {
                tracing::debug!(peer = %peer, "HTTP connection dropped: it did not close in time");
                return;
            }
        }
    }
}
