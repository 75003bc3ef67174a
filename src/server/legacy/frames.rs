//! The old PHP/Swoole chat's JSON frames: old clients' frames read, and room events written in the old shapes.
//!
//! Old pages insert every text field as raw HTML, so every text this module writes is
//! escaped (`& < > " '`). Old pages cannot show errors: what they send wrong is ignored,
//! and an open frame with an unusable name is answered with close code 4001.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::avatars::{avatar_url, is_avatar, DEFAULT_AVATAR};
use crate::protocol::{ChatMessage, Member};
use crate::rules::{validate_name, NameError};
use crate::server::clock::Clock;

/// The `token` of an old client's first frame, which says who it is.
pub const OPEN_TOKEN: &str = "simplechat_open";
/// The `token` of an old client's chat message.
pub const MESSAGE_TOKEN: &str = "simplechat";
/// Longest avatar URL an old client may give, in bytes.
pub const MAX_AVATAR_URL_BYTES: usize = 512;
/// What the server reads of an old client's frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// `simplechat_open`: who the client says it is (checked by [`identity`]).
    Open { username: String, avatar: String },
    /// `simplechat`: a message. Its `username`, `avatar` and `time` are never read.
    Message { data: String },
    /// Not JSON, not an object, an unknown token, or a field of the wrong type.
    Ignored,
}

#[derive(Deserialize)]
struct Frame {
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    avatar: String,
    data: Option<String>,
}

/// Reads one text frame of an old client.
pub fn decode(text: &str) -> Incoming {
    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
        return Incoming::Ignored;
    };
    match (frame.token.as_str(), frame.data) {
        (OPEN_TOKEN, _) => Incoming::Open {
            username: frame.username,
            avatar: frame.avatar,
        },
        (MESSAGE_TOKEN, Some(data)) => Incoming::Message { data },
        _ => Incoming::Ignored,
    }
}

/// The member an open frame describes: its name checked by the rules every member's name
/// follows, its avatar as [`avatar_of`] reads it.
pub fn identity(username: &str, avatar: &str) -> Result<Member, NameError> {
    Ok(Member {
        name: validate_name(username)?,
        avatar: avatar_of(avatar),
    })
}

/// An old client's avatar as the room keeps it: one of the catalogue's own images (by its
/// URL) as its id; any other http(s) URL of at most [`MAX_AVATAR_URL_BYTES`] as it is, which
/// new clients show as the default avatar; anything else the default avatar.
pub fn avatar_of(raw: &str) -> String {
    let url = raw.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let usable = url.len() <= MAX_AVATAR_URL_BYTES
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !usable {
        return DEFAULT_AVATAR.to_string();
    }
    let ours = url
        .rsplit_once("/avatars/")
        .and_then(|(_, file)| file.strip_suffix(".svg"))
        .filter(|id| is_avatar(id));
    match ours {
        Some(id) => id.to_string(),
        None => url.to_string(),
    }
}

/// Escapes `& < > " '` for a page that inserts the text as HTML.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A room event as old clients see it.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A member came online; `fd` identifies them until their `Remove`.
    Connect { member: &'a Member, fd: u64 },
    /// The member announced with `fd` went offline.
    Remove { fd: u64 },
    /// A stored message.
    Message(&'a ChatMessage),
}

#[derive(Serialize)]
struct Connect<'a> {
    token: &'static str,
    username: Cow<'a, str>,
    avatar: Cow<'a, str>,
    fd: u64,
    action: &'static str,
}

#[derive(Serialize)]
struct Say<'a> {
    username: Cow<'a, str>,
    avatar: Cow<'a, str>,
    time: String,
    data: Cow<'a, str>,
    action: &'static str,
}

#[derive(Serialize)]
struct Remove {
    fd: u64,
    username: &'static str,
    avatar: &'static str,
    time: String,
    data: &'static str,
    action: &'static str,
}

/// The URL an old page shows for `avatar`: catalogue images under `site` (the scheme and
/// host the page reached this server at), an old client's own URL as it gave it.
fn avatar_for_old<'a>(avatar: &'a str, site: &str) -> Cow<'a, str> {
    if is_avatar(avatar) {
        Cow::Owned(format!("{site}{}", avatar_url(avatar)))
    } else {
        Cow::Borrowed(avatar)
    }
}

/// A message's text as old pages show it: a reply starts with what it answers.
fn old_text(m: &ChatMessage) -> Cow<'_, str> {
    match &m.reply_to {
        Some(q) if !q.gone => {
            Cow::Owned(format!("[reply to {}: \"{}\"] {}", q.name, q.text, m.text))
        }
        Some(q) => Cow::Owned(format!("[reply to {}] {}", q.name, m.text)),
        None => Cow::Borrowed(&m.text),
    }
}

/// `event` as the JSON text frame old clients expect, every text field escaped.
pub fn encode(event: Event<'_>, site: &str, clock: &Clock) -> String {
    let text = match event {
        Event::Connect { member, fd } => serde_json::to_string(&Connect {
            token: OPEN_TOKEN,
            username: escape(&member.name),
            avatar: Cow::Owned(escape(&avatar_for_old(&member.avatar, site)).into_owned()),
            fd,
            action: "connect",
        }),
        Event::Remove { fd } => serde_json::to_string(&Remove {
            fd,
            username: "",
            avatar: "",
            time: clock.now(),
            data: "",
            action: "remove",
        }),
        Event::Message(m) => serde_json::to_string(&Say {
            username: escape(&m.name),
            avatar: Cow::Owned(escape(&avatar_for_old(&m.avatar, site)).into_owned()),
            time: clock.hh_mm(m.ts),
            data: Cow::Owned(escape(&old_text(m)).into_owned()),
            action: "send",
        }),
    };
    // Serialising structs of strings and integers cannot fail.
    text.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn open_and_message_frames_are_read_and_everything_else_ignored() {
        assert_eq!(
            decode(
                r#"{"token":"simplechat_open","username":"Tom42","avatar":"http://a/b.png","extra":1}"#
            ),
            Incoming::Open {
                username: "Tom42".into(),
                avatar: "http://a/b.png".into()
            }
        );
        assert_eq!(
            decode(
                r#"{"token":"simplechat","username":"Mallory","avatar":"x","data":"hi","time":"9:5"}"#
            ),
            Incoming::Message { data: "hi".into() }
        );
        for junk in [
            "not json",
            "[1,2]",
            "null",
            r#"{"token":"other","data":"x"}"#,
            r#"{"data":"no token"}"#,
            r#"{"token":"simplechat"}"#,
            r#"{"token":"simplechat","data":5}"#,
            r#"{"token":7}"#,
        ] {
            assert_eq!(decode(junk), Incoming::Ignored, "{junk}");
        }
    }

    #[test]
    fn names_follow_the_rules_and_avatars_fall_back_to_the_default() {
        assert_eq!(identity("  Tom42 ", "").unwrap().name, "Tom42");
        assert_eq!(identity("", "x").unwrap_err(), NameError::Length);
        assert_eq!(
            identity("a\u{202E}b", "x").unwrap_err(),
            NameError::Characters
        );
        let url = "https://img.example/u/42.png?s=64&x=1";
        assert_eq!(avatar_of(url), url);
        assert_eq!(avatar_of("http://old.example/avatars/owl.svg"), "owl");
        for bad in [
            "javascript:alert(1)",
            "/relative.png",
            "https://",
            "https:///path",
            "ftp://x/y.png",
            "https://a b/c.png",
            &format!("https://x/{}", "a".repeat(MAX_AVATAR_URL_BYTES)),
        ] {
            assert_eq!(avatar_of(bad), DEFAULT_AVATAR, "{bad}");
        }
    }

    #[test]
    fn every_text_field_is_escaped() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
        assert!(matches!(escape("plain text"), Cow::Borrowed(_)));
        let m = ChatMessage {
            id: 1,
            ts: 0,
            name: "<b>".into(),
            avatar: "https://x/?a=1&b='2'".into(),
            text: "<script>".into(),
            client_id: None,
            ..ChatMessage::default()
        };
        let v: Value =
            serde_json::from_str(&encode(Event::Message(&m), "http://h", &Clock::default()))
                .unwrap();
        assert_eq!(
            v,
            json!({"username": "&lt;b&gt;", "avatar": "https://x/?a=1&amp;b=&#39;2&#39;",
                   "time": "00:00", "data": "&lt;script&gt;", "action": "send"})
        );
    }

    #[test]
    fn connect_and_remove_have_the_old_shapes() {
        let ada = Member {
            name: "Ada".into(),
            avatar: "owl".into(),
        };
        let clock = Clock::default();
        let v: Value = serde_json::from_str(&encode(
            Event::Connect {
                member: &ada,
                fd: 7,
            },
            "http://chat:3000",
            &clock,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"token": "simplechat_open", "username": "Ada",
                   "avatar": "http://chat:3000/avatars/owl.svg", "fd": 7, "action": "connect"})
        );
        let v: Value =
            serde_json::from_str(&encode(Event::Remove { fd: 7 }, "http://h", &clock)).unwrap();
        assert_eq!(v["fd"], 7);
        assert_eq!(v["action"], "remove");
        for empty in ["username", "avatar", "data"] {
            assert_eq!(v[empty], "");
        }
        let time = v["time"].as_str().unwrap();
        assert!(time.len() == 5 && time.as_bytes()[2] == b':', "{time}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn unescape(s: &str) -> String {
            s.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever a client sends, reading it never panics, and whatever text a member
            /// has, old pages get it with no markup character left and nothing lost.
            #[test]
            fn any_text_is_read_safely_and_escaped_losslessly(text in "\\PC*", name in "[<>&'\"a-z ]{1,40}") {
                let _ = decode(&text);
                let _ = decode(&format!(r#"{{"token":"simplechat_open","username":{text:?}}}"#));
                let escaped = escape(&text);
                prop_assert!(!escaped.contains(['<', '>', '"', '\'']));
                prop_assert_eq!(unescape(&escaped), text.clone());
                let m = ChatMessage { id: 1, ts: 0, name, avatar: text.clone(), text, ..ChatMessage::default() };
                let v: serde_json::Value =
                    serde_json::from_str(&encode(Event::Message(&m), "http://h", &Clock::default())).unwrap();
                for field in ["username", "avatar", "data"] {
                    let s = v[field].as_str().unwrap();
                    prop_assert!(!s.contains(['<', '>', '"', '\'']), "{}: {}", field, s);
                }
            }
        }
    }
}
