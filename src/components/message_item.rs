//! One message of the conversation: its quote, text (or "message deleted"), "(edited)", reactions and menu.

use leptos::prelude::*;

use super::byline::{Byline, MessageAvatar};
use super::message_menu::MessageMenu;
use super::message_text::MessageText;
use super::time::{local_hhmm, utc_hhmm};
use super::{lazy_view, send_change, Hydrated, Outgoing};
use crate::i18n::{t, tr, use_lang};
use crate::live_room::LiveRoom;
use crate::model::{Compose, Parts};
use crate::protocol::{ChatMessage, MessageId, Quote, Reaction, Timestamp};

/// What the rows of one conversation share: who reads it, and how they act on a message.
#[derive(Clone, Copy)]
pub struct Actions {
    pub model: LiveRoom,
    /// The reader's name, if they joined.
    pub me: Memo<Option<String>>,
    /// Where changes go; `None` in a read-only preview.
    pub outgoing: Option<Outgoing>,
    pub compose: Option<RwSignal<Compose>>,
    /// The message whose menu is open (one at a time).
    pub menu: RwSignal<Option<MessageId>>,
    /// Shows message `id`, loading older history down to it first if needed.
    pub jump: Callback<MessageId>,
}

#[component]
pub fn MessageItem(first: ChatMessage, actions: Actions) -> impl IntoView {
    let id = first.id;
    let model = actions.model;
    // Only this row's own content changes redraw it: edits, deletions, reactions, its quote.
    let version = Memo::new(move |_| model.with(Parts::EDITS, |m| m.version(id)));
    let message = Memo::new(move |_| {
        // `get`, not `track`: a memo only recomputes when read.
        version.get();
        model
            .with_untracked(|m| m.message(id).cloned())
            .unwrap_or_else(|| first.clone())
    });
    let deleted = move || message.with(|m| m.deleted);
    let mine = move || {
        actions
            .me
            .with(|me| message.with(|m| me.as_deref() == Some(m.name.as_str())))
    };
    let can_act = move || actions.outgoing.is_some() && actions.me.with(Option::is_some);
    let open = move || actions.menu.get() == Some(id);
    let menu_button = NodeRef::<leptos::html::Button>::new();
    let head = message.get_untracked();
    view! {
        <li
            class="message"
            class:deleted=deleted
            class:menu-open=open
            data-testid="message"
            data-id=id.to_string()
        >
            <MessageAvatar avatar=head.avatar.clone() />
            <div class="body">
                <div class="meta">
                    <Byline name=head.name.clone() ts=head.ts />
                    {move || message.with(|m| m.edited).map(|ts| view! { <Edited ts /> })}
                </div>
                {move || {
                    message
                        .with(|m| m.reply_to.clone())
                        .map(|quote| view! { <QuoteLink quote jump=actions.jump /> })
                }}
                {move || {
                    if message.with(|m| m.removed) {
                        view! {
                            <p class="text deleted" data-testid="message-removed">
                                {t("message-removed")}
                            </p>
                        }
                            .into_any()
                    } else if deleted() {
                        view! {
                            <p class="text deleted" data-testid="message-deleted">
                                {t("message-deleted")}
                            </p>
                        }
                            .into_any()
                    } else {
                        let text = Signal::derive(move || message.with(|m| m.text.clone()));
                        view! { <MessageText model text /> }.into_any()
                    }
                }}
                <Reactions
                    id
                    actions
                    reactions=Signal::derive(move || message.with(|m| m.reactions.clone()))
                />
            </div>
            <Show when=move || can_act() && !deleted()>
                <div class="actions">
                    <button
                        type="button"
                        class="more"
                        node_ref=menu_button
                        data-testid="message-menu-button"
                        aria-label=t("more-actions")
                        aria-haspopup="menu"
                        aria-expanded=move || open().to_string()
                        on:click=move |_| {
                            actions
                                .menu
                                .update(|m| *m = if *m == Some(id) { None } else { Some(id) })
                        }
                    >
                        "⋯"
                    </button>
                    <Show when=open>
                        {move || {
                            lazy_view(
                                lazy_message_menu(id, Signal::derive(mine), actions, menu_button),
                            )
                        }}
                    </Show>
                </div>
            </Show>
        </li>
    }
}

/// A message's open menu (edit, reply, react, delete), from its own WASM chunk.
#[lazy]
pub fn lazy_message_menu(
    id: MessageId,
    mine: Signal<bool>,
    actions: Actions,
    menu_button: NodeRef<leptos::html::Button>,
) -> AnyView {
    view! { <MessageMenu id mine actions menu_button /> }.into_any()
}

/// "(edited)", with the edit time on hover and for screen readers.
#[component]
fn Edited(ts: Timestamp) -> impl IntoView {
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let lang = use_lang();
    let at = move || {
        if hydrated.is_some_and(|h| h.get()) {
            local_hhmm(ts, lang.get())
        } else {
            utc_hhmm(ts)
        }
    };
    view! {
        <span
            class="edited"
            data-testid="message-edited"
            title=move || tr(lang.get(), "edited-at", &[("time", at().into())])
        >
            {t("edited")}
            <span class="sr-only">{move || format!(" {}", at())}</span>
        </span>
    }
}

/// The quoted original above a reply: a link that shows the original.
#[component]
fn QuoteLink(quote: Quote, jump: Callback<MessageId>) -> impl IntoView {
    let id = quote.id;
    let lang = use_lang();
    let q = quote.clone();
    let label = move || {
        let quote = &q;
        if quote.gone {
            tr(lang.get(), "reply-to-deleted", &[])
        } else {
            let args = [
                ("name", quote.name.as_str().into()),
                ("text", quote.text.as_str().into()),
            ];
            tr(lang.get(), "reply-go-to", &args)
        }
    };
    view! {
        <button
            type="button"
            class="quote"
            data-testid="quote"
            data-quote-id=id.to_string()
            aria-label=label
            on:click=move |_| jump.run(id)
        >
            {if quote.gone {
                view! { <em class="muted">{t("original-deleted")}</em> }.into_any()
            } else {
                view! {
                    <strong class="quote-name">{quote.name}</strong>
                    " "
                    <span class="quote-text">{quote.text}</span>
                }
                    .into_any()
            }}
        </button>
    }
}

/// The emoji under a message with their counts; each toggles the reader's own reaction.
#[component]
fn Reactions(id: MessageId, actions: Actions, reactions: Signal<Vec<Reaction>>) -> impl IntoView {
    let model = actions.model;
    let toggle = move |emoji: String| {
        let (Some(outgoing), Some(me)) = (actions.outgoing, actions.me.get_untracked()) else {
            return;
        };
        send_change(model, outgoing, |client_id| {
            model.with_untracked(|m| m.toggle_reaction(client_id, id, &emoji, &me))
        });
    };
    view! {
        <Show when=move || reactions.with(|r| !r.is_empty())>
            <div class="reactions" role="group" aria-label=t("reactions")>
                <For
                    each=move || {
                        reactions.with(|rs| rs.iter().map(|r| r.emoji.clone()).collect::<Vec<_>>())
                    }
                    key=|e| e.clone()
                    children=move |emoji: String| {
                        let e = emoji.clone();
                        let names = Memo::new(move |_| {
                            reactions
                                .with(|rs| {
                                    rs.iter()
                                        .find(|r| r.emoji == e)
                                        .map(|r| r.names.clone())
                                        .unwrap_or_default()
                                })
                        });
                        let e = emoji.clone();
                        let label = Memo::new(move |_| {
                            names.with(|n| format!("{e} {}: {}", n.len(), n.join(", ")))
                        });
                        let pressed = move || {
                            actions
                                .me
                                .with(|me| {
                                    me.as_ref()
                                        .is_some_and(|me| names.with(|n| n.iter().any(|x| x == me)))
                                })
                        };
                        let clicked = emoji.clone();
                        view! {
                            <button
                                type="button"
                                class="reaction"
                                data-testid="reaction"
                                data-emoji=emoji.clone()
                                aria-pressed=move || pressed().to_string()
                                title=label
                                aria-label=label
                                disabled=actions.outgoing.is_none()
                                on:click=move |_| toggle(clicked.clone())
                            >
                                {emoji.clone()}
                                " "
                                <span class="count">{move || names.with(Vec::len)}</span>
                            </button>
                        }
                    }
                />
            </div>
        </Show>
    }
}
