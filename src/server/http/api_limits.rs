//! Limits on server-function requests (`/api/*`), refused with a message the page can show.
//!
//! A small body limit; refusals are answered 400, 408 or 413 instead of 500 with internal text.
//!
//! Refusals keep the server-function error format (`ServerError|<message>` with the
//! `serverfnerror` header), so the browser's server-function client decodes them as errors.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// Largest body a server function accepts (the biggest, a join, is a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;
/// Longest time a request body may take to arrive.
const BODY_TIME: Duration = Duration::from_secs(10);
/// Of a body over the limit, up to this much more is read and dropped before answering, so
/// that the client reads the 413 instead of a reset.
const DRAIN_MAX: u64 = 64 << 20;
/// Header leptos's server functions mark their errors with.
const SERVER_FN_ERROR: &str = "serverfnerror";

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Slow,
    Broken,
}

/// The middleware: bounds `/api/*` bodies and turns argument errors into 400s.
pub async fn guard(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = match read_body(body, declared).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                &path,
                &format!("The request is too large (at most {} KiB)", MAX_BODY / 1024),
            )
        }
        Err(BodyError::Slow) => {
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                &path,
                "The request took too long to arrive",
            )
        }
        Err(BodyError::Broken) => {
            return refusal(StatusCode::BAD_REQUEST, &path, "The request was cut off")
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    client_errors(response, &path).await
}

/// The whole body, if it is small enough and arrives in time. Of one that is too large, what
/// follows is read and dropped (up to [`DRAIN_MAX`] and the time limit).
async fn read_body(body: Body, declared: Option<u64>) -> Result<Bytes, BodyError> {
    let deadline = Instant::now() + BODY_TIME;
    let mut over = declared.is_some_and(|n| n > MAX_BODY as u64);
    let mut buf = Vec::new();
    let mut seen = 0u64;
    let mut stream = body.into_data_stream();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => break,
            Ok(Some(Err(_))) if over => return Err(BodyError::TooLarge),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Err(_) if over => return Err(BodyError::TooLarge),
            Err(_) => return Err(BodyError::Slow),
        };
        seen += chunk.len() as u64;
        if over {
            if seen > DRAIN_MAX {
                return Err(BodyError::TooLarge);
            }
            continue;
        }
        if buf.len() + chunk.len() > MAX_BODY {
            over = true;
            buf = Vec::new();
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if over {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(buf))
}

/// A server function's refusal of its arguments (malformed or missing fields) as 400 with a
/// short message; any other response as it is.
async fn client_errors(response: Response, path: &str) -> Response {
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR)
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(text) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let text = String::from_utf8_lossy(&text);
    let (kind, detail) = text.split_once('|').unwrap_or(("", &text));
    match kind {
        "Args" | "MissingArg" | "Deserialization" => refusal(
            StatusCode::BAD_REQUEST,
            path,
            &format!("Malformed request: {}", short(detail)),
        ),
        _ => Response::from_parts(parts, Body::from(text.into_owned())),
    }
}

/// The first line of `detail`, at most 200 characters.
fn short(detail: &str) -> String {
    let line = detail.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

/// A refusal in the server-function error format.
fn refusal(status: StatusCode, path: &str, message: &str) -> Response {
    let mut response = (status, format!("ServerError|{message}")).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(path) {
        h.insert(SERVER_FN_ERROR, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_and_small_ones_pass() {
        let small = Body::from("room=lobby&name=Ada&avatar=owl");
        assert_eq!(read_body(small, None).await.ok().map(|b| b.len()), Some(30));
        let big = Body::from(vec![b'x'; MAX_BODY + 1]);
        assert!(matches!(
            read_body(big, None).await,
            Err(BodyError::TooLarge)
        ));
        let declared = Body::from("x");
        assert!(matches!(
            read_body(declared, Some(50 << 20)).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[test]
    fn details_are_cut_to_one_short_line() {
        assert_eq!(
            short("missing field `name`\nat line 3"),
            "missing field `name`"
        );
        assert_eq!(short(&"x".repeat(500)).len(), 200);
    }
}
