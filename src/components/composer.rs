//! The composer: Enter sends, Shift+Enter makes a new line; checked by the shared rules before it leaves the browser.

use leptos::prelude::*;

use super::mention_picker::{MentionList, MentionPicker};
use super::Outgoing;
use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::protocol::ClientFrame;
use crate::rules::validate_text;

#[component]
pub fn Composer(model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let picker = MentionPicker::new(model, text);
    let send = move || {
        let body = text.get_untracked();
        let max = model.with_untracked(|m| m.max_message_chars);
        if let Err(e) = validate_text(&body, max) {
            // Blank input just does nothing; other problems are explained.
            if !body.trim().is_empty() {
                model.change(|m| {
                    m.error = Some(e.to_string());
                    Parts::ERROR
                });
            }
            return;
        }
        let client_id = new_client_id();
        model.change(|m| m.add_pending(client_id.clone(), body.clone()));
        outgoing.with_value(|tx| {
            if let Some(tx) = tx {
                let _ = tx.unbounded_send(ClientFrame::Send {
                    client_id,
                    text: body,
                    reply_to: None,
                });
            }
        });
        text.set(String::new());
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if picker.keydown(&ev) {
            return;
        }
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let error = move || model.with(Parts::ERROR, |m| m.error.clone());
    let over = move || {
        let max = model.with(Parts::LIMITS, |m| m.max_message_chars);
        text.with(|t| t.chars().count() > max)
    };
    view! {
        <p
            class="chat-error"
            data-testid="chat-error"
            role="alert"
            hidden=move || error().is_none()
        >
            {move || error().unwrap_or_default()}
        </p>
        <form
            class="composer"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                send();
            }
        >
            <label class="sr-only" for="composer">
                "Message"
            </label>
            <MentionList picker />
            <textarea
                {..picker.combobox()}
                id="composer"
                data-testid="composer"
                rows="2"
                placeholder="Write a message… (Enter sends, Shift+Enter for a new line)"
                prop:value=text
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    picker.refresh();
                }
                on:keydown=on_keydown
                aria-invalid=move || over().to_string()
            ></textarea>
            <button type="submit" class="primary" data-testid="send-button">
                "Send"
            </button>
        </form>
    }
}

/// A fresh id for a message typed here.
fn new_client_id() -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::client::new_client_id()
    }
    // Sending happens only in the browser; the server never renders a send.
    #[cfg(not(feature = "hydrate"))]
    {
        String::from("server")
    }
}
