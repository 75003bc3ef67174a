//! WebSocket on the wire (RFC 6455, server side): the upgrade handshake, reading masked client frames, and writing queued frames in one `writev`.
//!
//! The server writes its own frames so that a fan-out frame is serialised once and shared by
//! every connection (`Utf8Bytes` is reference counted): each connection only adds a 2–10 byte
//! header and hands everything queued to the kernel in one vectored write, with no copy into a
//! per-connection buffer. An idle connection holds no buffer at all: reads go through a stack
//! buffer, and only a frame split across reads is kept until it is complete.

use axum::extract::ws::Utf8Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use bytes::Bytes;
use sha1::{Digest, Sha1};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use thiserror::Error;
use tokio::net::TcpStream;

/// Why the client's bytes cannot be a WebSocket conversation; each maps to a close code.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame or message larger than {0} bytes")]
    TooBig(usize),
    #[error("text that is not UTF-8")]
    BadUtf8,
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}

impl WireError {
    /// The close code and reason that answer it.
    pub fn close(&self) -> (u16, &'static str) {
        match self {
            WireError::TooBig(_) => (crate::protocol::close::TOO_BIG, "frame too big"),
            WireError::BadUtf8 => (1007, "invalid UTF-8"),
            WireError::Protocol(_) => (1002, "protocol error"),
        }
    }
}

/// Does this request ask for a WebSocket (`Upgrade: websocket`)?
pub fn wants_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request, or why it is not one.
pub fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    if !has_token(headers, header::CONNECTION, "upgrade") || !wants_websocket(headers) {
        return Err("not a WebSocket upgrade");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("unsupported WebSocket version (13 only)");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("missing Sec-WebSocket-Key")?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    HeaderValue::from_str(&accept).map_err(|_| "bad key")
}

/// A complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Text(String),
    Binary,
    Ping(Bytes),
    Pong,
    /// The client closes, with its code if it gave one.
    Close(Option<u16>),
}

/// Reassembles client frames from whatever the socket delivers.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    /// Bytes of a frame not complete yet (empty, without capacity, between frames).
    partial: Vec<u8>,
    /// A fragmented message being assembled: is it text, and its payload so far.
    message: Option<(bool, Vec<u8>)>,
}

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

impl Decoder {
    /// Frames and messages larger than `max` bytes are refused.
    pub fn new(max: usize) -> Self {
        Decoder {
            max,
            partial: Vec::new(),
            message: None,
        }
    }

    /// Decodes the frames completed by `data` into `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<Event>) -> Result<(), WireError> {
        if self.partial.is_empty() {
            let used = self.frames(data, out)?;
            self.partial.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(data);
            let used = self.frames(&buf, out)?;
            buf.drain(..used);
            self.partial = buf;
        }
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// Decodes every complete frame at the start of `buf`; returns the bytes used.
    fn frames(&mut self, buf: &[u8], out: &mut VecDeque<Event>) -> Result<usize, WireError> {
        let mut at = 0;
        while let Some(used) = self.frame(&buf[at..], out)? {
            at += used;
        }
        Ok(at)
    }

    /// Decodes one frame if `buf` holds all of it.
    fn frame(&mut self, buf: &[u8], out: &mut VecDeque<Event>) -> Result<Option<usize>, WireError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        if b0 & 0x70 != 0 {
            return Err(WireError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(WireError::Protocol("unmasked client frame"));
        }
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0f);
        let (len, head) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0xff; 8])), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let control = op >= 8;
        if control && (!fin || len > 125) {
            return Err(WireError::Protocol("bad control frame"));
        }
        if len > self.max as u64 {
            return Err(WireError::TooBig(self.max));
        }
        let len = len as usize;
        let Some(frame) = buf.get(..head + 4 + len) else {
            return Ok(None);
        };
        let mask = [
            frame[head],
            frame[head + 1],
            frame[head + 2],
            frame[head + 3],
        ];
        let mut payload = frame[head + 4..].to_vec();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        match op {
            OP_TEXT | OP_BINARY if self.message.is_some() => {
                return Err(WireError::Protocol("new message inside a fragmented one"))
            }
            OP_TEXT | OP_BINARY if !fin => self.message = Some((op == OP_TEXT, payload)),
            OP_TEXT => out.push_back(Event::Text(text(payload)?)),
            OP_BINARY => out.push_back(Event::Binary),
            OP_CONT => {
                let Some((is_text, mut body)) = self.message.take() else {
                    return Err(WireError::Protocol("continuation without a message"));
                };
                if body.len() + payload.len() > self.max {
                    return Err(WireError::TooBig(self.max));
                }
                body.extend_from_slice(&payload);
                match (fin, is_text) {
                    (false, _) => self.message = Some((is_text, body)),
                    (true, true) => out.push_back(Event::Text(text(body)?)),
                    (true, false) => out.push_back(Event::Binary),
                }
            }
            OP_CLOSE => out.push_back(Event::Close(match payload.len() {
                0 => None,
                1 => return Err(WireError::Protocol("one-byte close payload")),
                _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
            })),
            OP_PING => out.push_back(Event::Ping(payload.into())),
            OP_PONG => out.push_back(Event::Pong),
            _ => return Err(WireError::Protocol("unknown opcode")),
        }
        Ok(Some(head + 4 + len))
    }
}

fn text(payload: Vec<u8>) -> Result<String, WireError> {
    String::from_utf8(payload).map_err(|_| WireError::BadUtf8)
}

/// A frame waiting to be written.
#[derive(Debug)]
enum Out {
    Text(Utf8Bytes),
    Control(u8, Bytes),
}

impl Out {
    fn parts(&self) -> (u8, &[u8]) {
        match self {
            Out::Text(t) => (OP_TEXT, t.as_str().as_bytes()),
            Out::Control(op, p) => (*op, p),
        }
    }
}

/// The header of an unmasked final frame; returns it and its length.
fn header(op: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | op;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// A socket that takes what it can of a vectored write at once, or answers `WouldBlock`.
pub trait TryWrite {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

impl TryWrite for &TcpStream {
    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        TcpStream::try_write_vectored(self, bufs)
    }
}

/// Frames handed to the kernel in one vectored write at most.
const BATCH: usize = 128;

/// Frames queued for one socket, and how much of the first is written.
#[derive(Debug, Default)]
pub struct Writer {
    queue: VecDeque<Out>,
    written: usize,
}

impl Writer {
    pub fn text(&mut self, frame: Utf8Bytes) {
        self.queue.push_back(Out::Text(frame));
    }

    pub fn ping(&mut self) {
        self.queue.push_back(Out::Control(OP_PING, Bytes::new()));
    }

    pub fn pong(&mut self, payload: Bytes) {
        self.queue.push_back(Out::Control(OP_PONG, payload));
    }

    pub fn close(&mut self, code: u16, reason: &str) {
        let mut p = code.to_be_bytes().to_vec();
        // A control frame carries at most 125 bytes: cut the reason at a character boundary.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        p.extend_from_slice(&reason.as_bytes()[..end]);
        self.queue.push_back(Out::Control(OP_CLOSE, p.into()));
    }

    /// Anything not fully written?
    pub fn pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Writes as much as the socket takes now, several frames per system call. `Ok` with
    /// frames still pending means the socket is full: wait for it to be writable.
    pub fn flush(&mut self, mut stream: impl TryWrite) -> io::Result<()> {
        while !self.queue.is_empty() {
            let n = self.queue.len().min(BATCH);
            let mut heads = [([0u8; 10], 0usize); BATCH];
            for (h, out) in heads.iter_mut().zip(self.queue.iter()) {
                let (op, payload) = out.parts();
                *h = header(op, payload.len());
            }
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * n);
            for (h, out) in heads.iter().zip(self.queue.iter()) {
                slices.push(IoSlice::new(&h.0[..h.1]));
                slices.push(IoSlice::new(out.parts().1));
            }
            let mut rest = &mut slices[..];
            IoSlice::advance_slices(&mut rest, self.written);
            let sent = match stream.try_write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            drop(slices);
            self.consume(sent);
        }
        self.queue = VecDeque::new();
        Ok(())
    }

    /// Drops the frames that `sent` more bytes completed.
    fn consume(&mut self, sent: usize) {
        let mut left = self.written + sent;
        while let Some(out) = self.queue.front() {
            let (op, payload) = out.parts();
            let size = header(op, payload.len()).1 + payload.len();
            if left < size {
                break;
            }
            left -= size;
            self.queue.pop_front();
        }
        self.written = left;
    }

    /// Drops every frame not started yet (a connection cut off ahead of its queue).
    pub fn discard_unstarted(&mut self) {
        let keep = usize::from(self.written > 0);
        self.queue.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        f
    }

    fn decode(d: &mut Decoder, bytes: &[u8]) -> Result<Vec<Event>, WireError> {
        let mut out = VecDeque::new();
        d.feed(bytes, &mut out).map(|()| out.into())
    }

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let text = "héllo ".repeat(50);
        let mut stream = client_frame(true, OP_TEXT, text.as_bytes());
        stream.extend(client_frame(true, OP_PING, b"p"));
        stream.extend(client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        for cut in 0..stream.len() {
            let mut d = Decoder::new(16 * 1024);
            let mut events = decode(&mut d, &stream[..cut]).unwrap();
            events.extend(decode(&mut d, &stream[cut..]).unwrap());
            assert_eq!(
                events,
                [
                    Event::Text(text.clone()),
                    Event::Ping(Bytes::from_static(b"p")),
                    Event::Close(Some(1000))
                ],
                "cut at {cut}"
            );
            assert_eq!(d.partial.capacity(), 0, "nothing held between frames");
        }
    }

    #[test]
    fn fragmented_messages_are_joined_and_may_carry_control_frames_between() {
        let mut d = Decoder::new(100);
        let mut s = client_frame(false, OP_TEXT, b"hel");
        s.extend(client_frame(true, OP_PONG, b""));
        s.extend(client_frame(false, OP_CONT, b"lo "));
        s.extend(client_frame(true, OP_CONT, b"you"));
        assert_eq!(
            decode(&mut d, &s).unwrap(),
            [Event::Pong, Event::Text("hello you".into())]
        );
    }

    #[test]
    fn bad_input_maps_to_its_close_code() {
        let err = |bytes: Vec<u8>| {
            decode(&mut Decoder::new(100), &bytes)
                .unwrap_err()
                .close()
                .0
        };
        assert_eq!(err(client_frame(true, OP_TEXT, &[b'x'; 101])), 1009);
        assert_eq!(err(client_frame(true, OP_TEXT, &[0xff, 0xfe])), 1007);
        let mut two = client_frame(false, OP_TEXT, &[b'x'; 60]);
        two.extend(client_frame(true, OP_CONT, &[b'x'; 60]));
        assert_eq!(err(two), 1009, "the whole message counts");
        assert_eq!(err(vec![0x81, 0x02, b'h', b'i']), 1002, "unmasked");
        assert_eq!(err(client_frame(true, OP_CONT, b"x")), 1002);
        assert_eq!(err(client_frame(false, OP_PING, b"")), 1002);
        assert_eq!(err(client_frame(true, 3, b"")), 1002);
        assert_eq!(err(vec![0xc1, 0x80, 0, 0, 0, 0]), 1002, "reserved bit");
        // A huge declared length is refused from its header, before any payload arrives.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(err(huge), 1009);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Masked frames of any opcode, flag and length, valid or not, to reach deep states.
        fn frames() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                (
                    any::<bool>(),
                    0u8..16,
                    proptest::collection::vec(any::<u8>(), 0..300),
                ),
                0..8,
            )
            .prop_map(|fs| {
                fs.into_iter()
                    .flat_map(|(fin, op, p)| client_frame(fin, op, &p))
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Arbitrary bytes, fed in arbitrary pieces: an event or a close code, never a panic.
            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..2048), frames()],
                cuts in proptest::collection::vec(any::<usize>(), 0..6),
            ) {
                let mut d = Decoder::new(256);
                let mut out = VecDeque::new();
                let mut at = 0;
                let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                points.sort_unstable();
                points.push(bytes.len());
                for p in points {
                    if let Err(e) = d.feed(&bytes[at..p], &mut out) {
                        prop_assert!(matches!(e.close().0, 1002 | 1007 | 1009));
                        break;
                    }
                    at = p;
                }
            }
        }
    }

    #[test]
    fn binary_messages_are_reported_without_their_payload() {
        let mut d = Decoder::new(100);
        assert_eq!(
            decode(&mut d, &client_frame(true, OP_BINARY, b"\x00\x01")).unwrap(),
            [Event::Binary]
        );
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(header(OP_TEXT, 5).0[..2], [0x81, 5]);
        assert_eq!(header(OP_TEXT, 300).0[..4], [0x81, 126, 1, 44]);
        let (h, n) = header(OP_TEXT, 70_000);
        assert_eq!((h[1], n), (127, 10));
        assert_eq!(u64::from_be_bytes(h[2..10].try_into().unwrap()), 70_000);
    }

    #[test]
    fn upgrade_requests_get_the_rfc_accept_key() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        // The example of RFC 6455, section 1.3.
        assert_eq!(accept_key(&h).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        h.remove(header::UPGRADE);
        assert!(accept_key(&h).is_err());
    }

    #[tokio::test]
    async fn queued_frames_reach_the_peer_in_order_as_valid_frames() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut w = Writer::default();
        let big = "y".repeat(200_000);
        w.text("one".into());
        w.text(big.clone().into());
        w.ping();
        w.close(4008, "slow consumer");
        while w.pending() {
            server.writable().await.unwrap();
            w.flush(&server).unwrap();
        }
        drop(server);
        let all = client.await.unwrap();
        let mut expect = vec![0x81, 3];
        expect.extend_from_slice(b"one");
        expect.extend_from_slice(&header(OP_TEXT, big.len()).0[..10]);
        expect.extend_from_slice(big.as_bytes());
        expect.extend_from_slice(&[0x89, 0]);
        expect.extend_from_slice(&[0x88, 15, 0x0f, 0xa8]);
        expect.extend_from_slice(b"slow consumer");
        assert_eq!(all.len(), expect.len());
        assert!(all == expect);
    }
}
