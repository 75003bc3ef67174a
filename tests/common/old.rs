//! An old PHP/Swoole chat client: a WebSocket on `/` speaking its JSON protocol, frames read as JSON values.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{assert_quiet, close_code, next_text, Socket, WAIT};

pub struct OldClient {
    pub ws: Socket,
}

impl OldClient {
    /// Connects to `ws://addr` with no path, as the old page did.
    pub async fn connect(addr: SocketAddr) -> OldClient {
        Self::connect_from(addr, None)
            .await
            .expect("upgrade accepted")
    }

    /// Connects with an `Origin` header, as a page would; the HTTP status if refused.
    pub async fn connect_from(addr: SocketAddr, origin: Option<&str>) -> Result<OldClient, u16> {
        let mut req = format!("ws://{addr}").into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(OldClient { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect: {e}"),
        }
    }

    /// Connects and sends the open frame.
    pub async fn opened(addr: SocketAddr, username: &str, avatar: &str) -> OldClient {
        let mut c = Self::connect(addr).await;
        c.open(username, avatar).await;
        c
    }

    pub async fn open(&mut self, username: &str, avatar: &str) {
        self.send_json(json!({"token": "simplechat_open", "username": username, "avatar": avatar}))
            .await;
    }

    /// A chat message as the old page sent it: with its own idea of who it is and the time.
    pub async fn say(&mut self, data: &str) {
        self.send_json(json!({"token": "simplechat", "username": "whoever", "avatar": "x", "data": data, "time": "9:5"}))
            .await;
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// The next text frame, as JSON (pings skipped).
    pub async fn recv(&mut self) -> Value {
        serde_json::from_str(&next_text(&mut self.ws).await).expect("JSON")
    }

    /// The next frame whose `action` is `action`, skipping others.
    pub async fn next_action(&mut self, action: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["action"] == action {
                return v;
            }
        }
    }

    /// Asserts that no text frame arrives within `d`.
    pub async fn quiet_for(&mut self, d: Duration) {
        assert_quiet(&mut self.ws, d).await
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        close_code(&mut self.ws).await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives, so that the leave is under way.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }
}
