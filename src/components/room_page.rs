//! A room's page: the snapshot the server loaded for it, then the join form or the chat.

use leptos::prelude::*;

use super::attention::RoomAttention;
use super::chat_view::{lazy_chat_view, lazy_member_tools, MembersDrawer};
use super::join_form::JoinForm;
use super::lang_switch::LanguageSwitch;
use super::room_header::RoomInfo;
use super::{lazy_view, Outgoing};
use crate::i18n::{t, use_lang, Text};
use crate::live_room::LiveRoom;
use crate::model::{Parts, RoomModel};
use crate::protocol::pages::{PageError, PageSnapshot, RoomSnapshot};
use crate::rules::{validate_room, RoomError};

/// The words for why a room's page could not load.
fn error_text(error: &PageError) -> Text {
    match error {
        PageError::InvalidRoom => RoomError::Invalid.text(),
        PageError::Server(message) => Text::raw(message.as_str()),
    }
}

/// The `id` of the `<script>` that carries the page's snapshot to the browser.
const SNAPSHOT: &str = "room-snapshot";

/// The page of the room its address names: the snapshot the server loaded for it (before
/// rendering, `server::app`), then the join form or the chat.
///
/// The snapshot comes with the page as JSON and the browser reads it when it hydrates: no
/// resource to wait for and no suspense around the page (their machinery was 12 KB of the
/// first load's brotli WASM), and another room is another page.
#[component]
pub fn RoomPage() -> impl IntoView {
    let lang = use_lang();
    let page = page_snapshot();
    // JSON in `<script>`: a `<` could end it, and is written `\u003c` (the same string to JSON).
    #[cfg(feature = "ssr")]
    let json = serde_json::to_string(&page)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    #[cfg(not(feature = "ssr"))]
    let json = String::new();
    let body = match page {
        Ok(snap) => view! { <RoomView snap /> }.into_any(),
        Err(error) => view! {
            <main class="page-message">
                <h1>{t("cannot-open-room")}</h1>
                <p data-testid="room-error">{move || error_text(&error).render(lang.get())}</p>
                <p>
                    <a href="/">{t("go-to-lobby")}</a>
                </p>
            </main>
        }
        .into_any(),
    };
    view! {
        <script type="application/json" id=SNAPSHOT inner_html=json></script>
        {body}
    }
}

/// The page's snapshot: on the server as the request brought it, in the browser as the page did.
fn page_snapshot() -> PageSnapshot {
    #[cfg(feature = "ssr")]
    let snapshot = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<PageSnapshot>().cloned());
    #[cfg(not(feature = "ssr"))]
    let snapshot = document()
        .get_element_by_id(SNAPSHOT)
        .and_then(|script| script.text_content())
        .and_then(|json| serde_json::from_str(&json).ok());
    snapshot.unwrap_or_else(|| Err(PageError::Server("The room could not be loaded.".into())))
}

#[component]
fn RoomView(snap: RoomSnapshot) -> impl IntoView {
    let lang = use_lang();
    let room = snap.room.clone();
    let model = LiveRoom::new(RoomModel::from_page(snap));
    let joined = move || model.with(Parts::ME, |m| m.me.is_some());
    // "#lobby · Chat", and "(@) (3) #lobby · Chat" while unread messages wait in a hidden tab.
    #[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
    let attention = RoomAttention::provide(model);
    let online = move || model.with(Parts::ONLINE, |m| m.online);
    // Frames for the live connection, which the chat opens: the header's moderation tools send there too.
    let outgoing: Outgoing = StoredValue::new(None);
    let drawer = MembersDrawer::default();
    // The server's `<title>` has no unread count: once live, the page keeps it current.
    #[cfg(feature = "hydrate")]
    {
        let room = room.clone();
        Effect::new(move |_| document().set_title(&attention.title(&room, lang.get())));
    }
    view! {
        <div class="layout">
            <header class="topbar" class:joined=joined>
                <div class="room-title">
                    <h1 class="room-name">
                        <span class="hash">"#"</span>
                        {room.clone()}
                    </h1>
                    <RoomInfo model />
                </div>
                <span class="online-count" data-testid="online-count">
                    {move || {
                        Text::new("online-count").arg("count", online() as i64).render(lang.get())
                    }}
                </span>
                <Show when=joined>
                    {move || lazy_view(lazy_member_tools(model, outgoing, drawer))}
                </Show>
                <RoomSwitcher />
                <LanguageSwitch />
            </header>
            <Show
                when=joined
                fallback=move || {
                    view! { <JoinForm room=model.with_untracked(|m| m.room.clone()) model /> }
                }
            >
                {move || lazy_view(lazy_chat_view(model, outgoing, drawer))}
            </Show>
        </div>
    }
}

/// A small form to go to another room.
#[component]
fn RoomSwitcher() -> impl IntoView {
    let (target, set_target) = signal(String::new());
    let (error, set_error) = signal(None::<Text>);
    let lang = use_lang();
    let go = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match validate_room(&target.get_untracked()) {
            Ok(room) => {
                set_error.set(None);
                // Another room is another page, loaded like any other.
                let _ = window().location().set_href(&format!("/r/{room}"));
            }
            Err(e) => set_error.set(Some(e.text())),
        }
    };
    view! {
        <form class="room-switcher" on:submit=go>
            <label class="sr-only" for="room-input">
                {t("room-label")}
            </label>
            <input
                id="room-input"
                placeholder="other-room"
                prop:value=target
                on:input=move |ev| set_target.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().to_string()
                title=move || {
                    error.with(|e| e.as_ref().map(|e| e.render(lang.get())).unwrap_or_default())
                }
            />
            <button type="submit">{t("go")}</button>
        </form>
    }
}
