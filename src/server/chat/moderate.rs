//! Moderation requests: who may ask, whom they name, and the log entry each one makes.
//!
//! A request from a member's socket is checked against their session's role in the room's
//! state and answered through the room like an edit (the `change`, or an `error`); the
//! operator's (admin API) waits for its outcome. Either way the log stores the entry and its
//! effects in one step, and every node acts on it as it is delivered (`Hub::enforce`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::moderation::{until, ModRequestError};
use crate::protocol::pages::AuditEntry;
use crate::protocol::{Change, ChangeAction, ErrorCode, Member, ModRequest, Role};
use crate::rules::name_key;
use crate::server::chat::hub::Hub;
use crate::server::chat::moderation::{
    field, new_token, read, token_hash, value, Invite, ModState, RoleRecord, Sanction, CLAIMED,
    INVITE_MS,
};
use crate::server::ids::{ConnId, SessionId};
use crate::server::log::{now_ms, Action, Append, MessageLog, Moderation, StoreError};

/// How long the operator's request waits for the log.
const OPERATOR_WAIT: Duration = Duration::from_secs(5);

/// Who asks: a member of the room (with their connection), or the server's operator.
#[derive(Clone, Debug)]
pub struct Actor {
    pub session: SessionId,
    pub member: Member,
    pub conn: ConnId,
}

impl Actor {
    /// The server's operator, through the admin API: no session, no name, no connection.
    pub fn operator() -> Actor {
        Actor {
            session: SessionId("-operator".into()),
            member: Member {
                name: String::new(),
                avatar: String::new(),
            },
            conn: 0,
        }
    }
}

/// Why a moderation request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModError {
    #[error("Only the room's moderators can do that")]
    NotModerator,
    #[error("Moderators cannot act on the room's owner or on each other")]
    Protected,
    #[error("Nobody of that name is in this room or posted in it recently")]
    NoSuchMember,
    #[error("{0}")]
    BadRequest(#[from] ModRequestError),
    #[error("That link is not valid: used, expired, or for another name")]
    InvalidToken,
    #[error("{1}")]
    Refused(ErrorCode, String),
    #[error("The message log failed: {0}")]
    Store(#[from] StoreError),
    #[error("The message log did not answer in time")]
    Timeout,
}

impl ModError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ModError::NotModerator | ModError::Protected => ErrorCode::NotModerator,
            ModError::NoSuchMember => ErrorCode::NoSuchMember,
            ModError::BadRequest(_) => ErrorCode::BadRequest,
            ModError::InvalidToken => ErrorCode::InvalidToken,
            ModError::Refused(code, _) => *code,
            ModError::Store(e) => e.code(),
            ModError::Timeout => ErrorCode::Busy,
        }
    }
}

/// The member a request names: the name as given, its key, and its session if known.
struct Target {
    name: String,
    key: String,
    sid: Option<String>,
}

/// What moderation needs: the rooms and the log.
#[derive(Clone, Copy)]
pub struct Moderator<'a> {
    pub hub: &'a Arc<Hub>,
    pub log: &'a MessageLog,
}

impl Moderator<'_> {
    /// The room's state: a live room's here, or read from the log.
    pub async fn state(&self, room: &str) -> Result<Arc<ModState>, StoreError> {
        if let Some(state) = self.hub.room(room).and_then(|r| r.moderation.get()) {
            return Ok(state);
        }
        self.fresh(room).await
    }

    /// The room's state as the log has it now.
    async fn fresh(&self, room: &str) -> Result<Arc<ModState>, StoreError> {
        read(self.log, room).await
    }

    /// A member's request from their socket: checked against their role, then queued for
    /// the log; the `change` (or a refusal from the log) reaches them through the room.
    pub async fn request(
        &self,
        room: &str,
        actor: &Actor,
        client_id: &str,
        request: ModRequest,
    ) -> Result<(), ModError> {
        let state = self.state(room).await?;
        let role = state.role(&actor.session.0).ok_or(ModError::NotModerator)?;
        let m = self.plan(room, &state, Some(role), request).await?;
        self.append(room, actor, client_id, tidy(m, &state))
    }

    /// The operator's request (admin API): done, and the change it made.
    pub async fn operator(&self, room: &str, request: ModRequest) -> Result<Change, ModError> {
        let state = self.fresh(room).await?;
        let m = self.plan(room, &state, None, request).await?;
        self.as_operator(room, tidy(m, &state)).await
    }

    async fn as_operator(&self, room: &str, m: Moderation) -> Result<Change, ModError> {
        let client_id = format!("op-{}", new_token());
        let outcome = self.hub.await_outcome(&client_id);
        self.append(room, &Actor::operator(), &client_id, m)?;
        match tokio::time::timeout(OPERATOR_WAIT, outcome).await {
            Ok(Ok(Ok(change))) => Ok(change),
            Ok(Ok(Err((code, message)))) => Err(ModError::Refused(code, message)),
            Ok(Err(_)) | Err(_) => {
                self.hub.forget_outcome(&client_id);
                Err(ModError::Timeout)
            }
        }
    }

    /// A one-time link that makes whoever opens it under `name` a moderator of `room`.
    pub async fn invite(&self, room: &str, name: &str) -> Result<String, ModError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(ModRequestError::Name.into());
        }
        let token = new_token();
        let invite = Invite {
            name: name.trim().to_string(),
            role: Role::Moderator,
            exp: now_ms() + INVITE_MS,
        };
        let f = field::invite(&token_hash(&token));
        self.log
            .set_moderation(room, &f, Some(&value(&invite)), false)
            .await?;
        Ok(token)
    }

    /// The room's state read afresh (a ban's address may have been recorded by another
    /// node), and why session `sid`, name `name` or address `addr` may not join, if banned.
    pub async fn admission(
        &self,
        room: &str,
        sid: &SessionId,
        name: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<(Arc<ModState>, Option<String>), StoreError> {
        let state = self.fresh(room).await?;
        let ban = state.ban(Some(&sid.0), Some(&name_key(name)), addr, now_ms());
        let why = ban.map(|b| b.describe("You are banned from this room"));
        Ok((state, why))
    }

    /// The one-time owner link's token for new room `room`, unless one was made before.
    pub async fn owner_link(&self, room: &str) -> Result<Option<String>, StoreError> {
        let token = new_token();
        let hash = token_hash(&token);
        let made = self
            .log
            .set_moderation(room, field::OWNER_TOKEN, Some(&hash), true)
            .await?;
        Ok(made.then_some(token))
    }

    /// The operator takes `name`'s role away.
    pub async fn dismiss(&self, room: &str, name: &str) -> Result<Change, ModError> {
        let state = self.fresh(room).await?;
        let (sid, _) = state.role_by_name(name).ok_or(ModError::NoSuchMember)?;
        let m = Moderation {
            action: ChangeAction::Role {
                member: name.to_string(),
                role: None,
            },
            writes: vec![(field::role(sid), None)],
            ..moderation()
        };
        self.as_operator(room, m).await
    }

    /// Claims the role a one-time link's `token` gives, for the actor's session.
    pub async fn claim(
        &self,
        room: &str,
        actor: &Actor,
        client_id: &str,
        token: &str,
    ) -> Result<(), ModError> {
        let state = self.fresh(room).await?;
        let hash = token_hash(token);
        let sid = &actor.session.0;
        let name = actor.member.name.clone();
        let (role, writes, require) = if state.owner_token.as_deref() == Some(hash.as_str()) {
            let writes = vec![(field::OWNER_TOKEN.to_string(), Some(CLAIMED.to_string()))];
            (Role::Owner, writes, (field::OWNER_TOKEN.to_string(), hash))
        } else {
            let invite = state
                .invites
                .get(&hash)
                .filter(|i| i.exp > now_ms() && name_key(&i.name) == name_key(&name))
                .ok_or(ModError::InvalidToken)?;
            let f = field::invite(&hash);
            (invite.role, vec![(f.clone(), None)], (f, value(invite)))
        };
        let record = RoleRecord {
            role,
            name: name.clone(),
        };
        let mut writes = writes;
        writes.push((field::role(sid), Some(value(&record))));
        let m = Moderation {
            action: ChangeAction::Role {
                member: name,
                role: Some(role),
            },
            writes,
            require: Some(require),
            role: Some(role),
            ..moderation()
        };
        self.append(room, actor, client_id, m)
    }

    /// The audit log for a member of the room who has a role there.
    pub async fn audit_for(
        &self,
        room: &str,
        sid: &SessionId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ModError> {
        let state = self.fresh(room).await?;
        state.role(&sid.0).ok_or(ModError::NotModerator)?;
        Ok(self.log.audit(room, before, limit).await?)
    }

    fn append(
        &self,
        room: &str,
        actor: &Actor,
        client_id: &str,
        m: Moderation,
    ) -> Result<(), ModError> {
        let append = Append {
            room: room.into(),
            conn: actor.conn,
            session: actor.session.0.as_str().into(),
            client_id: client_id.to_string(),
            author: actor.member.clone(),
            action: Action::Moderate(Box::new(m)),
            received: Instant::now(),
        };
        Ok(self.log.append(append)?)
    }

    /// The member `name` names: in the room here, held on another node, or the last to post
    /// under that name.
    async fn target(&self, room: &str, name: &str) -> Result<Target, ModError> {
        let key = name_key(name);
        let mut sid = self
            .hub
            .room(room)
            .and_then(|r| r.holder(&key))
            .map(|s| s.0);
        if sid.is_none() {
            sid = self.log.name_holder(room, &key).await?;
        }
        if sid.is_none() {
            sid = self.log.session_of(room, name.trim()).await?;
        }
        Ok(Target {
            name: name.trim().to_string(),
            key,
            sid,
        })
    }

    /// The entry and effects of `request` by someone with `role` (`None`: the operator).
    async fn plan(
        &self,
        room: &str,
        state: &ModState,
        role: Option<Role>,
        request: ModRequest,
    ) -> Result<Moderation, ModError> {
        request.validate()?;
        let now = now_ms();
        let base = Moderation {
            role,
            ..moderation()
        };
        let settings = |action: ChangeAction, f: &str, v: Option<String>| Moderation {
            action,
            writes: vec![(f.to_string(), v)],
            ..base.clone()
        };
        let target = match request.member() {
            Some(name) => {
                let t = self.target(room, name).await?;
                // The owner is out of moderators' reach, and moderators out of each other's.
                let protected = t.sid.as_deref().and_then(|s| state.role(s));
                match (role, protected) {
                    (_, None) | (None, _) | (Some(Role::Owner), Some(Role::Moderator)) => {}
                    _ => return Err(ModError::Protected),
                }
                Some(t)
            }
            None => None,
        };
        let needs_session = |t: &Option<Target>| {
            t.as_ref()
                .and_then(|t| t.sid.clone())
                .ok_or(ModError::NoSuchMember)
        };
        Ok(match request {
            ModRequest::Remove { id, reason } => Moderation {
                action: ChangeAction::Remove { reason },
                target: id,
                ..base
            },
            ModRequest::Topic { text } => {
                let v = (!text.is_empty()).then(|| text.clone());
                settings(ChangeAction::Topic { text }, field::TOPIC, v)
            }
            ModRequest::Lock { on } => settings(
                ChangeAction::Lock { on },
                field::LOCKED,
                on.then(|| "1".into()),
            ),
            ModRequest::Slow { secs } => settings(
                ChangeAction::Slow { secs },
                field::SLOW,
                (secs > 0).then(|| secs.to_string()),
            ),
            ModRequest::Mute {
                minutes, reason, ..
            } => {
                let sid = needs_session(&target)?;
                let member = target.map(|t| t.name).unwrap_or_default();
                let until = until(now, minutes);
                let record = Sanction {
                    until,
                    reason: reason.clone(),
                    name: member.clone(),
                };
                Moderation {
                    action: ChangeAction::Mute {
                        member,
                        until,
                        reason,
                    },
                    writes: vec![(field::mute(&sid), Some(value(&record)))],
                    ..base
                }
            }
            ModRequest::Unmute { .. } => {
                let t = target.ok_or(ModError::NoSuchMember)?;
                let mut writes: Vec<(String, Option<String>)> = state
                    .mutes
                    .iter()
                    .filter(|(_, m)| name_key(&m.name) == t.key)
                    .map(|(sid, _)| (field::mute(sid), None))
                    .collect();
                if let Some(sid) = &t.sid {
                    writes.push((field::mute(sid), None));
                }
                Moderation {
                    action: ChangeAction::Unmute { member: t.name },
                    writes,
                    ..base
                }
            }
            ModRequest::Kick { reason, .. } => {
                let t = target.ok_or(ModError::NoSuchMember)?;
                Moderation {
                    action: ChangeAction::Kick {
                        member: t.name,
                        reason,
                    },
                    ..base
                }
            }
            ModRequest::Ban {
                minutes,
                address,
                reason,
                ..
            } => {
                let t = target.ok_or(ModError::NoSuchMember)?;
                let until = until(now, minutes);
                let record = value(&Sanction {
                    until,
                    reason: reason.clone(),
                    name: t.name.clone(),
                });
                let mut writes = vec![(field::ban_name(&t.key), Some(record.clone()))];
                if let Some(sid) = &t.sid {
                    writes.push((field::ban_session(sid), Some(record)));
                }
                Moderation {
                    action: ChangeAction::Ban {
                        member: t.name,
                        until,
                        address,
                        reason,
                    },
                    writes,
                    ..base
                }
            }
            ModRequest::Unban { .. } => {
                let t = target.ok_or(ModError::NoSuchMember)?;
                let writes = state
                    .bans
                    .iter()
                    .filter(|(_, b)| name_key(&b.name) == t.key)
                    .map(|(f, _)| (f.clone(), None))
                    .chain([(field::ban_name(&t.key), None)])
                    .collect();
                Moderation {
                    action: ChangeAction::Unban { member: t.name },
                    writes,
                    ..base
                }
            }
            ModRequest::Clear {
                minutes, reason, ..
            } => {
                let sid = needs_session(&target)?;
                let member = target.map(|t| t.name).unwrap_or_default();
                Moderation {
                    action: ChangeAction::Clear {
                        member,
                        ids: Vec::new(),
                        reason,
                    },
                    clear: Some((sid, now - i64::from(minutes) * 60_000)),
                    ..base
                }
            }
        })
    }
}

/// `m`, also deleting the room's fields that have run out (a field it writes is kept).
fn tidy(mut m: Moderation, state: &ModState) -> Moderation {
    for f in state.expired(now_ms()) {
        if !m.writes.iter().any(|(w, _)| *w == f) {
            m.writes.push((f, None));
        }
    }
    m
}

/// A moderation step that does nothing yet.
fn moderation() -> Moderation {
    Moderation {
        action: ChangeAction::Lock { on: false },
        target: 0,
        clear: None,
        writes: Vec::new(),
        require: None,
        role: None,
    }
}
