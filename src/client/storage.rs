//! What the browser remembers between visits: the last name and avatar used (localStorage).

use crate::protocol::Member;

const KEY: &str = "chat.identity";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The identity used last time, if any.
pub fn load_identity() -> Option<Member> {
    let raw = storage()?.get_item(KEY).ok()??;
    serde_json::from_str(&raw).ok()
}

/// Remembers `member` for next time.
pub fn save_identity(member: &Member) {
    if let (Some(s), Ok(raw)) = (storage(), serde_json::to_string(member)) {
        let _ = s.set_item(KEY, &raw);
    }
}
