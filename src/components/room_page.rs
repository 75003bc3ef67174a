//! A room's page: loads its snapshot (server-rendered first paint), then shows the join form or the chat.

use leptos::prelude::*;

use super::attention::RoomAttention;
use super::chat_view::{lazy_chat_view, lazy_member_tools, MembersDrawer};
use super::join_form::JoinForm;
use super::lang_switch::LanguageSwitch;
use super::room_header::RoomInfo;
use super::{lazy_view, Outgoing};
use crate::api::load_room;
use crate::i18n::{t, use_lang, Text};
use crate::live_room::LiveRoom;
use crate::model::{Parts, RoomModel};
use crate::protocol::pages::RoomSnapshot;
use crate::rules::{validate_room, RoomError};

/// Why a room's page could not load (kept from the server's render for hydration).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum LoadError {
    InvalidRoom,
    /// The server's words.
    Server(String),
}

impl LoadError {
    fn text(&self) -> Text {
        match self {
            LoadError::InvalidRoom => RoomError::Invalid.text(),
            LoadError::Server(message) => Text::raw(message.as_str()),
        }
    }
}

/// The page of `room`, as its address names it.
#[component]
pub fn RoomPage(room: String) -> impl IntoView {
    let lang = use_lang();
    let snapshot = Resource::new(move || room.clone(), fetch_room);
    view! {
        <Suspense fallback=|| {
            view! { <main class="page-message">{t("loading")}</main> }
        }>
            {move || Suspend::new(async move {
                match snapshot.await {
                    Ok(snap) => view! { <RoomView snap /> }.into_any(),
                    Err(message) => {
                        view! {
                            <main class="page-message">
                                <h1>{t("cannot-open-room")}</h1>
                                <p data-testid="room-error">
                                    {move || message.text().render(lang.get())}
                                </p>
                                <p>
                                    <a href="/">{t("go-to-lobby")}</a>
                                </p>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Loads `room`'s snapshot, from a WASM chunk of its own: the page hydrates with the snapshot the
/// server rendered, so the browser runs this only to load the page again (the server function's
/// client and a second decoder of the snapshot were NN KB of the first load).
#[lazy]
async fn fetch_room(room: String) -> Result<RoomSnapshot, LoadError> {
    match validate_room(&room) {
        Ok(room) => load_room(room).await.map_err(|e| match e {
            ServerFnError::ServerError(msg) => LoadError::Server(msg),
            other => LoadError::Server(other.to_string()),
        }),
        Err(_) => Err(LoadError::InvalidRoom),
    }
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
