//! The built site (WASM, JS, CSS, avatars) inside the server binary, so that one file is the whole release.
//!
//! Feature `embed`. Served with content types, ETags, precompressed variants and cache lifetimes.

// Own code because tower-http's ServeDir reads only from disk, and axum-embed 0.1.0 (rust-embed over axum) marks every file immutable for a week (our unhashed files must revalidate), ignores q-values, sends no Vary and would bring chrono back.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::ErrorHandler;
use rust_embed::{EmbeddedFile, RustEmbed};
use sha2::{Digest, Sha256};
use std::fmt::Write;

use crate::app::shell;
use crate::server::state::AppState;

/// `target/site` as cargo-leptos left it. Release builds carry its files; debug builds read
/// them from disk on each request (so `cargo leptos watch` sees rebuilds). Empty if missing.
#[derive(RustEmbed)]
#[folder = "target/site"]
#[allow_missing = true]
struct Site;

/// The site's folder of WASM, JS and CSS, as cargo-leptos built it.
const PKG_DIR: &str = match option_env!("LEPTOS_SITE_PKG_DIR") {
    Some(dir) => dir,
    None => "pkg",
};

/// The base name of those files, as cargo-leptos built them.
const OUTPUT_NAME: &str = match option_env!("LEPTOS_OUTPUT_NAME") {
    Some(name) => name,
    None => env!("CARGO_PKG_NAME"),
};

/// For URLs under `pkg/<hash>/`: their content never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For every other file: cache, but ask (by ETag) before each use.
const REVALIDATE: &str = "no-cache";

#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    #[error("the site built into this binary lacks {0}: build it with `cargo leptos build --release --precompress`")]
    NoSite(String),
}

/// Points `options` at the embedded site whatever `LEPTOS_*` says at run time: the output name
/// and pkg folder it was built with and, in release builds, `pkg/<hash of its files>` as the
/// pkg URL, which [`fallback`] serves with a one-year immutable cache lifetime.
pub fn prepare(mut options: LeptosOptions) -> Result<LeptosOptions, AssetsError> {
    for ext in ["js", "wasm", "css"] {
        let file = format!("{PKG_DIR}/{OUTPUT_NAME}.{ext}");
        if Site::get(&file).is_none() {
            return Err(AssetsError::NoSite(file));
        }
    }
    options.output_name = OUTPUT_NAME.into();
    // Debug builds read the files from disk, which may change under a running server.
    options.site_pkg_dir = if cfg!(debug_assertions) {
        PKG_DIR.into()
    } else {
        format!("{PKG_DIR}/{}", pkg_hash()).into()
    };
    Ok(options)
}

/// A short hash over the names and contents of every file under `pkg/`.
fn pkg_hash() -> String {
    let prefix = format!("{PKG_DIR}/");
    let mut names: Vec<_> = Site::iter().filter(|n| n.starts_with(&prefix)).collect();
    names.sort();
    let mut hasher = Sha256::new();
    for name in names {
        if let Some(file) = Site::get(&name) {
            hasher.update(name.as_bytes());
            hasher.update(file.metadata.sha256_hash());
        }
    }
    hex(&hasher.finalize()[..5])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The router's fallback: embedded files, and the app's 404 page for any other path.
pub fn fallback(state: AppState) -> Router {
    let options = state.leptos_options.clone();
    let not_found = ErrorHandler::new_with_context(
        move || provide_context(state.clone()),
        shell,
        options.clone(),
    );
    Router::new()
        .fallback_service(not_found)
        .layer(middleware::from_fn_with_state(options, serve))
}

async fn serve(State(options): State<LeptosOptions>, req: Request, next: Next) -> Response {
    match respond(
        &options.site_pkg_dir,
        req.method(),
        req.uri().path(),
        req.headers(),
    ) {
        Some(res) => res,
        None => next.run(req).await,
    }
}

/// The response for an embedded file, or `None` if `path` names none.
fn respond(pkg_url: &str, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (name, cache) = embedded_name(pkg_url, path)?;
    let file = Site::get(&name)?;
    let content_type = file.metadata.mimetype().to_owned();
    let accept = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut has_variants = false;
    let mut chosen: (EmbeddedFile, Option<&str>) = (file, None);
    for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
        let Some(variant) = Site::get(&format!("{name}.{ext}")) else {
            continue;
        };
        has_variants = true;
        if chosen.1.is_none() && accepts(accept, coding) && variant.data.len() < chosen.0.data.len()
        {
            chosen = (variant, Some(coding));
        }
    }
    let (file, coding) = chosen;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));

    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag));

    let mut res = if fresh {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let mut res = Response::new(Body::from(file.data));
        set(res.headers_mut(), CONTENT_TYPE, &content_type);
        if let Some(coding) = coding {
            set(res.headers_mut(), CONTENT_ENCODING, coding);
        }
        res
    };
    let h = res.headers_mut();
    set(h, ETAG, &etag);
    set(h, CACHE_CONTROL, cache);
    if has_variants {
        set(h, VARY, "accept-encoding");
    }
    Some(res)
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The embedded file a URL path names, with its cache policy: `/pkg/<hash>/<file>` is
/// `pkg/<file>` if `<hash>` is the current one; any other path is itself.
fn embedded_name(pkg_url: &str, path: &str) -> Option<(String, &'static str)> {
    let rel = path.strip_prefix('/')?;
    if rel
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    let pkg_url = pkg_url.trim_matches('/');
    if pkg_url != PKG_DIR {
        if let Some(file) = rel.strip_prefix(pkg_url).and_then(|r| r.strip_prefix('/')) {
            return Some((format!("{PKG_DIR}/{file}"), IMMUTABLE));
        }
    }
    Some((rel.to_owned(), REVALIDATE))
}

/// Whether an `Accept-Encoding` value allows `coding` (by name or `*`, with a non-zero q).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    let mut wildcard = false;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            wildcard = q > 0.0;
        }
    }
    wildcard
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, or `*`).
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_pkg_urls_map_to_pkg_files_and_are_immutable() {
        let pkg = format!("{PKG_DIR}/abc123");
        assert_eq!(
            embedded_name(&pkg, &format!("/{PKG_DIR}/abc123/chatroom.js")),
            Some((format!("{PKG_DIR}/chatroom.js"), IMMUTABLE))
        );
        // A stale hash names no embedded file.
        assert_eq!(
            embedded_name(&pkg, &format!("/{PKG_DIR}/old999/chatroom.js")),
            Some((format!("{PKG_DIR}/old999/chatroom.js"), REVALIDATE))
        );
        assert_eq!(
            embedded_name(&pkg, "/avatars/fox.svg"),
            Some(("avatars/fox.svg".to_owned(), REVALIDATE))
        );
        assert_eq!(
            embedded_name(PKG_DIR, &format!("/{PKG_DIR}/chatroom.js")),
            Some((format!("{PKG_DIR}/chatroom.js"), REVALIDATE))
        );
    }

    #[test]
    fn odd_paths_name_no_file() {
        for path in [
            "/",
            "/avatars/",
            "/avatars//fox.svg",
            "/../Cargo.toml",
            "/a/./b",
            "x",
        ] {
            assert_eq!(embedded_name("pkg/abc", path), None, "{path}");
        }
    }

    #[test]
    fn accept_encoding_is_read_with_q_values_and_wildcards() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("GZIP", "gzip"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("gzip", "br"));
        assert!(!accepts("", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("br;q=0, *", "br"));
        assert!(!accepts("identity", "gzip"));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = "\"0a1b\"";
        assert!(etag_matches("\"0a1b\"", etag));
        assert!(etag_matches("\"x\", W/\"0a1b\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"0a1c\"", etag));
        assert!(!etag_matches("", etag));
    }
}
