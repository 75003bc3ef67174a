//! A message's text as the reader sees it: links that open safely, mentions styled, the reader's own marked.
//!
//! Every piece is a text node (`richtext::segments`), never parsed HTML: a message cannot
//! become markup. A link opens in a new tab without giving it this page (`noopener`), the
//! referrer, or a search engine's endorsement (`nofollow ugc`).

use leptos::prelude::*;

use super::attention::RoomAttention;
use crate::i18n::t;
use crate::live_room::LiveRoom;
use crate::richtext::{segments, Names, Segment};

/// The text of a message, in `<p data-testid="message-text">`; when it mentions the reader, the
/// paragraph has the class `mentions-me` and a hint for screen readers follows it.
#[component]
pub fn MessageText(model: LiveRoom, #[prop(into)] text: Signal<String>) -> impl IntoView {
    // The names as they are when the message is shown: a message keeps its look as people come and go.
    let names = use_context::<RoomAttention>()
        .map(|a| a.names())
        .unwrap_or_else(|| {
            model.with_untracked(|m| {
                Names::new(
                    m.members.iter().map(|x| x.name.as_str()),
                    m.me.as_ref().map(|me| me.name.as_str()),
                )
            })
        });
    let names = StoredValue::new(names);
    let mentions_me = Memo::new(move |_| text.with(|t| names.with_value(|n| n.mentions_me(t))));
    let pieces = move || {
        text.with(|t| {
            names.with_value(|n| {
                segments(t, n)
                    .into_iter()
                    .map(|s| piece(&s))
                    .collect::<Vec<_>>()
            })
        })
    };
    view! {
        <p class="text" class:mentions-me=mentions_me data-testid="message-text">
            {pieces}
        </p>
        <Show when=move || mentions_me.get()>
            <span class="sr-only" data-testid="mention-hint">
                {t("mentions-you")}
            </span>
        </Show>
    }
}

/// One piece of the text as a view.
fn piece(segment: &Segment<'_>) -> AnyView {
    match *segment {
        Segment::Text(t) => t.to_string().into_any(),
        Segment::Link(url) => view! {
            <a href=url.to_string() target="_blank" rel="noopener noreferrer nofollow ugc">
                {url.to_string()}
            </a>
        }
        .into_any(),
        Segment::Mention { text, me } => view! {
            <span class="mention" class:me=me data-testid="mention">
                {text.to_string()}
            </span>
        }
        .into_any(),
    }
}
