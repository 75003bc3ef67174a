//! The page's address: which page it shows and what its query says, on both sides.
//!
//! Read from the request on the server and from `location` in the browser. Pages change by
//! loading, not by a client-side router: leptos_router and leptos_meta were 38 KB of the first
//! load's brotli WASM (339.1 KB with them, 300.9 KB without), and another room is another page.

use crate::attention::room_title;
use crate::i18n::{tr, Lang};
use crate::rules::{validate_room, DEFAULT_ROOM};

/// What an address shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/` (the default room) or `/r/<room>`, the room as written (its page checks it).
    Room(String),
    /// `/status`: the server's figures.
    Status,
    /// Any other path.
    NotFound,
}

impl Page {
    /// The page at `path` (without its query).
    pub fn at(path: &str) -> Page {
        match path {
            "/" => Page::Room(DEFAULT_ROOM.to_string()),
            "/status" => Page::Status,
            _ => match path.strip_prefix("/r/") {
                Some(room) if !room.is_empty() && !room.contains('/') => {
                    Page::Room(room.to_string())
                }
                _ => Page::NotFound,
            },
        }
    }

    /// The page this document shows.
    pub fn current() -> Page {
        Page::at(&path_and_query().0)
    }

    /// The document's title as the server sends it; a room's page adds what is unread once live.
    pub fn title(&self, lang: Lang) -> String {
        match self {
            Page::Room(room) => match validate_room(room) {
                Ok(room) => room_title(&room, lang),
                Err(_) => tr(lang, "app-title", &[]),
            },
            Page::Status => tr(lang, "status-title", &[]),
            Page::NotFound => tr(lang, "app-title", &[]),
        }
    }
}

/// The value of `name` in the address's query, as written (not percent-decoded: callers accept
/// only values they know).
pub fn query_value(name: &str) -> Option<String> {
    let (_, query) = path_and_query();
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_string())
    })
}

/// The address's path and query (without its `?`).
#[cfg(feature = "ssr")]
fn path_and_query() -> (String, String) {
    use leptos::prelude::use_context;
    use_context::<http::request::Parts>()
        .map(|p| {
            let query = p.uri.query().unwrap_or_default().to_string();
            (p.uri.path().to_string(), query)
        })
        .unwrap_or_else(|| ("/".into(), String::new()))
}

/// The address's path and query (without its `?`).
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn path_and_query() -> (String, String) {
    let location = web_sys::window().map(|w| w.location());
    let read = |f: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>| {
        location
            .as_ref()
            .and_then(|l| f(l).ok())
            .unwrap_or_default()
    };
    let search = read(web_sys::Location::search);
    let query = search.strip_prefix('?').unwrap_or(&search).to_string();
    (read(web_sys::Location::pathname), query)
}

/// Neither side: the default room.
#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn path_and_query() -> (String, String) {
    ("/".into(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_pages() {
        assert_eq!(Page::at("/"), Page::Room("lobby".into()));
        assert_eq!(Page::at("/r/tea"), Page::Room("tea".into()));
        assert_eq!(Page::at("/status"), Page::Status);
        for other in ["/r/", "/r/a/b", "/rooms", "/status/x", "/r"] {
            assert_eq!(Page::at(other), Page::NotFound, "{other}");
        }
    }

    #[test]
    fn titles_name_the_room_in_the_readers_language() {
        assert_eq!(Page::at("/r/Tea").title(Lang::En), "#tea · Chat");
        assert_eq!(Page::at("/r/bad!").title(Lang::En), "Chat");
        assert_ne!(Page::Status.title(Lang::Zh), Page::Status.title(Lang::En));
    }
}
