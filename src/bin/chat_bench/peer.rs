//! The protocol adapter: every difference between the servers the tool can talk to.
//!
//! Which server it is decides the set-up, the WebSocket path and the frames sent and received;
//! the rest of the tool is the same for all peers.

use chatroom::protocol::{ClientFrame, ServerFrame};
use serde::{Deserialize, Serialize};

/// The server under test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// This project's server: session POST, `/ws/<room>`, `join`, welcome.
    #[default]
    Ours,
    /// The minimal `ws` broadcast server of bench/peers/node-ws: `/ws/<room>?name=<name>`,
    /// no sessions, no welcome; `{"id","text"}` in, `{"name","id","text"}` out.
    NodeWs,
}

/// A frame from the server, as far as the accounting cares.
pub enum Incoming {
    /// A chat message: its sender's client id, sender name and text.
    Message {
        client_id: Option<String>,
        name: String,
        text: String,
    },
    /// A refusal, perhaps of one of our messages.
    Error {
        code: String,
        client_id: Option<String>,
    },
    /// `name` is typing (volatile: the server may drop it for a member that falls behind).
    Typing {
        name: String,
    },
    Presence,
    Heartbeat,
    SecondWelcome,
    Undecodable,
}

/// What node-ws broadcasts.
#[derive(Deserialize)]
struct NodeWsMessage {
    name: String,
    id: String,
    text: String,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::NodeWs => "node-ws",
        }
    }

    /// Whether each member first needs a session (`POST /api/join`) and the `join`/welcome
    /// exchange on its socket.
    pub fn has_sessions(self) -> bool {
        self == Peer::Ours
    }

    /// The steps of a socket's set-up, for the report.
    pub fn setup_steps(self) -> &'static str {
        match self {
            Peer::Ours => "connect+upgrade+join+welcome",
            Peer::NodeWs => "connect+upgrade",
        }
    }

    /// The WebSocket URL path (and query) of `name` in `room`.
    pub fn ws_path(self, room: &str, name: &str) -> String {
        match self {
            Peer::Ours => format!("/ws/{room}"),
            Peer::NodeWs => format!("/ws/{room}?name={name}"),
        }
    }

    /// The frame that publishes `text` under `client_id`.
    pub fn encode_send(self, client_id: String, text: String) -> String {
        match self {
            Peer::Ours => ClientFrame::Send {
                client_id,
                text,
                reply_to: None,
            }
            .encode(),
            Peer::NodeWs => serde_json::json!({ "id": client_id, "text": text }).to_string(),
        }
    }

    /// The frame that says this member is typing, if the server has one.
    pub fn encode_typing(self) -> Option<String> {
        match self {
            Peer::Ours => Some(ClientFrame::Typing.encode()),
            Peer::NodeWs => None,
        }
    }

    pub fn decode(self, text: &str) -> Incoming {
        match self {
            Peer::Ours => decode_ours(text),
            Peer::NodeWs => match serde_json::from_str::<NodeWsMessage>(text) {
                Ok(m) => Incoming::Message {
                    client_id: Some(m.id),
                    name: m.name,
                    text: m.text,
                },
                Err(_) => Incoming::Undecodable,
            },
        }
    }
}

fn decode_ours(text: &str) -> Incoming {
    // Presence and heartbeats are counted without decoding (the server writes `type` first).
    if text.starts_with(r#"{"type":"joined""#) || text.starts_with(r#"{"type":"left""#) {
        return Incoming::Presence;
    }
    if text.starts_with(r#"{"type":"heartbeat""#) {
        return Incoming::Heartbeat;
    }
    match ServerFrame::decode(text) {
        Ok(ServerFrame::Message(m)) => Incoming::Message {
            client_id: m.client_id,
            name: m.name,
            text: m.text,
        },
        Ok(ServerFrame::Error {
            code, client_id, ..
        }) => Incoming::Error {
            code: format!("{code:?}"),
            client_id,
        },
        Ok(ServerFrame::Heartbeat) => Incoming::Heartbeat,
        Ok(ServerFrame::Typing { name }) => Incoming::Typing { name },
        Ok(
            ServerFrame::Joined { .. }
            | ServerFrame::Left { .. }
            | ServerFrame::Online { .. }
            | ServerFrame::Change(_),
        ) => Incoming::Presence,
        Ok(ServerFrame::Welcome { .. }) => Incoming::SecondWelcome,
        Err(_) => Incoming::Undecodable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ws_frames_round_trip_through_the_adapter() {
        let sent = Peer::NodeWs.encode_send("ab-0-1".into(), "t=5 x".into());
        let v: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(v, serde_json::json!({ "id": "ab-0-1", "text": "t=5 x" }));
        match Peer::NodeWs.decode(r#"{"name":"b1-0","id":"ab-0-1","text":"t=5 x"}"#) {
            Incoming::Message {
                client_id,
                name,
                text,
            } => {
                assert_eq!(client_id.as_deref(), Some("ab-0-1"));
                assert_eq!((name.as_str(), text.as_str()), ("b1-0", "t=5 x"));
            }
            _ => panic!("not a message"),
        }
        assert!(matches!(Peer::NodeWs.decode("{}"), Incoming::Undecodable));
        assert_eq!(
            Peer::NodeWs.ws_path("bench-3", "b1-7"),
            "/ws/bench-3?name=b1-7"
        );
        assert_eq!(Peer::Ours.ws_path("bench-3", "b1-7"), "/ws/bench-3");
    }

    #[test]
    fn typing_is_ours_only_and_counted_apart_from_presence() {
        assert_eq!(
            Peer::Ours.encode_typing().as_deref(),
            Some(r#"{"type":"typing"}"#)
        );
        assert_eq!(Peer::NodeWs.encode_typing(), None);
        match Peer::Ours.decode(r#"{"type":"typing","name":"b1-9"}"#) {
            Incoming::Typing { name } => assert_eq!(name, "b1-9"),
            _ => panic!("not typing"),
        }
        let joined = r#"{"type":"joined","member":{"name":"b1-9","avatar":"fox"}}"#;
        assert!(matches!(Peer::Ours.decode(joined), Incoming::Presence));
    }
}
