//! The socket under an upgraded WebSocket: plain TCP, or TLS over TCP.
//!
//! Readiness comes from the TCP socket; reads and writes never wait.
//!
//! The plain arm is the bare `TcpStream` (no buffer, same size: the TLS arm is one boxed
//! pointer), read with `try_read` and written with `try_write_vectored`. The TLS arm polls
//! rustls with a no-op waker: `Pending` is `WouldBlock`, and it arises only when the TCP
//! socket itself would block, which clears its readiness so that the connection loop's next
//! readiness poll registers the real waker. Two rules keep that true: TLS is readable while
//! rustls holds decrypted bytes (which the socket no longer signals), and records rustls
//! holds back count as output still to write ([`Stream::holds_output`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::server::net::wire::TryWrite;

/// An upgraded connection's socket.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Runs one poll with a waker that does nothing: `Pending` becomes `WouldBlock`.
fn now<T>(poll: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>) -> io::Result<T> {
    match poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
            // rustls wants no more bytes while it holds plaintext (or the peer's close).
            Stream::Tls(s) if !s.get_ref().1.wants_read() => Poll::Ready(Ok(())),
            Stream::Tls(s) => s.get_ref().0.poll_read_ready(cx),
        }
    }

    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_write_ready(cx)
    }

    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// Reads what has arrived (0: the peer closed), or `WouldBlock`.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.try_read(buf),
            Stream::Tls(s) => {
                let mut rb = ReadBuf::new(buf);
                now(|cx| Pin::new(&mut **s).poll_read(cx, &mut rb))?;
                Ok(rb.filled().len())
            }
        }
    }

    /// Does TLS hold records not yet handed to the socket?
    pub fn holds_output(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.wants_write(),
        }
    }

    /// Hands the socket what TLS holds back, as far as it takes it now.
    pub fn flush_held(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(s) => match now(|cx| Pin::new(&mut **s).poll_flush(cx)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                other => other,
            },
        }
    }

    /// Ends our side: TLS's close_notify (queued: flush it first), then a TCP half-close.
    pub fn close_notify(&mut self) {
        if let Stream::Tls(s) = self {
            s.get_mut().1.send_close_notify();
        }
    }

    /// Half-closes the TCP socket (nothing more will be written).
    pub fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self.tcp()).shutdown(std::net::Shutdown::Write);
    }
}

impl TryWrite for &mut Stream {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut **self {
            Stream::Plain(s) => s.try_write_vectored(bufs),
            Stream::Tls(s) => {
                // What TLS holds goes out first, so that what it buffers stays one batch at most.
                if s.get_ref().1.wants_write() {
                    now(|cx| Pin::new(&mut **s).poll_flush(cx))?;
                }
                let n = now(|cx| Pin::new(&mut **s).poll_write_vectored(cx, bufs))?;
                match now(|cx| Pin::new(&mut **s).poll_flush(cx)) {
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                    _ => {}
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_arm_costs_no_memory() {
        assert_eq!(
            std::mem::size_of::<Stream>(),
            std::mem::size_of::<TcpStream>()
        );
    }
}
