//! Security headers on every response: a strict Content-Security-Policy, no sniffing, no framing, no referrer across sites.
//!
//! A page's policy allows only this origin's scripts, plus the one inline hydration script by
//! the nonce leptos_axum makes for each response (`script-src 'nonce-…'`), WebAssembly
//! compilation (`'wasm-unsafe-eval'`), and sockets to this host. Responses that set no policy
//! of their own (files, errors, server functions) get one that allows nothing inline.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of a response that set none of its own.
const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The policy of a rendered page whose inline hydration script carries `nonce`; `host` is the
/// `Host` the page was asked of (sockets go back to it: older browsers do not count `ws:` as
/// `'self'`).
pub fn page_csp(nonce: &str, host: Option<&str>) -> String {
    // Only a plain host[:port] goes into the header; anything else gets 'self' alone.
    let sockets = host
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{sockets}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Adds the security headers a response lacks.
pub async fn secure(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    add_defaults(response.headers_mut());
    response
}

fn add_defaults(h: &mut HeaderMap) {
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // For browsers without CSP's frame-ancestors.
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_policy_allows_its_nonce_and_sockets_to_its_own_host_only() {
        let csp = page_csp("abc", Some("chat.example.com:8443"));
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(csp.contains(
            "connect-src 'self' ws://chat.example.com:8443 wss://chat.example.com:8443;"
        ));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        // A Host header cannot smuggle sources in.
        let csp = page_csp("abc", Some("evil.com *; script-src *"));
        assert!(csp.contains("connect-src 'self';"), "{csp}");
    }

    #[test]
    fn defaults_do_not_replace_a_policy_already_set() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("x"),
        );
        add_defaults(&mut h);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "x");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    }
}
