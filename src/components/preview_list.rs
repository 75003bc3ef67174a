//! The join view's read-only look at the conversation: the room's latest messages and notices.
//!
//! Not the chat's `MessageList`: a visitor holds no connection (the page's snapshot is all it
//! shows), can neither act on a message nor page back, and that list with its menus, reactions
//! and paging was 47 KB of the first load's brotli WASM (measured by leaving it out); it now comes
//! with the chat. The words and times still follow the reader's language and time zone.

use leptos::prelude::*;

use super::byline::{Byline, MessageAvatar};
use super::message_text::MessageText;
use crate::i18n::{t, use_lang};
use crate::live_room::LiveRoom;
use crate::model::Entry;
use crate::protocol::ChatMessage;

#[component]
pub fn PreviewList(model: LiveRoom) -> impl IntoView {
    let lang = use_lang();
    let list = NodeRef::<leptos::html::Ol>::new();
    // Opens at the newest line.
    Effect::new(move |_| {
        if let Some(el) = list.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let rows = model
        .with_untracked(|m| m.entries.clone())
        .into_iter()
        .map(|entry| match entry {
            Entry::Message(message) => view! { <PreviewItem message model /> }.into_any(),
            Entry::Notice { text, .. } => view! {
                <li class="notice" data-testid="notice">
                    {move || text.render(lang.get())}
                </li>
            }
            .into_any(),
        })
        .collect_view();
    view! {
        <ol
            class="messages"
            data-testid="messages"
            node_ref=list
            aria-label=t("messages")
            tabindex="0"
        >
            {rows}
        </ol>
    }
}

/// One message as a visitor sees it: who, when, what it says (or that it is gone), its reactions.
#[component]
fn PreviewItem(message: ChatMessage, model: LiveRoom) -> impl IntoView {
    let m = message;
    let edited = (m.edited.is_some() && !m.deleted && !m.removed).then(|| {
        view! {
            <span class="edited" data-testid="message-edited">
                {t("edited")}
            </span>
        }
    });
    let quote = m.reply_to.map(|q| {
        let words = if q.gone {
            view! { <em class="muted">{t("original-deleted")}</em> }.into_any()
        } else {
            view! {
                <strong class="quote-name">{q.name}</strong>
                " "
                <span class="quote-text">{q.text}</span>
            }
            .into_any()
        };
        view! {
            <div class="quote" data-testid="quote">
                {words}
            </div>
        }
    });
    let body = if m.removed || m.deleted {
        let key = if m.removed {
            "message-removed"
        } else {
            "message-deleted"
        };
        view! {
            <p class="text deleted" data-testid=key>
                {t(key)}
            </p>
        }
        .into_any()
    } else {
        let chips = m
            .reactions
            .iter()
            .map(|r| {
                let label = format!("{} {}: {}", r.emoji, r.names.len(), r.names.join(", "));
                view! {
                    <span
                        class="reaction"
                        data-testid="reaction"
                        data-emoji=r.emoji.clone()
                        title=label
                    >
                        {r.emoji.clone()}
                        " "
                        <span class="count">{r.names.len()}</span>
                    </span>
                }
            })
            .collect_view();
        let reactions = (!m.reactions.is_empty()).then(|| {
            view! {
                <div class="reactions" role="group" aria-label=t("reactions")>
                    {chips}
                </div>
            }
        });
        view! {
            <MessageText model text=m.text />
            {reactions}
        }
        .into_any()
    };
    view! {
        <li class="message" data-testid="message" data-id=m.id.to_string()>
            <MessageAvatar avatar=m.avatar />
            <div class="body">
                <div class="meta">
                    <Byline name=m.name ts=m.ts />
                    {edited}
                </div>
                {quote}
                {body}
            </div>
        </li>
    }
}
