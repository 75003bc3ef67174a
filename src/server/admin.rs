//! Moderation over HTTP: the operator's admin API under `/api/admin`, and a room's audit log for its moderators.
//!
//! The admin API answers only requests bearing `Authorization: Bearer <admin_token>`,
//! compared in constant time; with no token configured it is off (404). Every action goes
//! through the same checks and the same log as a moderator's frame (`chat::moderate`).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::protocol::{ErrorCode, Member, ModRequest, Role};
use crate::server::chat::moderate::{ModError, Moderator};
use crate::server::chat::session;
use crate::server::log::{Entry, StoreError};
use crate::server::state::AppState;

/// Most audit records or rooms one request lists.
const MAX_LIST: usize = 1000;
/// Entries read per step of an export.
const EXPORT_PAGE: usize = 1000;

/// Does `given` equal `token`? In time that does not depend on where they differ.
fn same_token(given: &str, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    // Hashed first, so that the time does not tell the token's length either.
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    a.ct_eq(&b).into()
}

/// An error as the API answers it: a status and `{"code", "message"}`.
#[derive(Debug, Serialize)]
struct Problem {
    #[serde(skip)]
    status: StatusCode,
    code: String,
    message: String,
}

impl Problem {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Problem {
        Problem {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<ModError> for Problem {
    fn from(e: ModError) -> Problem {
        let status = match e.code() {
            ErrorCode::NotModerator => StatusCode::FORBIDDEN,
            ErrorCode::NoSuchMember | ErrorCode::NoSuchMessage => StatusCode::NOT_FOUND,
            ErrorCode::BadRequest | ErrorCode::InvalidToken => StatusCode::BAD_REQUEST,
            ErrorCode::Busy | ErrorCode::StorageFailed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::CONFLICT,
        };
        let code = serde_json::to_value(e.code())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Problem::new(status, &code, e.to_string())
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        ModError::Store(e).into()
    }
}

/// A room's name from the path, checked.
fn room_of(room: &str) -> Result<String, Problem> {
    crate::rules::validate_room(room)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_room", e.to_string()))
}

fn moderator(state: &AppState) -> Moderator<'_> {
    Moderator {
        hub: &state.hub,
        log: &state.log,
    }
}

/// The admin API's routes (empty when no token is configured: every path is then 404).
pub fn routes(token: Option<String>) -> Router<AppState> {
    let Some(token) = token else {
        return Router::new();
    };
    let token: Arc<str> = token.into();
    let api = Router::new()
        .route("/rooms", get(rooms))
        .route("/rooms/{room}/members", get(members))
        .route("/rooms/{room}/actions", post(act))
        .route("/rooms/{room}/moderators", post(invite))
        .route("/rooms/{room}/moderators/{name}", delete(dismiss))
        .route("/rooms/{room}/audit", get(audit))
        .route("/rooms/{room}/export", get(export))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let token = token.clone();
                async move {
                    let given = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .unwrap_or("");
                    if same_token(given.trim(), &token) {
                        next.run(req).await
                    } else {
                        let p = Problem::new(
                            StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "A valid admin token is needed (Authorization: Bearer <admin_token>)",
                        );
                        let mut r = p.into_response();
                        r.headers_mut()
                            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
                        r
                    }
                }
            },
        ));
    Router::new().nest("/api/admin", api)
}

/// The audit route for a room's own moderators (session cookie).
pub fn member_routes() -> Router<AppState> {
    Router::new().route("/api/rooms/{room}/audit", get(member_audit))
}

/// A room as the operator's list shows it.
#[derive(Serialize)]
struct RoomInfo {
    room: String,
    /// Members online (on this node, and those it knows of on others).
    online: usize,
    /// The newest entry's id.
    last_id: u64,
}

/// `GET /api/admin/rooms`: every room the log knows or that is live here.
async fn rooms(State(state): State<AppState>) -> Result<Json<Vec<RoomInfo>>, Problem> {
    let mut names = state.log.rooms().await?;
    names.extend(state.hub.room_names());
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for room in names.into_iter().take(MAX_LIST) {
        let online = online(&state, &room).await?.1;
        let last_id = state.log.last_id(&room).await?;
        out.push(RoomInfo {
            room,
            online,
            last_id,
        });
    }
    Ok(Json(out))
}

/// Who is online in `room`: as this node's room knows them, or in cluster mode, when the room
/// does not live here, as the shared presence lists them.
async fn online(state: &AppState, room: &str) -> Result<(Vec<Member>, usize), StoreError> {
    if state.hub.room(room).is_none() {
        if let Some(all) = state.log.members(room).await? {
            let n = all.len();
            return Ok((all, n));
        }
    }
    Ok(state.hub.members(room))
}

#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    member: Member,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
}

#[derive(Serialize)]
struct Members {
    members: Vec<Listed>,
    online: usize,
}

/// `GET /api/admin/rooms/<room>/members`: who is online, with their roles.
async fn members(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Json<Members>, Problem> {
    let room = room_of(&room)?;
    let mods = moderator(&state).state(&room).await?;
    let (list, online) = online(&state, &room).await?;
    let members = list
        .into_iter()
        .map(|member| Listed {
            role: mods.role_by_name(&member.name).map(|(_, r)| r),
            member,
        })
        .collect();
    Ok(Json(Members { members, online }))
}

/// `POST /api/admin/rooms/<room>/actions` with a moderation request: the change it made.
async fn act(
    State(state): State<AppState>,
    Path(room): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let room = room_of(&room)?;
    let request: ModRequest = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let change = moderator(&state).operator(&room, request).await?;
    Ok(Json(change).into_response())
}

#[derive(Deserialize)]
struct InviteBody {
    name: String,
}

#[derive(Serialize)]
struct InviteLink {
    token: String,
    /// The path to open (on this server) as `name`: it makes them a moderator.
    link: String,
}

/// `POST /api/admin/rooms/<room>/moderators` `{"name"}`: a one-time moderator link.
async fn invite(
    State(state): State<AppState>,
    Path(room): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<InviteLink>, Problem> {
    let room = room_of(&room)?;
    let body: InviteBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let token = moderator(&state).invite(&room, &body.name).await?;
    let link = format!("/r/{room}?claim={token}");
    Ok(Json(InviteLink { token, link }))
}

/// `DELETE /api/admin/rooms/<room>/moderators/<name>`: takes the role away.
async fn dismiss(
    State(state): State<AppState>,
    Path((room, name)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let room = room_of(&room)?;
    let change = moderator(&state).dismiss(&room, &name).await?;
    Ok(Json(change).into_response())
}

#[derive(Deserialize)]
struct Page {
    before: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/admin/rooms/<room>/audit?before=&limit=`: newest first.
async fn audit(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, Problem> {
    let room = room_of(&room)?;
    let limit = page.limit.unwrap_or(100).min(MAX_LIST);
    let entries = state.log.audit(&room, page.before, limit).await?;
    Ok(Json(entries).into_response())
}

/// `GET /api/rooms/<room>/audit`: the same, for the room's owner and moderators.
async fn member_audit(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let room = room_of(&room)?;
    let Some(session) = session::from_headers(&state.keys, &headers, &room) else {
        let message = "Join the room first";
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "session_invalid",
            message,
        ));
    };
    let limit = page.limit.unwrap_or(100).min(MAX_LIST);
    let entries = moderator(&state)
        .audit_for(&room, &session.sid, page.before, limit)
        .await?;
    Ok(Json(entries).into_response())
}

/// `GET /api/admin/rooms/<room>/export`: every message kept, oldest first, in its newest
/// state, one JSON object a line; read and sent a page at a time.
async fn export(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, Problem> {
    let room = room_of(&room)?;
    let log = state.log.clone();
    let pages = futures::stream::unfold(Some(0u64), move |after| {
        let (log, room) = (log.clone(), room.clone());
        async move {
            let after = after?;
            match log.between(&room, after, u64::MAX, EXPORT_PAGE).await {
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let next = entries.last().map(Entry::id);
                    let mut out = String::new();
                    for m in entries.into_iter().filter_map(Entry::into_message) {
                        out.push_str(&serde_json::to_string(&m).unwrap_or_default());
                        out.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(out), next))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-ndjson".parse().expect("static"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(same_token("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_token("0123456789abcdeF", "0123456789abcdef"));
        assert!(!same_token("", "0123456789abcdef"));
        assert!(!same_token("0123456789abcdef0", "0123456789abcdef"));
    }
}
