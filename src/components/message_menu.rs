//! A message's menu: Reply and React for all, Edit and Delete for its author, Remove for moderators; Esc closes.

use leptos::prelude::*;

use crate::protocol::moderation::MAX_REASON_CHARS;

use super::message_item::Actions;
use super::popup::move_in_menu;
use super::{is_moderator, send_change, send_moderation};
use crate::model::Compose;
use crate::protocol::changes::is_single_emoji;
use crate::protocol::{ClientFrame, MessageId, ModRequest};

/// The emoji offered first.
pub const COMMON_EMOJI: [&str; 8] = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"];

/// What the open menu shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pane {
    Items,
    Picker,
    ConfirmDelete,
    ConfirmRemove,
}

#[component]
pub fn MessageMenu(
    id: MessageId,
    mine: Signal<bool>,
    actions: Actions,
    menu_button: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let model = actions.model;
    let pane = RwSignal::new(Pane::Items);
    let first = NodeRef::<leptos::html::Div>::new();
    // Keyboard users land in the menu, and back on its button when it closes.
    Effect::new(move |_| {
        pane.track();
        #[cfg(feature = "hydrate")]
        if let Some(el) = first.get() {
            use wasm_bindgen::JsCast;
            let target = el.query_selector("input, [data-focus-first], button");
            if let Some(button) = target
                .ok()
                .flatten()
                .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = button.focus();
            }
        }
    });
    // A press anywhere else closes it (the "⋯" button toggles it itself).
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::pointerdown, move |ev| {
            use wasm_bindgen::JsCast;
            let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Node>().ok()) else {
                return;
            };
            let in_menu = first
                .get_untracked()
                .is_some_and(|el| el.contains(Some(&target)));
            let on_button = menu_button
                .get_untracked()
                .is_some_and(|el| el.contains(Some(&target)));
            if !in_menu && !on_button {
                actions.menu.set(None);
            }
        });
        on_cleanup(move || handle.remove());
    }
    let close = move || {
        actions.menu.set(None);
        if let Some(button) = menu_button.get_untracked() {
            let _ = button.focus();
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            ev.stop_propagation();
            close();
        } else {
            move_in_menu(&ev);
        }
    };
    let set_compose = move |c: Compose| {
        actions.menu.set(None);
        if let Some(compose) = actions.compose {
            compose.set(c);
        }
    };
    let reply = move |_| {
        if let Some(quote) = model.with_untracked(|m| m.quote_of(id)) {
            set_compose(Compose::Reply(quote));
        }
    };
    let edit = move |_| {
        if let Some(text) = model.with_untracked(|m| m.message(id).map(|m| m.text.clone())) {
            set_compose(Compose::Edit { id, text });
        }
    };
    let delete = move |_| {
        if let Some(outgoing) = actions.outgoing {
            send_change(model, outgoing, |client_id| ClientFrame::Delete {
                client_id,
                id,
            });
        }
        close();
    };
    let reason = RwSignal::new(String::new());
    let remove = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(outgoing) = actions.outgoing {
            let reason = reason.get_untracked().trim().to_string();
            send_moderation(model, outgoing, ModRequest::Remove { id, reason });
        }
        close();
    };
    let react = move |emoji: String| {
        if let (Some(outgoing), Some(me)) = (actions.outgoing, actions.me.get_untracked()) {
            send_change(model, outgoing, |client_id| {
                model.with_untracked(|m| m.toggle_reaction(client_id, id, &emoji, &me))
            });
        }
        close();
    };
    view! {
        <div class="menu" data-testid="message-menu" node_ref=first on:keydown=on_keydown>
            {move || match pane.get() {
                Pane::Items => {
                    view! {
                        <div role="menu" aria-label="Message actions">
                            <button
                                type="button"
                                role="menuitem"
                                data-testid="menu-reply"
                                on:click=reply
                            >
                                "Reply"
                            </button>
                            <button
                                type="button"
                                role="menuitem"
                                data-testid="menu-react"
                                on:click=move |_| pane.set(Pane::Picker)
                            >
                                "React"
                            </button>
                            <Show when=move || mine.get()>
                                <button
                                    type="button"
                                    role="menuitem"
                                    data-testid="menu-edit"
                                    on:click=edit
                                >
                                    "Edit"
                                </button>
                                <button
                                    type="button"
                                    role="menuitem"
                                    data-testid="menu-delete"
                                    on:click=move |_| pane.set(Pane::ConfirmDelete)
                                >
                                    "Delete"
                                </button>
                            </Show>
                            <button
                                type="button"
                                role="menuitem"
                                data-testid="menu-remove"
                                hidden=move || !is_moderator(model)
                                on:click=move |_| pane.set(Pane::ConfirmRemove)
                            >
                                "Remove"
                            </button>
                        </div>
                    }
                        .into_any()
                }
                Pane::Picker => view! { <Picker react /> }.into_any(),
                Pane::ConfirmDelete => {
                    view! {
                        <div
                            role="alertdialog"
                            aria-label="Delete message?"
                            data-testid="confirm-delete"
                        >
                            <p>"Delete this message? This cannot be undone."</p>
                            <button
                                type="button"
                                data-testid="confirm-delete-cancel"
                                on:click=move |_| close()
                            >
                                "Cancel"
                            </button>
                            <button
                                type="button"
                                class="danger"
                                data-testid="confirm-delete-button"
                                on:click=delete
                            >
                                "Delete"
                            </button>
                        </div>
                    }
                        .into_any()
                }
                Pane::ConfirmRemove => {
                    view! {
                        <form
                            role="alertdialog"
                            aria-label="Remove message?"
                            data-testid="confirm-remove"
                            on:submit=remove
                        >
                            <p>"Remove this message for everyone?"</p>
                            <label class="reason">
                                "Reason (optional)"
                                <input
                                    data-testid="remove-reason"
                                    maxlength=MAX_REASON_CHARS.to_string()
                                    prop:value=reason
                                    on:input=move |ev| reason.set(event_target_value(&ev))
                                />
                            </label>
                            <button
                                type="button"
                                data-testid="confirm-remove-cancel"
                                on:click=move |_| close()
                            >
                                "Cancel"
                            </button>
                            <button
                                type="submit"
                                class="danger"
                                data-testid="confirm-remove-button"
                            >
                                "Remove"
                            </button>
                        </form>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// The common emoji, and a field for any one emoji.
#[component]
fn Picker(react: impl Fn(String) + Copy + Send + Sync + 'static) -> impl IntoView {
    let custom = RwSignal::new(String::new());
    let error = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let emoji = custom.get_untracked().trim().to_string();
        if is_single_emoji(&emoji) {
            react(emoji);
        } else {
            error.set(true);
        }
    };
    view! {
        <div class="picker" role="group" aria-label="Pick a reaction" data-testid="emoji-picker">
            <div class="common">
                {COMMON_EMOJI
                    .iter()
                    .map(|e| {
                        let emoji = e.to_string();
                        view! {
                            <button
                                type="button"
                                class="emoji"
                                data-testid="pick-emoji"
                                data-emoji=*e
                                aria-label=format!("React with {e}")
                                on:click=move |_| react(emoji.clone())
                            >
                                {*e}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <form class="custom" on:submit=submit>
                <input
                    data-testid="custom-emoji"
                    aria-label="Any one emoji"
                    placeholder="🙂"
                    size="4"
                    maxlength="16"
                    prop:value=custom
                    aria-invalid=move || error.get().to_string()
                    aria-describedby="emoji-error"
                    on:input=move |ev| {
                        error.set(false);
                        custom.set(event_target_value(&ev));
                    }
                />
                <button type="submit" data-testid="custom-emoji-add">
                    "Add"
                </button>
            </form>
            <p
                id="emoji-error"
                class="field-error"
                role="alert"
                data-testid="emoji-error"
                hidden=move || !error.get()
            >
                "Enter one emoji"
            </p>
        </div>
    }
}
