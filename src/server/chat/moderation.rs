//! A room's moderation state (roles, bans, mutes, settings, links), read from its fields in the log, and the checks on it.
//!
//! The log keeps a room's moderation as string fields that a moderation entry writes in the
//! same atomic step as itself (see `log::Moderation`); this file alone gives them meaning.
//! Each live room keeps the state in a [`RoomModeration`], reloaded from the log whenever a
//! moderation entry is delivered, on every node, so that every check is against the store.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::protocol::{Change, ChangeAction, MessageId, Role, RoomSettings, Timestamp};
use crate::rules::name_key;
use crate::server::chat::codec::Standing;
use crate::server::ids::SessionId;
use crate::server::log::{MessageLog, StoreError};

/// How long a moderator invite link stays good.
pub const INVITE_MS: i64 = 7 * 24 * 3600 * 1000;
/// What `owner_token` holds once the owner link was used: no second owner link is made.
pub const CLAIMED: &str = "claimed";

/// A member with a role, as its field holds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub role: Role,
    pub name: String,
}

/// A ban or a mute: until when, why, and the name it was given under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sanction {
    pub until: Timestamp,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub name: String,
}

/// A moderator invite link: for whom, as what, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub name: String,
    pub role: Role,
    pub exp: Timestamp,
}

/// Field names (see the design in the log's `Moderation`).
pub mod field {
    use std::net::IpAddr;

    pub const TOPIC: &str = "topic";
    pub const LOCKED: &str = "locked";
    pub const SLOW: &str = "slow";
    pub const OWNER_TOKEN: &str = "owner_token";

    pub fn role(sid: &str) -> String {
        format!("role:{sid}")
    }
    pub fn ban_session(sid: &str) -> String {
        format!("ban:s:{sid}")
    }
    pub fn ban_name(key: &str) -> String {
        format!("ban:n:{key}")
    }
    pub fn ban_address(ip: IpAddr) -> String {
        format!("ban:a:{ip}")
    }
    pub fn mute(sid: &str) -> String {
        format!("mute:{sid}")
    }
    pub fn invite(hash: &str) -> String {
        format!("invite:{hash}")
    }
}

/// JSON of a field's value (these plain types always serialise).
pub fn value<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One room's moderation, as its fields say.
#[derive(Clone, Debug, Default)]
pub struct ModState {
    /// Roles by session id.
    pub roles: HashMap<String, RoleRecord>,
    /// Bans by field (`ban:s:…`, `ban:n:…`, `ban:a:…`), expired ones included.
    pub bans: HashMap<String, Sanction>,
    /// Mutes by session id, expired ones included.
    pub mutes: HashMap<String, Sanction>,
    pub settings: RoomSettings,
    pub owner_token: Option<String>,
    /// Invites by their token's hash.
    pub invites: HashMap<String, Invite>,
}

impl Sanction {
    /// "Banned until …: reason", for a close frame or an error (times in UTC).
    pub fn describe(&self, what: &str) -> String {
        let until = if self.until == crate::protocol::moderation::FOREVER {
            String::new()
        } else {
            jiff::Timestamp::from_millisecond(self.until)
                .map(|t| format!(" until {}", t.strftime("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        };
        with_reason(&format!("{what}{until}"), &self.reason)
    }
}

impl ModState {
    /// The state the fields describe; a field that does not parse is ignored.
    pub fn from_fields(fields: Vec<(String, String)>) -> ModState {
        let mut s = ModState::default();
        for (k, v) in fields {
            if let Some(sid) = k.strip_prefix("role:") {
                if let Ok(r) = serde_json::from_str(&v) {
                    s.roles.insert(sid.to_string(), r);
                }
            } else if k.starts_with("ban:") {
                if let Ok(b) = serde_json::from_str(&v) {
                    s.bans.insert(k, b);
                }
            } else if let Some(sid) = k.strip_prefix("mute:") {
                if let Ok(m) = serde_json::from_str(&v) {
                    s.mutes.insert(sid.to_string(), m);
                }
            } else if let Some(hash) = k.strip_prefix("invite:") {
                if let Ok(i) = serde_json::from_str(&v) {
                    s.invites.insert(hash.to_string(), i);
                }
            } else {
                match k.as_str() {
                    field::TOPIC => s.settings.topic = v,
                    field::LOCKED => s.settings.locked = v == "1",
                    field::SLOW => s.settings.slow_secs = v.parse().unwrap_or(0),
                    field::OWNER_TOKEN => s.owner_token = Some(v),
                    _ => {}
                }
            }
        }
        s
    }

    /// The fields of bans, mutes and invites that have run out at `now`: deleted by the
    /// next moderation step, so that a room's state does not grow with its history.
    pub fn expired(&self, now: Timestamp) -> Vec<String> {
        let bans = self.bans.iter().filter(|(_, b)| b.until <= now);
        let mutes = self.mutes.iter().filter(|(_, m)| m.until <= now);
        let invites = self.invites.iter().filter(|(_, i)| i.exp <= now);
        bans.map(|(f, _)| f.clone())
            .chain(mutes.map(|(sid, _)| field::mute(sid)))
            .chain(invites.map(|(hash, _)| field::invite(hash)))
            .collect()
    }

    pub fn role(&self, sid: &str) -> Option<Role> {
        self.roles.get(sid).map(|r| r.role)
    }

    /// The session holding a role under `name` (case and lookalikes folded), if any.
    pub fn role_by_name(&self, name: &str) -> Option<(&str, Role)> {
        let key = crate::rules::name_key(name);
        self.roles
            .iter()
            .find(|(_, r)| crate::rules::name_key(&r.name) == key)
            .map(|(sid, r)| (sid.as_str(), r.role))
    }

    /// Until when session `sid` is muted, if it is now.
    pub fn muted_until(&self, sid: &str, now: Timestamp) -> Option<Timestamp> {
        self.mutes
            .get(sid)
            .map(|m| m.until)
            .filter(|until| *until > now)
    }

    /// The ban in force on this session, name key or address, if any. Members with a role
    /// are never banned (a moderator sharing an address with a banned member stays in).
    pub fn ban(
        &self,
        sid: Option<&str>,
        name_key: Option<&str>,
        addr: Option<IpAddr>,
        now: Timestamp,
    ) -> Option<&Sanction> {
        if sid.is_some_and(|s| self.roles.contains_key(s)) {
            return None;
        }
        let fields = [
            sid.map(field::ban_session),
            name_key.map(field::ban_name),
            addr.map(field::ban_address),
        ];
        fields
            .iter()
            .flatten()
            .filter_map(|f| self.bans.get(f))
            .find(|b| b.until > now)
    }
}

impl ModState {
    /// The state after moderation entry `change`, as far as the change tells it (a member's
    /// session comes from `holder`, by name key): what holds here at once, until the state
    /// is read again from the log.
    pub fn after(&self, change: &Change, holder: impl Fn(&str) -> Option<String>) -> ModState {
        let mut s = self.clone();
        s.settings.apply(change);
        let sanction = |member: &str, until: Timestamp, reason: &str| Sanction {
            until,
            reason: reason.to_string(),
            name: member.to_string(),
        };
        match &change.action {
            ChangeAction::Mute {
                member,
                until,
                reason,
            } => {
                if let Some(sid) = holder(&name_key(member)) {
                    s.mutes.insert(sid, sanction(member, *until, reason));
                }
            }
            ChangeAction::Unmute { member } => {
                let key = name_key(member);
                s.mutes.retain(|_, m| name_key(&m.name) != key);
            }
            ChangeAction::Ban {
                member,
                until,
                reason,
                ..
            } => {
                let key = name_key(member);
                let ban = sanction(member, *until, reason);
                if let Some(sid) = holder(&key) {
                    s.bans.insert(field::ban_session(&sid), ban.clone());
                }
                s.bans.insert(field::ban_name(&key), ban);
            }
            ChangeAction::Unban { member } => {
                let key = name_key(member);
                s.bans.retain(|_, b| name_key(&b.name) != key);
            }
            ChangeAction::Role { member, role } => {
                let key = name_key(member);
                s.roles.retain(|_, r| name_key(&r.name) != key);
                if let (Some(role), Some(sid)) = (role, holder(&key)) {
                    let name = member.clone();
                    s.roles.insert(sid, RoleRecord { role: *role, name });
                }
            }
            _ => {}
        }
        s
    }
}

/// Room `room`'s moderation as the log has it now.
pub async fn read(log: &MessageLog, room: &str) -> Result<Arc<ModState>, StoreError> {
    let fields = log.moderation(room).await?;
    Ok(Arc::new(ModState::from_fields(fields)))
}

/// "What: reason", or what alone when there is no reason.
pub fn with_reason(what: &str, reason: &str) -> String {
    match reason.trim() {
        "" => what.to_string(),
        reason => format!("{what}: {reason}"),
    }
}

/// The sha256 of a link's token, hex: what the log keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh one-time link token.
pub fn new_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Why a member may not post now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Silenced {
    #[error("You are muted in this room")]
    Muted,
    #[error("This room is read-only")]
    Locked,
    #[error("Slow mode: you can send again in {0} s")]
    Slow(u64),
    #[error("You are banned from this room")]
    Banned,
}

/// A live room's moderation: its state as last read from the log, and slow mode's last posts.
#[derive(Default)]
pub struct RoomModeration {
    /// The state, and the log id it was read after (`None`: not read yet).
    state: RwLock<Option<(MessageId, Arc<ModState>)>>,
    /// When each session last posted (slow mode).
    last_post: Mutex<HashMap<SessionId, Instant>>,
}

impl RoomModeration {
    /// The state, if it was read.
    pub fn get(&self) -> Option<Arc<ModState>> {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        st.as_ref().map(|(_, s)| s.clone())
    }

    /// Keeps `state`, read after log id `at`, unless a state read after a later id is kept.
    pub fn set(&self, at: MessageId, state: Arc<ModState>) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        if st.as_ref().is_none_or(|(seen, _)| *seen <= at) {
            *st = Some((at, state));
        }
    }

    /// The room's settings and session `sid`'s standing, for a welcome.
    pub fn standing(&self, sid: &SessionId) -> Standing {
        let Some(state) = self.get() else {
            return Standing::default();
        };
        Standing {
            room: state.settings.clone(),
            role: state.role(&sid.0),
            muted_until: state.muted_until(&sid.0, crate::server::log::now_ms()),
        }
    }

    /// May session `sid` post now? `posting` is a new message (slow mode counts those only);
    /// edits and reactions are refused only while muted, banned or locked.
    pub fn check(
        &self,
        sid: &SessionId,
        posting: bool,
        now_ms: Timestamp,
        now: Instant,
    ) -> Result<(), Silenced> {
        let Some(state) = self.get() else {
            return Ok(());
        };
        if state.role(&sid.0).is_some() {
            return Ok(());
        }
        if state.ban(Some(&sid.0), None, None, now_ms).is_some() {
            return Err(Silenced::Banned);
        }
        if state.muted_until(&sid.0, now_ms).is_some() {
            return Err(Silenced::Muted);
        }
        if state.settings.locked {
            return Err(Silenced::Locked);
        }
        let slow = Duration::from_secs(u64::from(state.settings.slow_secs));
        if posting && !slow.is_zero() {
            let mut last = self.last_post.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = last.get(sid) {
                let since = now.saturating_duration_since(*at);
                if since < slow {
                    return Err(Silenced::Slow((slow - since).as_secs().max(1)));
                }
            }
            if last.len() > 10_000 {
                last.retain(|_, at| now.saturating_duration_since(*at) < slow);
            }
            last.insert(sid.clone(), now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, String)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn sanction(until: Timestamp) -> String {
        value(&Sanction {
            until,
            reason: "spam".into(),
            name: "Bob".into(),
        })
    }

    #[test]
    fn fields_read_as_roles_bans_mutes_and_settings() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let s = ModState::from_fields(fields(&[
            (
                "role:s1",
                value(&RoleRecord {
                    role: Role::Owner,
                    name: "Ann".into(),
                }),
            ),
            ("ban:s:s2", sanction(100)),
            ("ban:n:bob", sanction(crate::protocol::moderation::FOREVER)),
            (&field::ban_address(ip), sanction(100)),
            ("mute:s3", sanction(100)),
            ("topic", "Rust <b>".into()),
            ("locked", "1".into()),
            ("slow", "30".into()),
            ("junk", "x".into()),
            ("role:bad", "not json".into()),
        ]));
        assert_eq!(s.role("s1"), Some(Role::Owner));
        assert_eq!(s.role_by_name("ANN"), Some(("s1", Role::Owner)));
        assert_eq!(s.role("bad"), None);
        assert_eq!(
            (
                s.settings.topic.as_str(),
                s.settings.locked,
                s.settings.slow_secs
            ),
            ("Rust <b>", true, 30)
        );
        assert!(s.ban(Some("s2"), None, None, 99).is_some());
        assert!(s.ban(Some("s2"), None, None, 100).is_none(), "expired");
        assert!(s.ban(Some("s9"), Some("bob"), None, i64::MAX - 1).is_some());
        assert!(s.ban(None, None, Some(ip), 50).is_some());
        assert!(
            s.ban(Some("s1"), Some("bob"), Some(ip), 50).is_none(),
            "a role is never banned"
        );
        assert_eq!(s.muted_until("s3", 50), Some(100));
        assert_eq!(s.muted_until("s3", 100), None);
        let mut gone = s.expired(100);
        gone.sort();
        assert_eq!(
            gone,
            [field::ban_address(ip), "ban:s:s2".into(), "mute:s3".into()]
        );
        assert!(s.expired(99).is_empty());
    }

    #[test]
    fn posting_is_checked_against_mutes_locks_and_slow_mode() {
        let m = RoomModeration::default();
        let (bob, ann) = (SessionId("s3".into()), SessionId("s1".into()));
        let now = Instant::now();
        assert_eq!(m.check(&bob, true, 0, now), Ok(()), "nothing read yet");
        let mut state = ModState::from_fields(fields(&[
            ("mute:s3", sanction(100)),
            (
                "role:s1",
                value(&RoleRecord {
                    role: Role::Moderator,
                    name: "Ann".into(),
                }),
            ),
        ]));
        m.set(5, Arc::new(state.clone()));
        assert_eq!(m.check(&bob, false, 50, now), Err(Silenced::Muted));
        assert_eq!(m.check(&bob, true, 100, now), Ok(()), "the mute ended");
        state.settings.locked = true;
        m.set(4, Arc::new(state.clone()));
        assert_eq!(
            m.check(&bob, true, 100, now),
            Ok(()),
            "an older read does not replace a newer one"
        );
        m.set(6, Arc::new(state.clone()));
        assert_eq!(m.check(&bob, true, 100, now), Err(Silenced::Locked));
        assert_eq!(m.check(&ann, true, 100, now), Ok(()), "moderators may post");
        state.settings.locked = false;
        state.settings.slow_secs = 30;
        m.set(7, Arc::new(state));
        let carl = SessionId("s4".into());
        assert_eq!(m.check(&carl, true, 100, now), Ok(()));
        assert_eq!(
            m.check(&carl, true, 100, now + Duration::from_secs(10)),
            Err(Silenced::Slow(20))
        );
        assert_eq!(
            m.check(&carl, false, 100, now + Duration::from_secs(10)),
            Ok(()),
            "reactions are not slowed"
        );
        assert_eq!(
            m.check(&carl, true, 100, now + Duration::from_secs(30)),
            Ok(())
        );
    }

    #[test]
    fn tokens_are_kept_as_hashes() {
        let t = new_token();
        assert_eq!(t.len(), 32);
        assert_ne!(t, new_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert_eq!(token_hash(&t), token_hash(&t));
    }
}
