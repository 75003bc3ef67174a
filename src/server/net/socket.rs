//! The upgraded socket: its frame decoder, the frames waiting to be written, and the orderly close.

use std::collections::VecDeque;

use crate::server::chat::outbox::{Next, OutboxReceiver};
use crate::server::net::stream::Stream;
use crate::server::net::wire::{Decoder, Event, WireError, Writer};

/// Frames taken from the outbox for one write (one system call when the socket takes them).
const WRITE_BATCH: usize = 128;

/// The upgraded socket: its frame decoder and the frames waiting to be written.
pub(crate) struct Socket {
    pub(crate) stream: Stream,
    pub(crate) decoder: Decoder,
    pub(crate) writer: Writer,
    /// A close frame is queued: nothing more may be sent after it.
    pub(crate) closing: bool,
    /// Messages are echoed back, not handled as chat (the Autobahn harness only).
    pub(crate) echo: bool,
}

/// Why reading stopped.
pub(crate) enum ReadEnd {
    /// The client closed its side (or the connection broke).
    Gone,
    Broken(WireError),
}

impl Socket {
    pub(crate) fn new(stream: Stream, max_frame_bytes: usize, echo: bool) -> Self {
        Socket {
            stream,
            decoder: if echo {
                Decoder::keeping_binary(max_frame_bytes)
            } else {
                Decoder::new(max_frame_bytes)
            },
            writer: Writer::default(),
            closing: false,
            echo,
        }
    }

    /// One read of what the socket has, decoded into `events`. The buffer is on the stack,
    /// so an idle connection holds none.
    pub(crate) fn read(&mut self, events: &mut VecDeque<Event>) -> Result<(), ReadEnd> {
        let mut buf = [0u8; 8192];
        match self.stream.try_read(&mut buf) {
            Ok(0) => Err(ReadEnd::Gone),
            Ok(n) => self
                .decoder
                .feed(&buf[..n], events)
                .map_err(ReadEnd::Broken),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => Err(ReadEnd::Gone),
        }
    }

    /// Anything queued or held back by TLS, not yet handed to the socket?
    pub(crate) fn pending(&self) -> bool {
        self.writer.pending() || self.stream.holds_output()
    }

    /// Writes as much as the socket takes now (see [`Writer::flush`]).
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush(&mut self.stream)?;
        self.stream.flush_held()
    }

    /// Queues what the outbox hands over (and what waits behind it); the close code once a
    /// close is queued.
    pub(crate) fn take(&mut self, first: Next, rx: &mut OutboxReceiver) -> Option<u16> {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            match item {
                Next::Frame(f) => self.writer.text(f),
                Next::Ping => self.writer.ping(),
                Next::Close(code, reason) => {
                    self.writer.close(code, &reason);
                    self.closing = true;
                    return Some(code);
                }
                Next::Done => {
                    self.writer.close(1000, "");
                    self.closing = true;
                    return Some(1000);
                }
            }
            taken += 1;
            if taken < WRITE_BATCH {
                next = rx.try_next();
            }
        }
        None
    }

    /// After the connection's work is over: writes what is queued and a close frame, then
    /// half-closes and waits for the client to close too (so that its unread bytes do not
    /// turn our close into a reset). The caller bounds how long this may take.
    pub(crate) async fn finish(&mut self, rx: &mut OutboxReceiver) {
        if rx.urgent() {
            self.writer.discard_unstarted();
        }
        loop {
            while self.pending() {
                if self.stream.writable().await.is_err() || self.flush().is_err() {
                    return;
                }
            }
            if self.closing {
                if !self.stream.is_tls() {
                    break;
                }
                // TLS ends with its close_notify, written like any other output.
                self.stream.close_notify();
                while self.pending() {
                    if self.stream.writable().await.is_err() || self.flush().is_err() {
                        return;
                    }
                }
                break;
            }
            let next = rx.next().await;
            self.take(next, rx);
        }
        self.stream.shutdown_write();
        let mut sink = [0u8; 1024];
        loop {
            if self.stream.readable().await.is_err() {
                return;
            }
            match self.stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}
