//! Sessions: who a browser is in a room, as an HMAC-signed HttpOnly cookie that the `join_room` server function sets.
//!
//! The cookie is the only source of a connection's identity: name and avatar in frames are
//! never trusted. A token is bound to one room, so joining two rooms gives two cookies.

// Own code because the `cookie` crate (0.18) always brings the `time` crate (a second date/time crate beside jiff) and its signed jar would change every token (MAC-prefixed value, keys of 64+ bytes); what is left here is one fixed Set-Cookie line and a split on `;`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::protocol::Member;
use crate::server::ids::SessionId;

type HmacSha256 = Hmac<Sha256>;

/// What a session token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sid: SessionId,
    pub room: String,
    pub name: String,
    pub avatar: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

impl Session {
    pub fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            avatar: self.avatar.clone(),
        }
    }
}

/// Signs and verifies session tokens.
#[derive(Clone)]
pub struct SessionKeys {
    key: Vec<u8>,
    lifetime_secs: u64,
}

impl SessionKeys {
    /// Keys from a configured secret, or a random one (sessions then end with the process).
    pub fn new(secret: &str, lifetime_secs: u64) -> Self {
        let key = if secret.is_empty() {
            use rand::RngCore;
            let mut k = vec![0u8; 32];
            rand::rng().fill_bytes(&mut k);
            k
        } else {
            secret.as_bytes().to_vec()
        };
        SessionKeys { key, lifetime_secs }
    }

    /// Keys from raw key bytes (e.g. the secret kept in the database).
    pub fn from_key(key: Vec<u8>, lifetime_secs: u64) -> Self {
        SessionKeys { key, lifetime_secs }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// A fresh session for `member` in `room`.
    pub fn issue(&self, sid: SessionId, room: &str, member: &Member) -> Session {
        Session {
            sid,
            room: room.to_string(),
            name: member.name.clone(),
            avatar: member.avatar.clone(),
            exp: now_secs() + self.lifetime_secs,
        }
    }

    /// `base64(json).base64(hmac)`.
    pub fn sign(&self, session: &Session) -> String {
        let payload = B64.encode(serde_json::to_vec(session).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The session in `token`, if its signature is ours and it has not expired.
    pub fn verify(&self, token: &str) -> Option<Session> {
        let (payload, tag) = token.split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let session: Session = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (session.exp > now_secs()).then_some(session)
    }

    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Name of the cookie holding the session for `room` (room names are cookie-safe: `a-z0-9-`).
pub fn cookie_name(room: &str) -> String {
    format!("chat_{room}")
}

/// `Set-Cookie` value for a session token; `secure` (the page came over https) adds `Secure`.
pub fn set_cookie(room: &str, token: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        cookie_name(room),
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn find_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The verified session for `room` among a request's headers.
pub fn from_headers(keys: &SessionKeys, headers: &http::HeaderMap, room: &str) -> Option<Session> {
    let name = cookie_name(room);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| find_cookie(h, &name))
        .and_then(|token| keys.verify(token))
        .filter(|s| s.room == room)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Member {
        Member {
            name: "Ada".into(),
            avatar: "owl".into(),
        }
    }

    #[test]
    fn signed_sessions_verify_and_forgeries_do_not() {
        let keys = SessionKeys::new("", 60);
        let s = keys.issue(SessionId::random(), "lobby", &ada());
        let token = keys.sign(&s);
        assert_eq!(keys.verify(&token), Some(s.clone()));

        // Same payload, claiming another name, with the old signature.
        let (_, tag) = token.split_once('.').unwrap();
        let mut forged = s.clone();
        forged.name = "Bob".into();
        let forged_payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(keys.verify(&format!("{forged_payload}.{tag}")), None);

        // Another server's key.
        assert_eq!(SessionKeys::new("", 60).verify(&token), None);
        for junk in ["", ".", "a.b", "x", "...."] {
            assert_eq!(keys.verify(junk), None);
        }
    }

    #[test]
    fn expired_sessions_are_refused() {
        let keys = SessionKeys::new("secret", 60);
        let mut s = keys.issue(SessionId::random(), "lobby", &ada());
        s.exp = now_secs() - 1;
        assert_eq!(keys.verify(&keys.sign(&s)), None);
    }

    #[test]
    fn cookies_are_found_per_room() {
        let keys = SessionKeys::new("k", 60);
        let s = keys.issue(SessionId::random(), "lobby", &ada());
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("other=1; chat_lobby={}; x=y", keys.sign(&s))
                .parse()
                .unwrap(),
        );
        assert_eq!(from_headers(&keys, &headers, "lobby"), Some(s));
        assert_eq!(from_headers(&keys, &headers, "kitchen"), None);
        assert!(set_cookie("lobby", "t", 5, false).contains("HttpOnly"));
        assert!(!set_cookie("lobby", "t", 5, false).contains("Secure"));
        assert!(set_cookie("lobby", "t", 5, true).ends_with("; Secure"));
    }
}
