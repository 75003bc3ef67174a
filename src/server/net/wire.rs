//! WebSocket on the wire (RFC 6455, server side): handshake, client frames in, queued frames out.
//!
//! Client frames are masked; queued frames are written in one `writev`.
//!
//! The server writes its own frames so that a fan-out frame is serialised once and shared by
//! every connection (`Utf8Bytes` is reference counted): each connection only adds a 2–10 byte
//! header and hands everything queued to the kernel in one vectored write, with no copy into a
//! per-connection buffer. An idle connection holds no buffer at all: reads go through a stack
//! buffer, and only a frame split across reads is kept until it is complete.
//!
//! Client frames are checked as early as their bytes allow: a header at once, text at its first
//! byte that cannot be UTF-8 (even in a frame not complete yet), a close frame's code and reason.
//! `tests/autobahn.rs` runs the Autobahn conformance cases against it (`docs/AUTOBAHN.md`).

use crate::server::chat::text::Utf8Bytes;
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
    #[error("close code {0}, which no peer may send")]
    BadCloseCode(u16),
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
            WireError::BadCloseCode(_) => (1002, "invalid close code"),
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
    /// A binary message: its payload if the decoder keeps them ([`Decoder::keeping_binary`]),
    /// else empty.
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// The client closes, with its code if it gave one (always an allowed one).
    Close(Option<u16>),
}

/// May a peer close with `code`? The codes of RFC 6455 section 7.4.1 and the IANA registry
/// that an endpoint may send, and the ranges for libraries (3000–3999) and applications.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reassembles client frames from whatever the socket delivers.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    /// Bytes of a frame not complete yet (empty, without capacity, between frames).
    partial: Vec<u8>,
    /// A fragmented message being assembled (boxed: most connections never send one).
    message: Option<Box<Message>>,
    /// Binary payloads are handed on (the echo harness), not dropped (chat).
    keep_binary: bool,
    /// A close frame came: whatever follows it is ignored.
    closed: bool,
}

/// The frames of a fragmented message so far.
#[derive(Debug)]
struct Message {
    text: bool,
    /// Unmasked payload; for text, UTF-8 up to a character the next frame may finish.
    body: Vec<u8>,
}

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

impl Decoder {
    /// Frames and messages larger than `max` bytes are refused; binary payloads are dropped.
    pub fn new(max: usize) -> Self {
        Decoder {
            max,
            partial: Vec::new(),
            message: None,
            keep_binary: false,
            closed: false,
        }
    }

    /// The same, handing binary payloads on in [`Event::Binary`].
    pub fn keeping_binary(max: usize) -> Self {
        Decoder {
            keep_binary: true,
            ..Decoder::new(max)
        }
    }

    /// Decodes the frames completed by `data` into `out`. Text fails as soon as a byte
    /// cannot be UTF-8, even before its frame is complete.
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<Event>) -> Result<(), WireError> {
        if self.closed {
            return Ok(());
        }
        if self.partial.is_empty() {
            let used = self.frames(data, 0, out)?;
            if !self.closed {
                self.partial.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            let seen = buf.len();
            buf.extend_from_slice(data);
            let used = self.frames(&buf, seen, out)?;
            buf.drain(..used);
            self.partial = buf;
            if self.closed {
                self.partial.clear();
            }
        }
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// Decodes every complete frame at the start of `buf`, up to a close; returns the bytes
    /// used. The first `seen` bytes were fed before (and checked as far as they went).
    fn frames(
        &mut self,
        buf: &[u8],
        seen: usize,
        out: &mut VecDeque<Event>,
    ) -> Result<usize, WireError> {
        let mut at = 0;
        while !self.closed {
            match self.frame(&buf[at..], seen.saturating_sub(at), out)? {
                Some(used) => at += used,
                None => break,
            }
        }
        Ok(at)
    }

    /// Decodes one frame if `buf` holds all of it. A frame that is not complete yet is
    /// checked as far as it goes: its header, and the text in it that `seen` did not cover.
    fn frame(
        &mut self,
        buf: &[u8],
        seen: usize,
        out: &mut VecDeque<Event>,
    ) -> Result<Option<usize>, WireError> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        if b0 & 0x70 != 0 {
            return Err(WireError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(WireError::Protocol("unmasked client frame"));
        }
        let (fin, op) = (b0 & 0x80 != 0, b0 & 0x0f);
        let control = op >= 8;
        match op {
            OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(WireError::Protocol("unknown opcode")),
        }
        if control && !fin {
            return Err(WireError::Protocol("fragmented control frame"));
        }
        match (op, &self.message) {
            (OP_TEXT | OP_BINARY, Some(_)) => {
                return Err(WireError::Protocol("new message inside a fragmented one"))
            }
            (OP_CONT, None) => return Err(WireError::Protocol("continuation without a message")),
            _ => {}
        }
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
        if control && len > 125 {
            return Err(WireError::Protocol("control frame over 125 bytes"));
        }
        let so_far = match (op, &self.message) {
            (OP_CONT, Some(m)) => m.body.len() as u64,
            _ => 0,
        };
        if len.saturating_add(so_far) > self.max as u64 {
            return Err(WireError::TooBig(self.max));
        }
        let len = len as usize;
        let Some(mask) = buf.get(head..head + 4) else {
            return Ok(None);
        };
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        let text =
            op == OP_TEXT || (op == OP_CONT && self.message.as_ref().is_some_and(|m| m.text));
        let Some(frame) = buf.get(..head + 4 + len) else {
            if text {
                let body = match &self.message {
                    Some(m) => &m.body[..],
                    None => &[],
                };
                let payload = &buf[head + 4..];
                check_unfinished_frame(body, payload, mask, seen.saturating_sub(head + 4))?;
            }
            return Ok(None);
        };
        let mut payload = frame[head + 4..].to_vec();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        match op {
            OP_TEXT if fin => out.push_back(Event::Text(into_text(payload)?)),
            OP_TEXT | OP_BINARY if !fin => {
                if text {
                    check_utf8(&[], &payload, false)?;
                }
                self.message = Some(Box::new(Message {
                    text,
                    body: payload,
                }));
            }
            OP_BINARY => out.push_back(Event::Binary(self.binary(payload))),
            OP_CONT => {
                let Some(mut m) = self.message.take() else {
                    return Err(WireError::Protocol("continuation without a message"));
                };
                if m.text {
                    check_utf8(&m.body, &payload, fin)?;
                }
                m.body.extend_from_slice(&payload);
                match (fin, m.text) {
                    (false, _) => self.message = Some(m),
                    (true, true) => out.push_back(Event::Text(into_text(m.body)?)),
                    (true, false) => out.push_back(Event::Binary(self.binary(m.body))),
                }
            }
            OP_CLOSE => {
                out.push_back(Event::Close(close_code(&payload)?));
                self.closed = true;
                self.message = None;
            }
            OP_PING => out.push_back(Event::Ping(payload.into())),
            _ => out.push_back(Event::Pong),
        }
        Ok(Some(head + 4 + len))
    }

    fn binary(&self, payload: Vec<u8>) -> Bytes {
        if self.keep_binary {
            payload.into()
        } else {
            Bytes::new()
        }
    }
}

/// The code of a close frame's payload, if it has one. A reason that is not UTF-8, or a
/// code no peer may send, fails the connection.
fn close_code(payload: &[u8]) -> Result<Option<u16>, WireError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WireError::Protocol("one-byte close payload")),
        [hi, lo, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| WireError::BadUtf8)?;
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(WireError::BadCloseCode(code));
            }
            Ok(Some(code))
        }
    }
}

fn into_text(payload: Vec<u8>) -> Result<String, WireError> {
    String::from_utf8(payload).map_err(|_| WireError::BadUtf8)
}

/// Checks the part of a text frame that has arrived and was not checked yet: its payload
/// beyond `checked`, after the message's `body` and the payload's first `checked` bytes.
fn check_unfinished_frame(
    body: &[u8],
    payload: &[u8],
    mask: [u8; 4],
    checked: usize,
) -> Result<(), WireError> {
    let checked = checked.min(payload.len());
    if checked == payload.len() {
        return Ok(());
    }
    // The last three bytes before the new ones: enough to finish a cut character.
    let mut before = [0u8; 3];
    let from_payload = checked.min(3);
    let from_body = (3 - from_payload).min(body.len());
    before[..from_body].copy_from_slice(&body[body.len() - from_body..]);
    for (k, i) in (checked - from_payload..checked).enumerate() {
        before[from_body + k] = payload[i] ^ mask[i & 3];
    }
    let new: Vec<u8> = (checked..payload.len())
        .map(|i| payload[i] ^ mask[i & 3])
        .collect();
    check_utf8(&before[..from_body + from_payload], &new, false)
}

/// Checks text bytes `new` that follow `before` (UTF-8 already, but for a character cut at
/// its end): fails at the first byte that cannot be UTF-8. A character cut at the end of
/// `new` is fine unless `last`.
fn check_utf8(before: &[u8], new: &[u8], last: bool) -> Result<(), WireError> {
    let cut = unfinished_char(before);
    let mut rest = new;
    if let Some(&lead) = cut.first() {
        let want = utf8_len(lead) - cut.len();
        let take = want.min(new.len());
        let mut ch = [0u8; 4];
        ch[..cut.len()].copy_from_slice(cut);
        ch[cut.len()..cut.len() + take].copy_from_slice(&new[..take]);
        utf8_prefix(&ch[..cut.len() + take], last || take == want)?;
        rest = &new[take..];
    }
    utf8_prefix(rest, last)
}

/// Is `bytes` UTF-8 (or, unless `whole`, the start of it, cut inside a character)?
fn utf8_prefix(bytes: &[u8], whole: bool) -> Result<(), WireError> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) if !whole && e.error_len().is_none() => Ok(()),
        Err(_) => Err(WireError::BadUtf8),
    }
}

/// The bytes of a character cut at the end of `text` (UTF-8 up to there), if any.
fn unfinished_char(text: &[u8]) -> &[u8] {
    let start = text.len().saturating_sub(3);
    for i in (start..text.len()).rev() {
        if text[i] & 0xc0 != 0x80 {
            return if text.len() - i < utf8_len(text[i]) {
                &text[i..]
            } else {
                &[]
            };
        }
    }
    &[]
}

/// The length of the UTF-8 character that starts with `lead` (1 for a byte that cannot).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// A frame waiting to be written.
#[derive(Debug)]
enum Out {
    Text(Utf8Bytes),
    /// A binary message or a control frame.
    Bytes(u8, Bytes),
}

impl Out {
    fn parts(&self) -> (u8, &[u8]) {
        match self {
            Out::Text(t) => (OP_TEXT, t.as_bytes()),
            Out::Bytes(op, p) => (*op, p),
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

    pub fn binary(&mut self, payload: Bytes) {
        self.queue.push_back(Out::Bytes(OP_BINARY, payload));
    }

    pub fn ping(&mut self) {
        self.queue.push_back(Out::Bytes(OP_PING, Bytes::new()));
    }

    pub fn pong(&mut self, payload: Bytes) {
        self.queue.push_back(Out::Bytes(OP_PONG, payload));
    }

    pub fn close(&mut self, code: u16, reason: &str) {
        let mut p = code.to_be_bytes().to_vec();
        // A control frame carries at most 125 bytes: cut the reason at a character boundary.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        p.extend_from_slice(&reason.as_bytes()[..end]);
        self.queue.push_back(Out::Bytes(OP_CLOSE, p.into()));
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

    /// Our decoder against tungstenite's (a full `WebSocket` in the server role over an
    /// in-memory stream), on the same streams of mostly valid-looking frames: the same
    /// messages, then the same end (more input wanted, closed, or the same class of error).
    ///
    /// Expected differences, normalised here:
    /// - A close code no peer may send: we fail with [`WireError::BadCloseCode`] (answered
    ///   with 1002); tungstenite hands on a close with code 1002 instead. Both read as
    ///   `Close(Some(1002))`. Tungstenite also refuses 1014 (registered with IANA later),
    ///   which we accept: our 1014 reads as 1002 too.
    /// - A frame that declares more than the limit *and* breaks the protocol: we check the
    ///   protocol first, tungstenite the size. In a stream with such a frame either class
    ///   is accepted.
    /// - Timing: we fail at a frame's header, or at its first byte that cannot be UTF-8;
    ///   tungstenite once the frame is complete. Streams here end with complete frames (but
    ///   for a last one bigger than the limit, which both refuse from its header), so both
    ///   see every frame in full.
    mod differential {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::{select, Index};
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
        use tokio_tungstenite::tungstenite::{Error, Message};

        /// Both decoders' limit for a frame and a message.
        const MAX: usize = 1024;

        #[derive(Debug, Clone, PartialEq, Eq)]
        enum Seen {
            Text(String),
            Binary(Vec<u8>),
            Ping(Vec<u8>),
            Pong,
            Close(Option<u16>),
        }

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum End {
            /// Every byte is used and more are wanted.
            More,
            Closed,
            Protocol,
            Utf8,
            TooBig,
        }

        /// How a frame's length is written: the shortest form, or 16 or 64 bits regardless.
        #[derive(Debug, Clone, Copy)]
        enum Form {
            Shortest,
            U16,
            U64,
        }

        #[derive(Debug, Clone)]
        struct Spec {
            fin: bool,
            rsv: u8,
            op: u8,
            mask: Option<[u8; 4]>,
            form: Form,
            payload: Vec<u8>,
        }

        fn encode(s: &Spec, out: &mut Vec<u8>) {
            out.push(u8::from(s.fin) << 7 | s.rsv << 4 | s.op);
            let m = if s.mask.is_some() { 0x80 } else { 0 };
            let n = s.payload.len();
            match s.form {
                Form::Shortest if n < 126 => out.push(m | n as u8),
                Form::Shortest | Form::U16 if n <= 0xffff => {
                    out.push(m | 126);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                _ => {
                    out.push(m | 127);
                    out.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            match s.mask {
                Some(k) => {
                    out.extend_from_slice(&k);
                    out.extend(s.payload.iter().enumerate().map(|(i, b)| b ^ k[i & 3]));
                }
                None => out.extend_from_slice(&s.payload),
            }
        }

        fn text() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<char>(), 0..40)
                .prop_map(|c| c.into_iter().collect::<String>().into_bytes())
        }

        fn payload() -> impl Strategy<Value = Vec<u8>> {
            let codes = select(vec![
                0u16, 999, 1000, 1001, 1002, 1004, 1005, 1006, 1007, 1011, 1012, 1014, 1015, 1016,
                2999, 3000, 4999, 5000, 65535,
            ]);
            prop_oneof![
                4 => text(),
                2 => proptest::collection::vec(any::<u8>(), 0..200),
                // Text with one byte changed: often no longer UTF-8.
                2 => (text(), any::<Index>(), any::<u8>()).prop_map(|(mut t, i, b)| {
                    if !t.is_empty() {
                        let at = i.index(t.len());
                        t[at] = b;
                    }
                    t
                }),
                // A close payload: a code, then a reason (text or bytes).
                2 => (prop_oneof![codes, any::<u16>()], prop_oneof![text(), proptest::collection::vec(any::<u8>(), 0..8)])
                    .prop_map(|(c, r)| [&c.to_be_bytes()[..], &r].concat()),
                1 => proptest::collection::vec(any::<u8>(), 120..1100),
            ]
        }

        fn frame() -> impl Strategy<Value = Spec> {
            (
                proptest::bool::weighted(0.8),
                prop_oneof![9 => Just(0u8), 1 => 1u8..8],
                prop_oneof![8 => select(vec![0u8, 1, 2, 8, 9, 10]), 1 => 0u8..16],
                proptest::option::weighted(0.95, any::<[u8; 4]>()),
                select(vec![Form::Shortest, Form::Shortest, Form::U16, Form::U64]),
                payload(),
            )
                .prop_map(|(fin, rsv, op, mask, form, payload)| Spec {
                    fin,
                    rsv,
                    op,
                    mask,
                    form,
                    payload,
                })
        }

        /// A valid-looking fragmented message: its payload cut anywhere (inside characters
        /// too), with a control frame among the fragments now and then.
        fn fragmented() -> impl Strategy<Value = Vec<Spec>> {
            (
                any::<bool>(),
                payload(),
                proptest::collection::vec(any::<Index>(), 0..4),
                proptest::option::weighted(0.3, (any::<Index>(), frame())),
                any::<[u8; 4]>(),
            )
                .prop_map(|(is_text, body, cuts, control, mask)| {
                    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
                    at.sort_unstable();
                    at.push(body.len());
                    let mut specs = Vec::new();
                    let mut from = 0;
                    for (i, to) in at.iter().enumerate() {
                        specs.push(Spec {
                            fin: i + 1 == at.len(),
                            rsv: 0,
                            op: match (i, is_text) {
                                (0, true) => OP_TEXT,
                                (0, false) => OP_BINARY,
                                _ => OP_CONT,
                            },
                            mask: Some(mask),
                            form: Form::Shortest,
                            payload: body[from..*to].to_vec(),
                        });
                        from = *to;
                    }
                    if let Some((i, mut c)) = control {
                        c.op |= 8;
                        c.fin = true;
                        c.payload.truncate(125);
                        specs.insert(i.index(specs.len() + 1), c);
                    }
                    specs
                })
        }

        /// A stream: frames and fragmented messages, sometimes ending with the header of a
        /// frame bigger than the limit (and 4 bytes, a mask or the payload's start); and
        /// whether any frame in it is bigger than the limit.
        fn stream() -> impl Strategy<Value = (Vec<u8>, bool)> {
            (
                proptest::collection::vec(
                    prop_oneof![3 => frame().prop_map(|f| vec![f]), 2 => fragmented()],
                    0..6,
                ),
                proptest::option::weighted(
                    0.1,
                    (any::<u8>(), any::<bool>(), (MAX as u64 + 1)..u64::MAX),
                ),
            )
                .prop_map(|(units, huge)| {
                    let mut bytes = Vec::new();
                    for f in units.iter().flatten() {
                        encode(f, &mut bytes);
                    }
                    if let Some((b0, masked, len)) = huge {
                        bytes.push(b0);
                        bytes.push(if masked { 0xff } else { 0x7f });
                        bytes.extend_from_slice(&len.to_be_bytes());
                        bytes.extend_from_slice(&[1, 2, 3, 4]);
                    }
                    let big = units.iter().flatten().any(|f| f.payload.len() > MAX);
                    (bytes, big || huge.is_some())
                })
        }

        /// Our decoder, fed `bytes` in pieces cut at `cuts`.
        fn ours(bytes: &[u8], cuts: &[Index]) -> (Vec<Seen>, End) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            points.push(bytes.len());
            let mut d = Decoder::keeping_binary(MAX);
            let mut events = VecDeque::new();
            let mut end = End::More;
            let mut at = 0;
            for p in points {
                match d.feed(&bytes[at..p], &mut events) {
                    Ok(()) => at = p,
                    Err(WireError::BadCloseCode(_)) => {
                        events.push_back(Event::Close(Some(1002)));
                        break;
                    }
                    Err(e) => {
                        end = match e {
                            WireError::TooBig(_) => End::TooBig,
                            WireError::BadUtf8 => End::Utf8,
                            _ => End::Protocol,
                        };
                        break;
                    }
                }
            }
            let mut seen = Vec::new();
            for e in events {
                seen.push(match e {
                    Event::Text(t) => Seen::Text(t),
                    Event::Binary(b) => Seen::Binary(b.to_vec()),
                    Event::Ping(p) => Seen::Ping(p.to_vec()),
                    Event::Pong => Seen::Pong,
                    Event::Close(Some(1014)) => Seen::Close(Some(1002)),
                    Event::Close(code) => Seen::Close(code),
                });
                if let Some(Seen::Close(_)) = seen.last() {
                    return (seen, End::Closed);
                }
            }
            (seen, end)
        }

        /// An in-memory client: reads `bytes`, then would block; takes whatever is written.
        struct Memory(std::io::Cursor<Vec<u8>>);

        impl std::io::Read for Memory {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                }
            }
        }

        impl std::io::Write for Memory {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        fn theirs(bytes: &[u8]) -> (Vec<Seen>, End) {
            let config = WebSocketConfig::default()
                .max_frame_size(Some(MAX))
                .max_message_size(Some(MAX));
            let memory = Memory(std::io::Cursor::new(bytes.to_vec()));
            let mut ws = WebSocket::from_raw_socket(memory, Role::Server, Some(config));
            let mut seen = Vec::new();
            loop {
                let end = match ws.read() {
                    Ok(Message::Text(t)) => Seen::Text(t.as_str().into()),
                    Ok(Message::Binary(b)) => Seen::Binary(b.to_vec()),
                    Ok(Message::Ping(p)) => Seen::Ping(p.to_vec()),
                    Ok(Message::Pong(_)) => Seen::Pong,
                    Ok(Message::Close(c)) => Seen::Close(c.map(|c| u16::from(c.code))),
                    Ok(Message::Frame(_)) => unreachable!("only written, never read"),
                    Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        return (seen, End::More)
                    }
                    Err(Error::ConnectionClosed) => return (seen, End::Closed),
                    Err(Error::Protocol(_)) => return (seen, End::Protocol),
                    Err(Error::Utf8(_)) => return (seen, End::Utf8),
                    Err(Error::Capacity(_)) => return (seen, End::TooBig),
                    Err(e) => panic!("unexpected error from tungstenite: {e}"),
                };
                seen.push(end);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn our_decoder_reads_what_tungstenite_reads(
                (bytes, oversize) in stream(),
                cuts in proptest::collection::vec(any::<Index>(), 0..6),
            ) {
                let (our_seen, our_end) = ours(&bytes, &cuts);
                let (their_seen, their_end) = theirs(&bytes);
                prop_assert_eq!(&our_seen, &their_seen);
                let size_or_protocol = |e| matches!(e, End::Protocol | End::TooBig);
                if !(oversize && size_or_protocol(our_end) && size_or_protocol(their_end)) {
                    prop_assert_eq!(our_end, their_end);
                }
            }
        }
    }

    #[test]
    fn binary_messages_are_reported_without_their_payload() {
        let mut d = Decoder::new(100);
        assert_eq!(
            decode(&mut d, &client_frame(true, OP_BINARY, b"\x00\x01")).unwrap(),
            [Event::Binary(Bytes::new())]
        );
        let mut echo = Decoder::keeping_binary(100);
        let mut s = client_frame(false, OP_BINARY, b"\x00");
        s.extend(client_frame(true, OP_CONT, b"\x01"));
        assert_eq!(
            decode(&mut echo, &s).unwrap(),
            [Event::Binary(Bytes::from_static(b"\x00\x01"))]
        );
    }

    #[test]
    fn an_idle_decoder_is_no_bigger_than_before_it_kept_binary_payloads() {
        // 64 bytes: the size before `keep_binary`, `closed` and the boxed message.
        assert!(std::mem::size_of::<Decoder>() <= 64);
    }

    /// A close frame with `code` and `reason`.
    fn close(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        client_frame(true, OP_CLOSE, &p)
    }

    #[test]
    fn close_codes_no_peer_may_send_are_refused_with_1002() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let got = decode(&mut Decoder::new(100), &close(code, b""));
            assert_eq!(got, Err(WireError::BadCloseCode(code)), "{code}");
            assert_eq!(WireError::BadCloseCode(code).close().0, 1002);
        }
        for code in [
            1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 3999, 4000, 4999,
        ] {
            let got = decode(&mut Decoder::new(100), &close(code, b"bye"));
            assert_eq!(got, Ok(vec![Event::Close(Some(code))]), "{code}");
        }
        let got = decode(&mut Decoder::new(100), &client_frame(true, OP_CLOSE, b""));
        assert_eq!(got, Ok(vec![Event::Close(None)]));
    }

    #[test]
    fn a_close_reason_that_is_not_utf8_is_refused_with_1007() {
        let got = decode(
            &mut Decoder::new(100),
            &close(1000, b"\xce\xba\xed\xa0\x80"),
        );
        assert_eq!(got.unwrap_err().close().0, 1007);
        let got = decode(&mut Decoder::new(100), &close(1000, "κόσμε".as_bytes()));
        assert_eq!(got, Ok(vec![Event::Close(Some(1000))]));
    }

    #[test]
    fn nothing_after_a_close_frame_is_decoded() {
        let mut d = Decoder::new(100);
        let mut s = close(1000, b"");
        s.extend(client_frame(true, OP_PING, b"late"));
        s.extend([0xff; 8]);
        assert_eq!(decode(&mut d, &s[..3]).unwrap(), []);
        assert_eq!(decode(&mut d, &s[3..]).unwrap(), [Event::Close(Some(1000))]);
        assert_eq!(decode(&mut d, b"\xff\xff").unwrap(), []);
        assert_eq!(d.partial.capacity(), 0);
    }

    #[test]
    fn fragmented_text_fails_at_the_first_fragment_that_cannot_be_utf8() {
        // Autobahn 6.4.1: valid, then U+110000 (F4 90 80 80), then valid again.
        let mut d = Decoder::new(100);
        let first = client_frame(false, OP_TEXT, "κόσμε".as_bytes());
        assert_eq!(decode(&mut d, &first).unwrap(), []);
        let second = client_frame(false, OP_CONT, b"\xf4\x90\x80\x80");
        assert_eq!(decode(&mut d, &second), Err(WireError::BadUtf8));
        // A character cut between fragments is fine; a cut one at the end is not.
        let mut d = Decoder::new(100);
        let mut s = client_frame(false, OP_TEXT, b"a\xe2");
        s.extend(client_frame(false, OP_CONT, b"\x82"));
        s.extend(client_frame(true, OP_CONT, b"\xacb"));
        assert_eq!(decode(&mut d, &s).unwrap(), [Event::Text("a€b".into())]);
        let mut d = Decoder::new(100);
        let mut s = client_frame(false, OP_TEXT, b"a");
        s.extend(client_frame(true, OP_CONT, b"\xe2\x82"));
        assert_eq!(decode(&mut d, &s), Err(WireError::BadUtf8));
    }

    #[test]
    fn text_fails_as_soon_as_a_byte_of_an_unfinished_frame_cannot_be_utf8() {
        // Autobahn 6.4.3: one frame, sent in three pieces; the second one breaks it.
        let text = [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"[..],
            b"\xf4\x90\x80\x80",
            b"edited",
        ]
        .concat();
        let frame = client_frame(true, OP_TEXT, &text);
        let mut d = Decoder::new(100);
        assert_eq!(decode(&mut d, &frame[..6 + 11]).unwrap(), []);
        assert_eq!(
            decode(&mut d, &frame[6 + 11..6 + 13]),
            Err(WireError::BadUtf8)
        );
        // Byte by byte, a valid text frame inside a fragmented message still decodes.
        let mut d = Decoder::new(100);
        let mut s = client_frame(false, OP_TEXT, "ab\u{10348}".as_bytes());
        s.extend(client_frame(true, OP_CONT, "€\u{10348}c".as_bytes()));
        let mut events = Vec::new();
        for b in &s {
            events.extend(decode(&mut d, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(events, [Event::Text("ab\u{10348}€\u{10348}c".into())]);
    }

    #[test]
    fn the_utf8_check_resumes_inside_a_cut_character() {
        assert_eq!(unfinished_char(b"ab\xf0\x90"), b"\xf0\x90");
        assert_eq!(unfinished_char("a€".as_bytes()), b"");
        assert_eq!(unfinished_char("\u{10348}".as_bytes()), b"");
        assert!(check_utf8(b"\xf0\x90", b"\x8d\x88z", true).is_ok());
        assert!(check_utf8(b"\xf0\x90", b"\x8d", false).is_ok());
        assert!(check_utf8(b"\xf0\x90", b"\x8d", true).is_err());
        assert!(check_utf8(b"\xf0\x90", b"z", false).is_err());
        assert!(
            check_utf8(b"", b"\xed\xa0", false).is_err(),
            "a surrogate fails at once"
        );
        assert!(check_utf8(b"", b"\x80", false).is_err());
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
