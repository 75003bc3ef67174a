//! The browser's side of attention: whether the tab is hidden, desktop notifications, the remembered bell.

use wasm_bindgen::JsValue;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

/// Where the bell's state is remembered (localStorage).
const NOTIFY_KEY: &str = "chat.notify-mentions";

/// Is the page hidden (another tab in front, the window minimised)?
pub fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden)
}

/// Does this browser have desktop notifications?
fn supported() -> bool {
    web_sys::window().is_some_and(|w| {
        js_sys::Reflect::has(&w, &JsValue::from_str("Notification")).unwrap_or(false)
    })
}

/// May this page show notifications?
pub fn notifications_granted() -> bool {
    supported() && Notification::permission() == NotificationPermission::Granted
}

/// Asks the browser for permission to notify (only ever after a click on the bell): true if granted.
pub async fn ask_permission() -> bool {
    if !supported() {
        return false;
    }
    if notifications_granted() {
        return true;
    }
    let Ok(promise) = Notification::request_permission() else {
        return false;
    };
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(answer) => answer.as_string().as_deref() == Some("granted"),
        Err(_) => false,
    }
}

/// Shows a desktop notification; a click on it brings the page to the front.
pub fn notify(title: &str, body: &str) {
    if !notifications_granted() {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    if let Ok(note) = Notification::new_with_options(title, &options) {
        let focus = wasm_bindgen::closure::Closure::once_into_js(|| {
            if let Some(w) = web_sys::window() {
                let _ = w.focus();
            }
        });
        note.set_onclick(Some(wasm_bindgen::JsCast::unchecked_ref(&focus)));
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Was the bell on when last left?
pub fn bell_remembered() -> bool {
    storage()
        .and_then(|s| s.get_item(NOTIFY_KEY).ok().flatten())
        .is_some_and(|v| v == "on")
}

/// Remembers the bell's state for next time.
pub fn remember_bell(on: bool) {
    if let Some(s) = storage() {
        let _ = s.set_item(NOTIFY_KEY, if on { "on" } else { "off" });
    }
}
