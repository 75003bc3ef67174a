//! Reads a room's audit log (`GET /api/rooms/<room>/audit`, with this browser's session cookie).

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::i18n::Text;
use crate::protocol::pages::AuditEntry;

/// The room's newest moderation actions, newest first, or what went wrong in words.
pub async fn load(room: &str) -> Result<Vec<AuditEntry>, Text> {
    let failed = |_: wasm_bindgen::JsValue| Text::new("audit-load-failed");
    let window = web_sys::window().ok_or_else(|| Text::new("audit-load-failed"))?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str(&format!("/api/rooms/{room}/audit")))
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)?;
    match response.status() {
        200 => {}
        401 | 403 => return Err(Text::new("audit-forbidden")),
        404 => return Err(Text::new("audit-none")),
        _ => return Err(Text::new("audit-load-failed")),
    }
    let text = JsFuture::from(response.text().map_err(failed)?)
        .await
        .map_err(failed)?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|_| Text::new("audit-load-failed"))
}
