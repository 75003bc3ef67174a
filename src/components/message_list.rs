//! The conversation: messages and join/leave notices, newest last.
//!
//! Kept scrolled to the bottom unless the reader scrolled up.

use leptos::prelude::*;

use super::attention::NewMessagesDivider;
use super::message_item::{Actions, MessageItem};
use super::Outgoing;
use crate::api::LoadOlder;
use crate::i18n::{t, tr, use_lang};
use crate::live_room::LiveRoom;
use crate::model::{Compose, Entry, EntryKey, Parts};
use crate::protocol::MessageId;

/// Within this many pixels of the bottom counts as "at the bottom".
const STICK_PX: i32 = 48;

/// How long a message shown by its quote stays highlighted, in milliseconds.
const HIGHLIGHT_MS: u64 = 2_000;

#[component]
pub fn MessageList(
    model: LiveRoom,
    /// Where changes go; none in the join form's read-only preview.
    #[prop(optional)]
    outgoing: Option<Outgoing>,
    #[prop(optional)] compose: Option<RwSignal<Compose>>,
) -> impl IntoView {
    let lang = use_lang();
    let list = NodeRef::<leptos::html::Ol>::new();
    let stick = StoredValue::new(true);
    let older = ServerAction::<LoadOlder>::new();
    // A message to show once older history down to it has come.
    let jump_to = StoredValue::new(None::<MessageId>);
    let load_older = move || {
        if older.pending().get_untracked() || !model.with_untracked(|m| m.has_older) {
            return;
        }
        if let Some(before) = model.with_untracked(|m| m.oldest_id()) {
            older.dispatch(LoadOlder {
                room: model.with_untracked(|m| m.room.clone()),
                before,
                down_to: None,
            });
        }
    };
    let jump = Callback::new(move |id: MessageId| {
        if show_message(list, id) {
            return;
        }
        let oldest = model.with_untracked(|m| m.oldest_id());
        if oldest.is_some_and(|oldest| id < oldest) && !older.pending().get_untracked() {
            jump_to.set_value(Some(id));
            older.dispatch(LoadOlder {
                room: model.with_untracked(|m| m.room.clone()),
                before: oldest.unwrap_or(id),
                down_to: Some(id),
            });
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(page)) = older.value().get() {
            // Keep the reader's place: the list grows above what they look at.
            let before = list.get_untracked().map(|el| el.scroll_height());
            // Only a jump asks for history down to a message (and waits for no other page).
            let down_to = jump_to.with_value(Option::is_some);
            model.change(|m| m.prepend_older(page, down_to));
            if let (Some(el), Some(h)) = (list.get_untracked(), before) {
                el.set_scroll_top(el.scroll_top() + el.scroll_height() - h);
            }
            if let Some(id) = jump_to.try_update_value(Option::take).flatten() {
                request_animation_frame(move || {
                    show_message(list, id);
                });
            }
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked() {
            stick.set_value(el.scroll_top() + el.client_height() >= el.scroll_height() - STICK_PX);
            if el.scroll_top() < STICK_PX {
                load_older();
            }
        }
    };
    Effect::new(move |_| {
        // Re-run on every new line.
        model.with(Parts::ENTRIES | Parts::PENDING | Parts::EDITS, |_| ());
        if stick.get_value() {
            if let Some(el) = list.get() {
                if el.is_connected() {
                    el.set_scroll_top(el.scroll_height());
                } else {
                    // Built from a lazily loaded chunk and not in the page yet: once it is.
                    request_animation_frame(move || el.set_scroll_top(el.scroll_height()));
                }
            }
        }
    });
    // Only the keys are listed: a new line clones its own entry, never the others.
    let actions = Actions {
        model,
        me: Memo::new(move |_| model.with(Parts::ME, |m| m.me.as_ref().map(|me| me.name.clone()))),
        outgoing,
        compose,
        menu: RwSignal::new(None),
        jump,
    };
    let keys = move || {
        model.with(Parts::ENTRIES, |m| {
            m.entries.iter().map(Entry::key).collect::<Vec<_>>()
        })
    };

    // Screen readers hear each new message from someone else once, not the history or a resume.
    let latest = Memo::new(move |_| model.with(Parts::ENTRIES, |m| m.latest_live));
    // A deleted or removed message is no longer read out, nor left in the page.
    let announcement = Memo::new(move |_| {
        latest
            .get()
            .and_then(|id| {
                model.with(Parts::EDITS, |m| {
                    m.message(id)
                        .filter(|msg| !msg.deleted && !msg.removed)
                        .map(|msg| format!("{}: {}", msg.name, msg.text))
                })
            })
            .unwrap_or_default()
    });
    let live = outgoing.is_some();
    view! {
        <ol
            class="messages"
            data-testid="messages"
            node_ref=list
            on:scroll=on_scroll
            aria-label=t("messages")
            // Focusable, so that a keyboard scrolls the history too.
            tabindex="0"
        >
            <Show when=move || model.with(Parts::ENTRIES, |m| m.has_older)>
                <li class="older">
                    <button
                        class="link"
                        data-testid="load-older"
                        disabled=move || older.pending().get()
                        on:click=move |_| load_older()
                    >
                        {move || {
                            let key = if older.pending().get() { "loading" } else { "load-older" };
                            tr(lang.get(), key, &[])
                        }}
                    </button>
                </li>
            </Show>
            <For
                each=keys
                key=|k| *k
                children=move |k: EntryKey| match model.with_untracked(|m| m.entry(k).cloned()) {
                    Some(Entry::Message(first)) => {
                        let id = first.id;
                        view! {
                            <NewMessagesDivider id />
                            <MessageItem first actions />
                        }
                            .into_any()
                    }
                    Some(Entry::Notice { text, .. }) => {
                        view! {
                            <li class="notice" data-testid="notice">
                                {move || text.render(lang.get())}
                            </li>
                        }
                            .into_any()
                    }
                    None => ().into_any(),
                }
            />
            <For
                each=move || model.with(Parts::PENDING, |m| m.pending.clone())
                key=|p| p.client_id.clone()
                children=move |p| {
                    view! {
                        <li class="message pending" data-testid="pending" aria-label=t("sending")>
                            <div class="body">
                                <div class="meta">
                                    <span class="name">{t("you")}</span>
                                    <span class="muted">{t("sending-lower")}</span>
                                </div>
                                <p class="text">{p.text}</p>
                            </div>
                        </li>
                    }
                }
            />
        </ol>
        <Show when=move || live>
            <p class="sr-only" aria-live="polite" data-testid="announcer">
                {announcement}
            </p>
        </Show>
    }
}

/// Scrolls message `id` into view and highlights it briefly; false if it is not shown.
fn show_message(list: NodeRef<leptos::html::Ol>, id: MessageId) -> bool {
    let Some(el) = list.get_untracked().and_then(|l| {
        l.query_selector(&format!("li[data-id=\"{id}\"]"))
            .ok()
            .flatten()
    }) else {
        return false;
    };
    #[cfg(feature = "hydrate")]
    {
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&options);
        let _ = el.class_list().add_1("highlight");
        set_timeout(
            move || {
                let _ = el.class_list().remove_1("highlight");
            },
            std::time::Duration::from_millis(HIGHLIGHT_MS),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (el, HIGHLIGHT_MS);
    true
}
