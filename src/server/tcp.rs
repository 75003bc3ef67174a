//! Options for every accepted TCP socket: no Nagle delay, and keepalive probes so that vanished peers are noticed by the kernel too.

use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

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

/// Sets TCP_NODELAY and keepalive on `stream`; failures are logged, never fatal.
pub fn tune(stream: &TcpStream, keepalive: Keepalive) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let ka = TcpKeepalive::new()
        .with_time(keepalive.idle)
        .with_interval(keepalive.interval)
        .with_retries(keepalive.probes);
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "cannot set TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        tune(
            &server,
            Keepalive {
                idle: Duration::from_secs(60),
                interval: Duration::from_secs(30),
                probes: 3,
            },
        );
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
