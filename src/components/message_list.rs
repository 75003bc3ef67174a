//! The conversation: messages and join/leave notices, newest last, kept scrolled to the bottom unless the reader scrolled up.

use leptos::prelude::*;

use super::time::MessageTime;
use crate::avatars::{avatar_label, avatar_url};
use crate::model::{Entry, RoomModel};

/// Within this many pixels of the bottom counts as "at the bottom".
const STICK_PX: i32 = 48;

#[component]
pub fn MessageList(model: RwSignal<RoomModel>) -> impl IntoView {
    let list = NodeRef::<leptos::html::Ol>::new();
    let stick = StoredValue::new(true);
    let on_scroll = move |_| {
        if let Some(el) = list.get_untracked() {
            stick.set_value(el.scroll_top() + el.client_height() >= el.scroll_height() - STICK_PX);
        }
    };
    Effect::new(move |_| {
        // Re-run on every new line.
        model.with(|m| (m.entries.len(), m.pending.len(), m.last_id));
        if stick.get_value() {
            if let Some(el) = list.get() {
                el.set_scroll_top(el.scroll_height());
            }
        }
    });

    view! {
        <ol class="messages" data-testid="messages" node_ref=list on:scroll=on_scroll aria-live="polite">
            <For
                each=move || model.with(|m| m.entries.clone())
                key=|e| e.key()
                children=move |e| match e {
                    Entry::Message(m) => {
                        view! {
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
                                    <p class="text" data-testid="message-text">
                                        {m.text.clone()}
                                    </p>
                                </div>
                            </li>
                        }
                            .into_any()
                    }
                    Entry::Notice { text, .. } => {
                        view! {
                            <li class="notice" data-testid="notice">
                                {text}
                            </li>
                        }
                            .into_any()
                    }
                }
            />
            <For
                each=move || model.with(|m| m.pending.clone())
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
