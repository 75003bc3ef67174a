//! The conversation: messages and join/leave notices, newest last.
//!
//! Kept scrolled to the bottom unless the reader scrolled up.

use leptos::prelude::*;

use super::attention::NewMessagesDivider;
use super::message_text::MessageText;
use super::time::MessageTime;
use crate::api::LoadOlder;
use crate::avatars::{avatar_label, avatar_url};
use crate::live_room::LiveRoom;
use crate::model::{Entry, EntryKey, Parts};

/// Within this many pixels of the bottom counts as "at the bottom".
const STICK_PX: i32 = 48;

#[component]
pub fn MessageList(model: LiveRoom) -> impl IntoView {
    let list = NodeRef::<leptos::html::Ol>::new();
    let stick = StoredValue::new(true);
    let older = ServerAction::<LoadOlder>::new();
    let load_older = move || {
        if older.pending().get_untracked() || !model.with_untracked(|m| m.has_older) {
            return;
        }
        if let Some(before) = model.with_untracked(|m| m.oldest_id()) {
            older.dispatch(LoadOlder {
                room: model.with_untracked(|m| m.room.clone()),
                before,
            });
        }
    };
    Effect::new(move |_| {
        if let Some(Ok(page)) = older.value().get() {
            // Keep the reader's place: the list grows above what they look at.
            let before = list.get_untracked().map(|el| el.scroll_height());
            model.change(|m| m.prepend_older(page));
            if let (Some(el), Some(h)) = (list.get_untracked(), before) {
                el.set_scroll_top(el.scroll_top() + el.scroll_height() - h);
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
        model.with(Parts::ENTRIES | Parts::PENDING, |_| ());
        if stick.get_value() {
            if let Some(el) = list.get() {
                el.set_scroll_top(el.scroll_height());
            }
        }
    });
    // Only the keys are listed: a new line clones its own entry, never the others.
    let keys = move || {
        model.with(Parts::ENTRIES, |m| {
            m.entries.iter().map(Entry::key).collect::<Vec<_>>()
        })
    };

    view! {
        <ol
            class="messages"
            data-testid="messages"
            node_ref=list
            on:scroll=on_scroll
            aria-live="polite"
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
                            if older.pending().get() { "Loading…" } else { "Load older messages" }
                        }}
                    </button>
                </li>
            </Show>
            <For
                each=keys
                key=|k| *k
                children=move |k: EntryKey| match model.with_untracked(|m| m.entry(k).cloned()) {
                    Some(Entry::Message(m)) => {
                        view! {
                            <NewMessagesDivider id=m.id />
                            <li class="message" data-testid="message" data-id=m.id.to_string()>
                                <img
                                    class="avatar"
                                    data-testid="message-avatar"
                                    src=avatar_url(&m.avatar)
                                    alt=avatar_label(&m.avatar)
                                    width="36"
                                    height="36"
                                />
                                <div class="body">
                                    <div class="meta">
                                        <span class="name" data-testid="message-name">
                                            {m.name.clone()}
                                        </span>
                                        <MessageTime ts=m.ts />
                                    </div>
                                    <MessageText model text=m.text.clone() />
                                </div>
                            </li>
                        }
                            .into_any()
                    }
                    Some(Entry::Notice { text, .. }) => {
                        view! {
                            <li class="notice" data-testid="notice">
                                {text}
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
                        <li class="message pending" data-testid="pending" aria-label="Sending">
                            <div class="body">
                                <div class="meta">
                                    <span class="name">"You"</span>
                                    <span class="muted">"sending…"</span>
                                </div>
                                <p class="text">{p.text}</p>
                            </div>
                        </li>
                    }
                }
            />
        </ol>
    }
}
