//! Request/response API as Leptos server functions.
//!
//! The avatar catalogue, a room's first paint, joining and leaving, and the server's status.

use leptos::prelude::*;

use crate::avatars::Avatar;
use crate::protocol::pages::{JoinOutcome, RoomSnapshot, StatusSnapshot};
use crate::protocol::ChatMessage;
#[cfg(feature = "ssr")]
use crate::protocol::{pages::JoinField, Member};

/// The avatars a member may pick.
#[server(prefix = "/api", endpoint = "avatars")]
pub async fn list_avatars() -> Result<Vec<Avatar>, ServerFnError> {
    Ok(crate::avatars::catalogue())
}

/// Members, recent messages and this browser's identity in `room`.
#[server(prefix = "/api", endpoint = "room")]
pub async fn load_room(room: String) -> Result<RoomSnapshot, ServerFnError> {
    use crate::server::AppState;
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("no app state"))?;
    let headers: http::HeaderMap = leptos_axum::extract().await?;
    room_snapshot(&state, &room, &headers).await
}

/// `room`'s snapshot for the browser whose request has these `headers` (its session cookie).
#[cfg(feature = "ssr")]
pub async fn room_snapshot(
    state: &crate::server::AppState,
    room: &str,
    headers: &http::HeaderMap,
) -> Result<RoomSnapshot, ServerFnError> {
    use crate::server::chat::session;
    let room = crate::rules::validate_room(room).map_err(|e| ServerFnError::new(e.to_string()))?;
    let me = session::from_headers(&state.keys, headers, &room)
        .filter(|s| state.hub.name_free_for(&room, &s.name, &s.sid))
        .map(|s| s.member());
    let (members, online) = state.hub.members(&room);
    // The position first: a change after it is replayed at the join, not missed.
    let upto = state
        .log
        .last_id(&room)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    let recent = state
        .log
        .recent(&room, upto, state.config.recent_messages)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(RoomSnapshot {
        room,
        members,
        online,
        recent: recent.into(),
        upto,
        me,
        max_message_chars: state.config.max_message_chars,
        page_size: state.config.recent_messages,
    })
}

/// Up to one page of messages of `room` older than `before`, oldest first (empty: nothing older).
/// With `down_to`: every message with `down_to <= id < before` instead (at most 1000), so that
/// a reply's original can be shown.
#[server(prefix = "/api", endpoint = "older")]
pub async fn load_older(
    room: String,
    before: u64,
    #[server(default)] down_to: Option<u64>,
) -> Result<Vec<ChatMessage>, ServerFnError> {
    use crate::server::log::Entry;
    use crate::server::AppState;
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("no app state"))?;
    let room = crate::rules::validate_room(&room).map_err(|e| ServerFnError::new(e.to_string()))?;
    let fail = |e: crate::server::log::StoreError| ServerFnError::new(e.to_string());
    match down_to {
        Some(down_to) if down_to < before => {
            let entries = state
                .log
                .between(&room, down_to.saturating_sub(1), before - 1, 1000)
                .await
                .map_err(fail)?;
            Ok(entries
                .into_iter()
                .filter_map(Entry::into_message)
                .collect())
        }
        _ => state
            .log
            .before(&room, before, state.config.recent_messages)
            .await
            .map_err(fail),
    }
}

/// Validates `name` and `avatar`, reserves the name in `room` and sets the session cookie.
/// Nothing is reserved or set when anything is refused. A plain form post (before the WASM)
/// is sent back to its page, with `?refused=<code>` when refused.
#[server(prefix = "/api", endpoint = "join")]
pub async fn join_room(
    room: String,
    name: String,
    avatar: String,
) -> Result<JoinOutcome, ServerFnError> {
    let request: http::request::Parts = leptos_axum::extract().await?;
    let result = join(room, name, avatar).await;
    if let Some(page) = plain_form_page(&request.headers) {
        send_form_back(&page, &result);
    }
    result
}

/// The room page a plain HTML form was posted from (`/` or `/r/<room>`, from its `Referer`; `/`
/// for anything else); `None` for the WASM's own calls, which ask for JSON.
#[cfg(feature = "ssr")]
fn plain_form_page(headers: &http::HeaderMap) -> Option<String> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if !header(http::header::ACCEPT).is_some_and(|a| a.contains("text/html")) {
        return None;
    }
    // Only our own room pages: a path from a forged `Referer` such as `/\evil.example`
    // would send the browser off this site.
    let room = header(http::header::REFERER)
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .and_then(|p| p.split(['?', '#']).next())
        .and_then(|p| p.strip_prefix("/r/"))
        .and_then(|room| crate::rules::validate_room(room).ok().filter(|r| r == room));
    Some(room.map_or_else(|| "/".to_owned(), |room| format!("/r/{room}")))
}

/// Redirects a plain form post back to `page` (303), naming the refusal if there was one.
#[cfg(feature = "ssr")]
fn send_form_back(page: &str, result: &Result<JoinOutcome, ServerFnError>) {
    use crate::protocol::pages::{JoinLimit, RefusalCode};
    let unavailable = RefusalCode::Unavailable.slug();
    let refused = match result {
        Ok(JoinOutcome::Refused { code, .. }) => Some(code.slug()),
        Ok(_) => None,
        Err(ServerFnError::ServerError(m)) => {
            Some(JoinLimit::from_message(m).map_or(unavailable, JoinLimit::slug))
        }
        Err(_) => Some(unavailable),
    };
    let location = match refused {
        Some(code) => format!("{page}?refused={code}"),
        None => page.to_owned(),
    };
    let response = expect_context::<leptos_axum::ResponseOptions>();
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.set_status(http::StatusCode::SEE_OTHER);
        response.insert_header(http::header::LOCATION, value);
    }
}

#[cfg(feature = "ssr")]
async fn join(room: String, name: String, avatar: String) -> Result<JoinOutcome, ServerFnError> {
    use crate::server::chat::join::{claim_name, JoinFailure};
    use crate::server::chat::room::JoinError;
    use crate::server::chat::session;
    use crate::server::ids::SessionId;
    use crate::server::AppState;
    use http::header::{HeaderValue, SET_COOKIE};

    use crate::protocol::pages::RefusalCode as Code;
    let refuse = |field, code, message: String| {
        Ok(JoinOutcome::Refused {
            field,
            message,
            code,
        })
    };
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("no app state"))?;
    let room = match crate::rules::validate_room(&room) {
        Ok(r) => r,
        Err(e) => return refuse(JoinField::Room, Code::RoomName, e.to_string()),
    };
    let name = match crate::rules::validate_name(&name) {
        Ok(n) => n,
        Err(e) => {
            let code = match e {
                crate::rules::NameError::Length => Code::NameLength,
                crate::rules::NameError::Characters => Code::NameInvisible,
                crate::rules::NameError::MixedScripts => Code::NameMixedScripts,
            };
            return refuse(JoinField::Name, code, e.to_string());
        }
    };
    if !crate::avatars::is_avatar(&avatar) {
        return refuse(
            JoinField::Avatar,
            Code::Avatar,
            "Pick one of the avatars".into(),
        );
    }
    if state.draining.is_cancelled() {
        return refuse(
            JoinField::Room,
            Code::Restarting,
            "The server is restarting; try again in a moment".into(),
        );
    }
    let request: http::request::Parts = leptos_axum::extract().await?;
    let headers = &request.headers;
    // Per-address limits (the client's own address, behind a trusted proxy too): refused
    // with 429 and a message the form shows.
    let axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr> =
        leptos_axum::extract().await?;
    let client = crate::server::http::proxy::client_addr(peer.ip(), headers, &state.proxies);
    if let Err(refusal) = admit(&state, &room, client).await {
        let status = match refusal {
            crate::server::http::abuse::Refusal::TooManyRooms => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            _ => http::StatusCode::TOO_MANY_REQUESTS,
        };
        expect_context::<leptos_axum::ResponseOptions>().set_status(status);
        return Err(ServerFnError::ServerError(refusal.to_string()));
    }
    // A browser keeps its session id, so that its other tabs stay the same member.
    let sid = session::from_headers(&state.keys, headers, &room)
        .map(|s| s.sid)
        .unwrap_or_else(SessionId::random);
    // Bans hold against the session, the name and the address, whatever the name asked for.
    let moderator = crate::server::chat::moderate::Moderator {
        hub: &state.hub,
        log: &state.log,
    };
    let unavailable = "The chat service cannot store messages right now; try again in a moment";
    match moderator.admission(&room, &sid, &name, Some(client)).await {
        Ok((_, Some(why))) => return refuse(JoinField::Room, Code::Banned, why),
        Ok((_, None)) => {}
        Err(_) => return refuse(JoinField::Room, Code::Unavailable, unavailable.into()),
    }
    // Only asked for when owner links are made: the log knows the room once it has a history.
    let new_room =
        state.config.room_owner_on_create && matches!(state.log.room_known(&room).await, Ok(false));
    // Held on every node in cluster mode, then reserved here for this browser.
    let hold_ms = state.config.name_reservation_secs * 1000;
    let reserve = || state.hub.reserve(&room, &name, &sid);
    match claim_name(&state.log, &room, &name, &sid, hold_ms, reserve).await {
        Ok(()) => {}
        Err(JoinFailure::Refused(e @ JoinError::NameTaken)) => {
            return refuse(JoinField::Name, Code::NameTaken, e.to_string())
        }
        Err(JoinFailure::Refused(e @ JoinError::RoomFull)) => {
            return refuse(JoinField::Room, Code::RoomFull, e.to_string())
        }
        Err(_) => return refuse(JoinField::Room, Code::Unavailable, unavailable.into()),
    }
    let member = Member { name, avatar };
    let token = state.keys.sign(&state.keys.issue(sid, &room, &member));
    let secure = crate::server::http::proxy::request_is_https(&request, &state.proxies);
    let cookie = session::set_cookie(&room, &token, state.keys.lifetime_secs(), secure);
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.insert_header(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ServerFnError::new(e.to_string()))?,
    );
    // The first member of a new room may claim it (once) with the link shown to them now.
    if new_room {
        if let Ok(Some(token)) = moderator.owner_link(&room).await {
            return Ok(JoinOutcome::Created { member, token });
        }
    }
    Ok(JoinOutcome::Joined(member))
}

/// Counts a join from `ip` into `room` against the per-address limits and `max_rooms`.
#[cfg(feature = "ssr")]
async fn admit(
    state: &crate::server::AppState,
    room: &str,
    ip: std::net::IpAddr,
) -> Result<(), crate::server::http::abuse::Refusal> {
    use crate::server::http::abuse::Refusal;
    let limits = &state.address_limits;
    limits.join(ip)?;
    // A room with members here or known to the log is not new (a store that cannot answer
    // is the reservation's to report, below).
    let new = state.hub.room(room).is_none() && !state.log.room_known(room).await.unwrap_or(true);
    if new {
        let max = state.config.max_rooms;
        if max > 0 && state.log.room_count().await.unwrap_or(0) >= max {
            return Err(Refusal::TooManyRooms);
        }
        limits.new_room(ip)?;
        let _ = state.log.note_room(room).await;
    }
    limits.reserve(ip)
}

/// Forgets this browser's session in `room` (its open sockets leave as they close).
#[server(prefix = "/api", endpoint = "leave")]
pub async fn leave_room(room: String) -> Result<(), ServerFnError> {
    use crate::server::chat::session;
    use crate::server::http::proxy;
    use crate::server::AppState;
    use http::header::{HeaderValue, SET_COOKIE};
    let room = crate::rules::validate_room(&room).map_err(|e| ServerFnError::new(e.to_string()))?;
    let request: http::request::Parts = leptos_axum::extract().await?;
    let secure = use_context::<AppState>()
        .is_some_and(|state| proxy::request_is_https(&request, &state.proxies));
    let cookie = session::set_cookie(&room, "", 0, secure);
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.insert_header(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ServerFnError::new(e.to_string()))?,
    );
    Ok(())
}

/// The server's recent figures (on the admin address when one is set).
#[server(prefix = "/api", endpoint = "status")]
pub async fn load_status() -> Result<StatusSnapshot, ServerFnError> {
    use crate::server::AppState;
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("no app state"))?;
    Ok(state.status.snapshot())
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::plain_form_page;

    fn page(accept: &str, referer: Option<&str>) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ACCEPT, accept.parse().unwrap());
        if let Some(r) = referer {
            headers.insert(http::header::REFERER, r.parse().unwrap());
        }
        plain_form_page(&headers)
    }

    #[test]
    fn plain_form_posts_go_back_to_their_page_on_this_origin_only() {
        let html = "text/html,application/xhtml+xml";
        assert_eq!(
            page(html, Some("https://chat.example/r/tea?refused=name_taken")).as_deref(),
            Some("/r/tea")
        );
        assert_eq!(page(html, Some("http://h:3000/")).as_deref(), Some("/"));
        assert_eq!(
            page(html, Some("https://h//evil.example/x")).as_deref(),
            Some("/")
        );
        for forged in [
            "https://h/\\evil.example",
            "https://h/r/Tea",
            "https://h/r/a/../../x",
        ] {
            assert_eq!(page(html, Some(forged)).as_deref(), Some("/"), "{forged}");
        }
        assert_eq!(page(html, None).as_deref(), Some("/"));
        // The WASM's own calls ask for JSON and get the outcome itself.
        assert_eq!(page("application/json", Some("https://h/r/tea")), None);
    }
}
