//! The reader's attention on the page: the title's unread count, the "New messages" divider, the mentions bell.
//!
//! [`RoomAttention::provide`] is called once per room view; the parts below find it as a
//! context. Once the chat starts it with [`RoomAttention::watch`] (from the chat's chunk: a
//! visitor has no new messages to follow), in the browser it follows the tab's visibility and
//! the model's new messages (`attention::Attention` decides what they mean) and shows a desktop
//! notification for a mention while the tab is hidden, if the reader turned the bell on. The
//! server renders the plain title, no divider and the bell off, as the browser's first paint does.

use leptos::prelude::*;
use leptos::reactive::computed::Selector;

use crate::attention::Attention;
use crate::i18n::{t, tr, use_lang, Lang};
use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::protocol::MessageId;
use crate::richtext::Names;

/// One room's attention state, shared by the title, the message list and the bell.
#[derive(Clone, Copy)]
pub struct RoomAttention {
    state: RwSignal<Attention>,
    /// The names a mention may refer to (the members and the reader), once the chat watches.
    names: StoredValue<Option<Memo<Names>>>,
    /// Which message the divider is above: each row's check re-runs only when it changes for that row.
    divider: StoredValue<Selector<Option<MessageId>>>,
    /// The bell: notify of mentions while the tab is hidden.
    bell: RwSignal<bool>,
}

impl RoomAttention {
    /// Creates the room's attention and provides it to the views below.
    pub fn provide(model: LiveRoom) -> Self {
        let state = RwSignal::new(Attention::new(model.with_untracked(|m| m.last_id), false));
        let divider = StoredValue::new(Selector::new(move || state.with(|a| a.divider)));
        let attention = RoomAttention {
            state,
            names: StoredValue::new(None),
            divider,
            bell: RwSignal::new(false),
        };
        provide_context(attention);
        attention
    }

    /// Follows the tab's visibility (in the browser only) and the new messages, for as long as
    /// the calling view (the chat) lives.
    pub fn watch(self, model: LiveRoom) {
        let names = Memo::new(move |_| {
            model.with(Parts::MEMBERS | Parts::ME, |m| {
                Names::new(
                    m.members.iter().map(|x| x.name.as_str()),
                    m.me.as_ref().map(|me| me.name.as_str()),
                )
            })
        });
        self.names.set_value(Some(names));
        #[cfg(feature = "hydrate")]
        {
            use crate::client::attention::{bell_remembered, notifications_granted, page_hidden};
            let RoomAttention { state, bell, .. } = self;
            // After hydration, so that the first paint matches the server's.
            Effect::new(move |_| {
                state.update(|a| a.set_hidden(page_hidden()));
                // Remembered from the last visit, and only while the browser still allows it.
                bell.set(bell_remembered() && notifications_granted());
            });
            // The event is fired at the document and bubbles up to the window.
            let listener = window_event_listener_untyped("visibilitychange", move |_| {
                state.update(|a| a.set_hidden(page_hidden()));
            });
            on_cleanup(move || listener.remove());
        }
        let RoomAttention { state, bell, .. } = self;
        Effect::new(move |_| {
            let names = names.get_untracked();
            let notes = model.with(Parts::ENTRIES, |m| {
                let mut notes = Vec::new();
                // The views hear of it only when what they show changed (not for each message read in view).
                state.maybe_update(|a| {
                    let before = (a.unread, a.mentioned, a.divider);
                    notes = a
                        .catch_up(&m.entries, &names)
                        .into_iter()
                        .map(crate::attention::notification_body)
                        .collect();
                    (a.unread, a.mentioned, a.divider) != before
                });
                notes
            });
            if bell.get_untracked() && !notes.is_empty() {
                let room = model.with_untracked(|m| format!("#{}", m.room));
                for body in notes {
                    show_notification(&room, &body);
                }
            }
        });
    }

    /// The page's title, with the unread count in front when there is one.
    pub fn title(&self, room: &str, lang: Lang) -> String {
        self.state.with(|a| a.title_in(room, lang))
    }

    /// The names a mention may refer to, as they are now (not tracked: a message keeps its look).
    pub fn names(&self) -> Names {
        self.names
            .get_value()
            .and_then(|names| names.try_get_untracked())
            .unwrap_or_default()
    }
}

#[cfg(feature = "hydrate")]
fn show_notification(title: &str, body: &str) {
    crate::client::attention::notify(title, body);
}

#[cfg(not(feature = "hydrate"))]
fn show_notification(_title: &str, _body: &str) {}

/// "New messages" above the message `id` while it is the first the reader has not seen.
#[component]
pub fn NewMessagesDivider(id: MessageId) -> impl IntoView {
    let attention = use_context::<RoomAttention>();
    let here = move || attention.is_some_and(|a| a.divider.with_value(|d| d.selected(&Some(id))));
    view! {
        <Show when=here>
            <li class="new-messages" data-testid="new-messages" aria-label=t("new-messages")>
                <span>{t("new-messages")}</span>
            </li>
        </Show>
    }
}

/// The bell in the room's header: desktop notifications of mentions, asked for only on a click.
#[component]
pub fn MentionBell() -> impl IntoView {
    let Some(attention) = use_context::<RoomAttention>() else {
        return ().into_any();
    };
    let bell = attention.bell;
    let blocked = RwSignal::new(false);
    let toggle = move |_| {
        if bell.get_untracked() {
            bell.set(false);
            remember(false);
        } else {
            turn_on(bell, blocked);
        }
    };
    let lang = use_lang();
    let hint = move || {
        let key = if blocked.get() {
            "notify-blocked"
        } else if bell.get() {
            "notify-on"
        } else {
            "notify-off"
        };
        tr(lang.get(), key, &[])
    };
    view! {
        <button
            type="button"
            class="bell"
            class:on=move || bell.get()
            data-testid="mention-bell"
            aria-label=t("notify-off")
            aria-pressed=move || bell.get().to_string()
            title=hint
            on:click=toggle
        >
            <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                <path d="M12 3a6 6 0 0 0-6 6v3.6L4.3 15.4A1 1 0 0 0 5.2 17h13.6a1 1 0 0 0 .9-1.6L18 12.6V9a6 6 0 0 0-6-6Zm-2.5 15a2.5 2.5 0 0 0 5 0Z" />
            </svg>
        </button>
    }
        .into_any()
}

/// Asks for permission (the browser asks the reader only now, after the click) and turns the bell on if given.
fn turn_on(bell: RwSignal<bool>, blocked: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        let granted = crate::client::attention::ask_permission().await;
        bell.set(granted);
        blocked.set(!granted);
        remember(granted);
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (bell, blocked);
}

fn remember(on: bool) {
    #[cfg(feature = "hydrate")]
    crate::client::attention::remember_bell(on);
    #[cfg(not(feature = "hydrate"))]
    let _ = on;
}
