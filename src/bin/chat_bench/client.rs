//! Joining and connecting, from the `join_room` POST up to the welcome.
//!
//! The POST goes over a hand-written HTTP/1.1 keep-alive connection, then the WebSocket opens
//! from a chosen 127.0.0.x source address and waits for the welcome (or, for a peer without
//! sessions, only for the upgrade).

use chatroom::protocol::pages::JoinOutcome;
use chatroom::protocol::{ClientFrame, ServerFrame};

use crate::peer::Peer;
use futures::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Why a session or a connection could not be set up. The text is what the report counts by.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn fail<T>(what: impl Into<String>) -> Result<T, SetupError> {
    Err(SetupError(what.into()))
}

/// The `k`-th loopback source address: 127.0.0.1, 127.0.0.2, …
pub fn source_addr(k: usize) -> IpAddr {
    let n = (k as u32 + 1).min(0x00ff_fffe);
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n))
}

/// A TCP connection to `target` from `source` (port chosen at connect time, so that the
/// same local port can serve different destinations: `IP_BIND_ADDRESS_NO_PORT`).
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` for its stated length; the descriptor is open.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One keep-alive HTTP/1.1 connection for `POST /api/join`, reopened when the server closes it.
pub struct Sessions {
    target: SocketAddr,
    source: IpAddr,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

/// A parsed HTTP response: status, the first `set-cookie` (its `name=value` part) and the body.
struct Response {
    status: u16,
    cookie: Option<String>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Sessions {
    pub fn new(target: SocketAddr, source: IpAddr) -> Self {
        Sessions {
            target,
            source,
            conn: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Joins `room` as `name`; returns the session cookie (`chat_<room>=<token>`).
    pub async fn join(&mut self, room: &str, name: &str) -> Result<String, SetupError> {
        let body = format!("room={room}&name={name}&avatar=fox");
        let request = format!(
            "POST /api/join HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.target,
            body.len()
        );
        let response = match self.exchange(request.as_bytes()).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return fail(format!("join POST: {}", io_kind(&e)));
            }
        };
        if !response.keep_alive {
            self.conn = None;
        }
        if response.status != 200 {
            return fail(format!("join POST: HTTP {}", response.status));
        }
        match serde_json::from_slice::<JoinOutcome>(&response.body) {
            Ok(JoinOutcome::Joined(_) | JoinOutcome::Created { .. }) => {}
            Ok(JoinOutcome::Refused { field, message, .. }) => {
                return fail(format!("join refused ({field:?}): {message}"))
            }
            Err(_) => return fail("join POST: unreadable answer"),
        }
        match response.cookie {
            Some(c) => Ok(c),
            None => fail("join POST: no set-cookie"),
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<Response> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self
                .conn
                .insert(connect_from(self.source, self.target).await?),
        };
        conn.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(invalid("response head too long"));
            }
            if read_more(conn, &mut self.buf).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before the response",
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("no status line"))?;
        let (mut cookie, mut length, mut keep_alive) = (None, None, true);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "set-cookie" if cookie.is_none() => {
                    cookie = value.split(';').next().map(|c| c.trim().to_string())
                }
                "content-length" => length = value.parse::<usize>().ok(),
                "connection" if value.eq_ignore_ascii_case("close") => keep_alive = false,
                "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                    return Err(invalid("chunked responses are not supported"))
                }
                _ => {}
            }
        }
        let body = match length {
            Some(n) => {
                while self.buf.len() < head_end + n {
                    if read_more(conn, &mut self.buf).await? == 0 {
                        return Err(invalid("body shorter than Content-Length"));
                    }
                }
                self.buf[head_end..head_end + n].to_vec()
            }
            None => {
                // No length: the body runs to the end of the connection.
                while read_more(conn, &mut self.buf).await? > 0 {}
                keep_alive = false;
                self.buf[head_end..].to_vec()
            }
        };
        Ok(Response {
            status,
            cookie,
            body,
            keep_alive,
        })
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = conn.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// A short, countable description of an I/O error (no addresses or ports in it).
pub fn io_kind(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("{:?} (os error {code})", e.kind()),
        None => format!("{:?}: {e}", e.kind()),
    }
}

/// WebSocket settings of the tool: modest buffers, since thousands of sockets are open.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// Opens the WebSocket of `name` in `room` from `source`, with the session cookie if there is
/// one. With our server it then sends `join` and waits for the welcome (frames before it other
/// than the welcome, none expected, are skipped); a peer without sessions is ready once upgraded.
pub async fn open_socket(
    peer: Peer,
    target: SocketAddr,
    source: IpAddr,
    room: &str,
    name: &str,
    cookie: Option<&str>,
) -> Result<Ws, SetupError> {
    let stream = match connect_from(source, target).await {
        Ok(s) => s,
        Err(e) => return fail(format!("connect: {}", io_kind(&e))),
    };
    let url = format!("ws://{target}{}", peer.ws_path(room, name));
    let mut request = match url.into_client_request() {
        Ok(r) => r,
        Err(e) => return fail(format!("request: {e}")),
    };
    if let Some(cookie) = cookie {
        match cookie.parse() {
            Ok(value) => {
                request.headers_mut().insert("cookie", value);
            }
            Err(_) => return fail("cookie is not a header value"),
        }
    }
    let mut ws =
        match tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await
        {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                return fail(format!("upgrade refused: HTTP {}", resp.status().as_u16()))
            }
            Err(e) => return fail(format!("upgrade: {}", short_ws_error(&e))),
        };
    if !peer.has_sessions() {
        return Ok(ws);
    }
    let join = ClientFrame::Join { after: None }.encode();
    if let Err(e) = ws.send(Message::text(join)).await {
        return fail(format!("send join: {}", short_ws_error(&e)));
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                // The welcome of a big room carries its whole member list: recognise it by its
                // tag instead of decoding it all (the server writes `type` first).
                if text.as_str().starts_with(r#"{"type":"welcome""#) {
                    return Ok(ws);
                }
                match ServerFrame::decode(text.as_str()) {
                    Ok(ServerFrame::Welcome { .. }) => return Ok(ws),
                    Ok(ServerFrame::Error { code, .. }) => {
                        return fail(format!("join refused: {code:?}"))
                    }
                    Ok(_) => continue,
                    Err(_) => return fail("join: unreadable frame"),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return fail(format!("closed before welcome: {code}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return fail(format!("before welcome: {}", short_ws_error(&e))),
            None => return fail("ended before welcome"),
        }
    }
}

/// A WebSocket error without addresses, for counting.
pub fn short_ws_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(io) => io_kind(io),
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        Error::Protocol(p) => format!("protocol: {p}"),
        other => other.to_string(),
    }
}
