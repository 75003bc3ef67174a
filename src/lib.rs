//! Chat room: one crate compiled twice, as the axum server (`ssr`) and as the WASM front end (`hydrate`).
//!
//! Data flow, as laid out in the tree (ARCHITECTURE.md):
//! browser `components/` → `client::socket` → `server::net` → `server::chat` → `server::log`
//! → `server::chat` fan-out → every `server::net` connection → browser `client::socket` →
//! `live_room`/`model` → `components/`. `protocol`, `rules` and `avatars` are the shared
//! definitions both sides compile.

#![recursion_limit = "256"]

pub mod address;
pub mod api;
pub mod app;
pub mod attention;
pub mod avatars;
pub mod components;
pub mod connection;
pub mod i18n;
pub mod live_room;
pub mod mentions;
pub mod model;
pub mod parts;
pub mod protocol;
pub mod richtext;
pub mod rules;
pub mod standing;
pub mod typing;

#[cfg(feature = "hydrate")]
pub mod client;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: hydrates the server-rendered page, once the WASM chunks of the lazily
/// loaded views the server rendered into it have come (a view must be whole to be hydrated).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let document = web_sys::window().and_then(|w| w.document());
        let shows = |selector: &str| {
            document
                .as_ref()
                .and_then(|d| d.query_selector(selector).ok().flatten())
                .is_some()
        };
        if shows("[data-testid=chat]") {
            futures::future::join(
                components::chat_view::__preload_lazy_chat_view(),
                components::chat_view::__preload_lazy_member_tools(),
            )
            .await;
        }
        if shows(".status-page") {
            components::server_status::__preload_lazy_status_page().await;
        }
        leptos::mount::hydrate_body(app::App);
        if let Some(root) = document.and_then(|d| d.document_element()) {
            // Lets tests (and people debugging) see that the WASM took over the page.
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
