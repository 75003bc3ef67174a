//! One connection's chat side: its frames read as commands through its codec, rate limits, and replies.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::protocol::{close, ErrorCode, Member, MessageId, ModRequest};
use crate::server::chat::codec::{ChangeRequest, Codec, Command, Event, Frames};
use crate::server::chat::join::{JoinFailure, Joins, Membership};
use crate::server::chat::moderate::{Actor, Moderator};
use crate::server::chat::outbox::Outbox;
use crate::server::chat::post::{post, PostError};
use crate::server::chat::room::{Line, Room};
use crate::server::chat::session::Session;
use crate::server::ids::ConnId;
use crate::server::log::Action;
use crate::server::net::wire::WireError;
use crate::server::ops::metrics::{CloseReason, Rejection};
use crate::server::state::AppState;

/// A sender that pauses this long after being refused is no longer counted as flooding.
const FLOOD_PAUSE: Duration = Duration::from_secs(1);
/// Shortest time between two typing events of one connection that are passed on (clients
/// send one every 3 s); those in between are ignored.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Typing frames a second, and in a burst, before they count as flooding.
const TYPING_FRAMES: (u32, u32) = (5, 10);

/// One connection's reader state.
pub(crate) struct Connection {
    pub id: ConnId,
    pub state: AppState,
    /// The room it asked for (boxed: a `String`'s capacity is not needed).
    pub room: Box<str>,
    /// Until the member has joined (boxed: it is not needed after).
    session: Option<Box<Session>>,
    /// Its wire format.
    pub codec: Arc<dyn Codec>,
    pub outbox: Outbox,
    /// The client's address (behind a trusted proxy, the one it forwards).
    addr: IpAddr,
    membership: Option<Membership>,
    rate: DefaultDirectRateLimiter,
    /// Typing frames have their own budget: typing never delays a message.
    typing_rate: DefaultDirectRateLimiter,
    /// When this connection's typing was last passed on.
    typed_at: Option<Instant>,
    /// Frames refused for rate since the sender last paused for [`FLOOD_PAUSE`].
    strikes: u32,
    last_refusal: Option<Instant>,
}

/// The connection keeps sending faster than its rate limit after being told to slow down.
pub(crate) struct Flooding;

/// Work a text frame asks for that has to wait: a join, which reads the log.
pub(crate) enum Waits {
    Join(Option<MessageId>),
    JoinAs(Member),
    /// A moderator's request (with its client id), which reads the log.
    Moderate(String, ModRequest),
    /// A claim of a one-time link's token (with its client id), which reads the log.
    Claim(String, String),
}

fn rate_limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

impl Connection {
    pub fn new(
        id: ConnId,
        state: AppState,
        room: Box<str>,
        session: Option<Box<Session>>,
        codec: Arc<dyn Codec>,
        outbox: Outbox,
        addr: IpAddr,
    ) -> Self {
        let rate = rate_limiter(state.config.rate_per_sec, state.config.rate_burst);
        let typing_rate = rate_limiter(TYPING_FRAMES.0, TYPING_FRAMES.1);
        Connection {
            typing_rate,
            typed_at: None,
            id,
            state,
            room,
            session,
            codec,
            outbox,
            addr,
            membership: None,
            rate,
            strikes: 0,
            last_refusal: None,
        }
    }

    /// Tells this connection `event`, if its wire format has a frame for it.
    pub fn reply(&self, event: Event<'_>) {
        if let Event::Error { code, .. } = event {
            self.state.hub.metrics().rejected(Rejection::Code(code));
        }
        let Some(frame) = self.codec.frame(&mut Frames::new(event)) else {
            return;
        };
        if self.outbox.push(frame).is_err() {
            self.outbox.close_now(close::SLOW_CONSUMER, "slow consumer");
        }
    }

    fn error(&self, code: ErrorCode, message: &str, client_id: Option<&str>) {
        self.reply(Event::Error {
            code,
            message,
            client_id,
        });
    }

    /// A frame broke the WebSocket protocol: close with its code.
    pub fn broken(&self, e: WireError) -> CloseReason {
        tracing::debug!(conn = self.id, error = %e, "protocol error");
        let (code, reason) = e.close();
        self.state.hub.metrics().rejected(match code {
            close::TOO_BIG => Rejection::TooBig,
            1007 => Rejection::InvalidUtf8,
            _ => Rejection::Protocol,
        });
        self.outbox.close(code, reason);
        CloseReason::ProtocolError
    }

    /// Takes a token for one more frame from `typing`'s budget or the messages'; counts a
    /// refusal when there is none.
    fn allow(&mut self, typing: bool) -> bool {
        let limiter = if typing {
            &self.typing_rate
        } else {
            &self.rate
        };
        if limiter.check().is_ok() {
            return true;
        }
        let now = Instant::now();
        if self.last_refusal.is_some_and(|t| now - t >= FLOOD_PAUSE) {
            self.strikes = 0;
        }
        self.last_refusal = Some(now);
        self.strikes += 1;
        false
    }

    /// After a refusal: still only fast, or a flood? Fast gets told to slow down.
    fn flooding(&self) -> bool {
        if self.strikes >= self.state.config.flood_limit {
            return true;
        }
        let per_sec = self.state.config.rate_per_sec;
        let message = format!("Slow down: at most {per_sec} messages a second");
        self.error(ErrorCode::RateLimited, &message, None);
        false
    }

    /// Handles a text frame at once, or returns the work it asks for that has to wait; a
    /// frame over the rate limit is refused (and `Err` when that makes it a flood).
    pub fn on_text(&mut self, text: &str) -> Result<Option<Waits>, Flooding> {
        let command = self.codec.command(text, self.membership.is_some());
        if !self.allow(matches!(command, Command::Typing)) {
            return if self.flooding() {
                Err(Flooding)
            } else {
                Ok(None)
            };
        }
        match command {
            Command::Join { after } => return Ok(Some(Waits::Join(after))),
            Command::JoinAs { member } => return Ok(Some(Waits::JoinAs(member))),
            Command::Send {
                client_id,
                text,
                reply_to,
            } => self.send(&client_id, Action::Post { text, reply_to }),
            Command::Change { client_id, change } => {
                let action = match change {
                    ChangeRequest::Edit { target, text } => Action::Edit { target, text },
                    ChangeRequest::Delete { target } => Action::Delete { target },
                    ChangeRequest::React { target, emoji, on } => {
                        Action::React { target, emoji, on }
                    }
                };
                self.send(&client_id, action)
            }
            Command::Typing => self.typing(),
            Command::Moderate { client_id, request } => {
                return Ok(Some(Waits::Moderate(client_id, request)))
            }
            Command::Claim { client_id, token } => return Ok(Some(Waits::Claim(client_id, token))),
            Command::Ignore(why) => self.state.hub.metrics().rejected(why),
            Command::Refuse { code, message } => self.error(code, &message, None),
            Command::Close {
                code,
                reason,
                counted,
            } => {
                self.state.hub.metrics().rejected(counted);
                self.outbox.close(code, &reason);
            }
        }
        Ok(None)
    }

    /// Passes on that this member is typing, at most once every [`TYPING_EVERY`].
    fn typing(&mut self) {
        let Some(membership) = &self.membership else {
            return;
        };
        let now = Instant::now();
        if self.typed_at.is_some_and(|t| now - t < TYPING_EVERY) {
            return;
        }
        self.typed_at = Some(now);
        let room = membership.room();
        if let Some((member, _)) = room.author(self.id) {
            room.typing(&member.name);
            self.state.log.typing(room.name(), &member.name);
        }
    }

    /// Does `work`. Boxed: its state should neither make every idle connection's task bigger
    /// nor cost an allocation per chat message.
    pub fn wait_for(&mut self, work: Waits) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let joined = match work {
                Waits::Join(after) => self.join(after).await,
                Waits::JoinAs(member) => self.join_as(member).await,
                Waits::Moderate(client_id, request) => {
                    return self.moderate(&client_id, request).await;
                }
                Waits::Claim(client_id, token) => {
                    return self.claim(&client_id, &token).await;
                }
            };
            match joined {
                Ok(m) => self.membership = Some(m),
                Err(e) => self.join_failed(e),
            }
        })
    }

    /// This connection's way out, for its room.
    fn line(&self, codec: Arc<dyn Codec>) -> Line {
        Line {
            outbox: self.outbox.clone(),
            codec,
            addr: Some(self.addr),
        }
    }

    fn joins(&self) -> Joins<'_> {
        Joins {
            hub: &self.state.hub,
            log: &self.state.log,
            config: &self.state.config,
        }
    }

    async fn join(&mut self, after: Option<MessageId>) -> Result<Membership, JoinFailure> {
        if self.membership.is_some() {
            return Err(JoinFailure::AlreadyJoined);
        }
        // A member joins once per connection; what the session said then lives in the room.
        let session = self.session.take().ok_or(JoinFailure::NoSession)?;
        let codec = self.codec.clone();
        self.joins()
            .join(&self.room, self.id, &session, self.line(codec), after)
            .await
    }

    async fn join_as(&mut self, member: Member) -> Result<Membership, JoinFailure> {
        let codec = self.codec.clone();
        self.joins()
            .join_as(&self.room, self.id, member, self.line(codec))
            .await
    }

    /// Tells why the join failed and, unless it was only a second join, closes.
    fn join_failed(&self, e: JoinFailure) {
        match &e {
            JoinFailure::AlreadyJoined => {
                self.error(ErrorCode::AlreadyJoined, &e.to_string(), None);
            }
            JoinFailure::NoSession => {
                self.error(ErrorCode::SessionInvalid, &e.to_string(), None);
                self.outbox.close(close::SESSION_REFUSED, "no session");
            }
            JoinFailure::Refused(refused) => {
                let reason = refused.to_string();
                self.error(refused.code(), &reason, None);
                // Only a protocol without error events needs the reason in the close frame.
                self.outbox.close(close::SESSION_REFUSED, &reason);
            }
            JoinFailure::Banned(why) => {
                self.error(ErrorCode::Banned, why, None);
                let reason = crate::server::chat::effects::close_reason(why);
                self.outbox.close(close::BANNED, reason);
            }
            JoinFailure::Storage(err) => {
                tracing::error!(conn = self.id, error = %err, "log read failed while joining");
                let message = "Could not read the room's history; try again";
                self.error(ErrorCode::StorageFailed, message, None);
                self.outbox.close(1011, "storage error");
            }
        }
    }

    /// This connection's member as the actor of moderation frame `client_id`, with its
    /// room; `None` (the sender told why) before the join or with a malformed client id.
    fn actor(&self, client_id: &str) -> Option<(Arc<Room>, Actor)> {
        let Some(membership) = &self.membership else {
            let message = "Join the room before sending";
            self.error(ErrorCode::NotJoined, message, None);
            return None;
        };
        if !crate::rules::valid_client_id(client_id) {
            let e = PostError::InvalidClientId;
            self.error(e.code(), &e.to_string(), None);
            return None;
        }
        let room = membership.room().clone();
        let (member, session) = room.author(self.id)?;
        let actor = Actor {
            session,
            member,
            conn: self.id,
        };
        Some((room, actor))
    }

    fn moderator(&self) -> Moderator<'_> {
        Moderator {
            hub: &self.state.hub,
            log: &self.state.log,
        }
    }

    /// A moderator's request, checked against the session's role; the change it makes, or
    /// its refusal, comes back through the room.
    async fn moderate(&mut self, client_id: &str, request: ModRequest) {
        let Some((room, actor)) = self.actor(client_id) else {
            return;
        };
        let done = self
            .moderator()
            .request(room.name(), &actor, client_id, request)
            .await;
        if let Err(e) = done {
            self.error(e.code(), &e.to_string(), Some(client_id));
        }
    }

    /// A claim of a one-time link's `token` for this session; answered like a request.
    async fn claim(&mut self, client_id: &str, token: &str) {
        let Some((room, actor)) = self.actor(client_id) else {
            return;
        };
        let done = self
            .moderator()
            .claim(room.name(), &actor, client_id, token)
            .await;
        if let Err(e) = done {
            self.error(e.code(), &e.to_string(), Some(client_id));
        }
    }

    fn send(&mut self, client_id: &str, action: Action) {
        let Some(membership) = &self.membership else {
            let message = "Join the room before sending";
            return self.error(ErrorCode::NotJoined, message, None);
        };
        let (log, config) = (&self.state.log, &self.state.config);
        match post(log, config, membership, self.id, client_id, action) {
            Ok(()) => {
                let metrics = self.state.hub.metrics();
                metrics.messages_received.inc();
                if self.codec.legacy() {
                    metrics.legacy_messages_received.inc();
                }
            }
            Err(refused) => self.error(refused.code, &refused.message, Some(client_id)),
        }
    }
}
