//! Reads a room's audit log (`GET /api/rooms/<room>/audit`, with this browser's session cookie).

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::protocol::pages::AuditEntry;

/// The room's newest moderation actions, newest first, or what went wrong in words.
pub async fn load(room: &str) -> Result<Vec<AuditEntry>, String> {
    let window = web_sys::window().ok_or("No window")?;
    let failed = |_| "The audit log could not be loaded".to_string();
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str(&format!("/api/rooms/{room}/audit")))
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)?;
    match response.status() {
        200 => {}
        401 | 403 => return Err("Only the room's moderators may read its audit log".into()),
        404 => return Err("This server has no audit log".into()),
        status => return Err(format!("The audit log could not be loaded ({status})")),
    }
    let text = JsFuture::from(response.text().map_err(failed)?)
        .await
        .map_err(failed)?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|_| "The audit log could not be read".to_string())
}
