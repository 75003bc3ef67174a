//! A claim link's token in the page's address: read once, then taken out of the address.

/// The `claim` query parameter of the page's address, if any.
pub fn from_url() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("claim="))
        .map(|token| {
            js_sys::decode_uri_component(token)
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_else(|| token.to_string())
        })
        .filter(|token| !token.is_empty())
}

/// Removes `claim` from the address bar (history.replaceState), keeping the rest.
pub fn forget_in_url() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let (Ok(path), Ok(search), Ok(hash)) =
        (location.pathname(), location.search(), location.hash())
    else {
        return;
    };
    let rest: Vec<&str> = search
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("claim="))
        .collect();
    let query = if rest.is_empty() {
        String::new()
    } else {
        format!("?{}", rest.join("&"))
    };
    if let Ok(history) = window.history() {
        let url = format!("{path}{query}{hash}");
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// The absolute address of this page's room with a claim token (`https://host/r/<room>?claim=…`).
pub fn link(room: &str, token: &str) -> String {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let token = js_sys::encode_uri_component(token);
    format!("{origin}/r/{room}?claim={token}")
}
