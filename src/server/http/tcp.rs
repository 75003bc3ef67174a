//! Options for every accepted TCP socket: no Nagle delay, and keepalive probes.
//!
//! Keepalive lets the kernel notice vanished peers too.
//!
//! They are set on the listening socket, whose accepted sockets inherit them (on Linux), so
//! each connection needs one system call instead of five: the one that starts its
//! keepalive timer, which an inherited keepalive flag would not.

use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Keepalive timings.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub probes: u32,
}

/// Connections waiting to be accepted. The kernel caps it at `net.core.somaxconn` (4,096 on
/// current kernels); tokio's default of 1,024 drops SYNs when thousands connect at once,
/// and a dropped SYN costs its client a one-second retransmit.
const BACKLOG: u32 = 4096;

/// A listening socket on `addr` with a deep accept queue.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Sets TCP_NODELAY and the keepalive timings on `listener`, for the sockets it accepts;
/// failures are logged, never fatal. Each accepted socket then needs [`start_keepalive`].
pub fn tune(listener: &TcpListener, keepalive: Keepalive) {
    let sock = SockRef::from(listener);
    if let Err(e) = sock.set_tcp_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
    }
    let ka = TcpKeepalive::new()
        .with_time(keepalive.idle)
        .with_interval(keepalive.interval)
        .with_retries(keepalive.probes);
    // The timings stay; the flag goes, so that turning it on in an accepted socket arms its timer.
    if let Err(e) = sock
        .set_tcp_keepalive(&ka)
        .and_then(|()| sock.set_keepalive(false))
    {
        tracing::warn!(error = %e, "cannot set TCP keepalive");
    }
}

/// Turns keepalive on for `stream`, accepted from a [`tune`]d listener, with its timings.
pub fn start_keepalive(stream: &TcpStream) {
    if let Err(e) = SockRef::from(stream).set_keepalive(true) {
        tracing::debug!(error = %e, "cannot set TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_nodelay_and_keepalive() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        tune(
            &listener,
            Keepalive {
                idle: Duration::from_secs(60),
                interval: Duration::from_secs(30),
                probes: 3,
            },
        );
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        start_keepalive(&server);
        let sock = SockRef::from(&server);
        assert!(server.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
    }
}
