//! The composer: Enter sends (or saves an edit), Shift+Enter makes a new line, Up edits your last message, Esc cancels.

use leptos::prelude::*;

use super::mention_picker::{MentionList, MentionPicker};
use super::{new_client_id, now_ms, send_change, send_frame, Outgoing};
use crate::live_room::LiveRoom;
use crate::model::{Compose, Parts};
use crate::protocol::ClientFrame;
use crate::rules::validate_text;
use crate::typing::should_send_typing;

#[component]
pub fn Composer(model: LiveRoom, outgoing: Outgoing, compose: RwSignal<Compose>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let textarea = NodeRef::<leptos::html::Textarea>::new();
    // The draft put aside while editing, given back after.
    let draft = StoredValue::new(String::new());
    let last_typing = StoredValue::new(None::<f64>);
    Effect::new(move |before: Option<Compose>| {
        let now = compose.get();
        match (&before, &now) {
            (_, Compose::Edit { text: original, .. }) => {
                if !matches!(before, Some(Compose::Edit { .. })) {
                    draft.set_value(text.get_untracked());
                }
                text.set(original.clone());
            }
            (Some(Compose::Edit { .. }), _) => text.set(draft.get_value()),
            _ => {}
        }
        if before.is_some() {
            if let Some(el) = textarea.get_untracked() {
                let _ = el.focus();
            }
        }
        now
    });
    let report = move |e: String| {
        model.change(|m| {
            m.error = Some(e);
            Parts::ERROR
        });
    };
    let picker = MentionPicker::new(model, text);
    let send = move || {
        let body = text.get_untracked();
        let max = model.with_untracked(|m| m.max_message_chars);
        if let Err(e) = validate_text(&body, max) {
            // Blank input just does nothing; other problems are explained.
            if !body.trim().is_empty() {
                report(e.to_string());
            }
            return;
        }
        match compose.get_untracked() {
            Compose::Edit { id, text: original } => {
                if body != original {
                    send_change(model, outgoing, |client_id| ClientFrame::Edit {
                        client_id,
                        id,
                        text: body,
                    });
                }
                compose.set(Compose::Message);
                return;
            }
            Compose::Reply(quote) => {
                send_message(model, outgoing, body, Some(quote.id));
                compose.set(Compose::Message);
            }
            Compose::Message => send_message(model, outgoing, body, None),
        }
        text.set(String::new());
        last_typing.set_value(None);
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.is_composing() || picker.keydown(&ev) {
            return;
        }
        match ev.key().as_str() {
            "Enter" if !ev.shift_key() => {
                ev.prevent_default();
                send();
            }
            "Escape" if compose.with_untracked(|c| *c != Compose::Message) => {
                ev.prevent_default();
                compose.set(Compose::Message);
            }
            "ArrowUp" if text.with_untracked(String::is_empty) => {
                let mine = model.with_untracked(|m| {
                    let me = m.me.as_ref()?;
                    m.last_editable(&me.name)
                        .map(|msg| (msg.id, msg.text.clone()))
                });
                if let Some((id, original)) = mine {
                    ev.prevent_default();
                    compose.set(Compose::Edit { id, text: original });
                }
            }
            _ => {}
        }
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let now = now_ms();
        let typing = matches!(
            compose.get_untracked(),
            Compose::Message | Compose::Reply(_)
        );
        if typing && should_send_typing(&value, last_typing.get_value(), now) {
            last_typing.set_value(Some(now));
            send_frame(outgoing, ClientFrame::Typing);
        }
        text.set(value);
    };
    let error = move || model.with(Parts::ERROR, |m| m.error.clone());
    let over = move || {
        let max = model.with(Parts::LIMITS, |m| m.max_message_chars);
        text.with(|t| t.chars().count() > max)
    };
    let editing = move || compose.with(|c| matches!(c, Compose::Edit { .. }));
    view! {
        <p
            class="chat-error"
            data-testid="chat-error"
            role="alert"
            hidden=move || error().is_none()
        >
            {move || error().unwrap_or_default()}
        </p>
        <ComposeBar compose />
        <form
            class="composer"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                send();
            }
        >
            <label class="sr-only" for="composer">
                {move || if editing() { "Edit message" } else { "Message" }}
            </label>
            <MentionList picker />
            <textarea
                {..picker.combobox()}
                id="composer"
                data-testid="composer"
                rows="2"
                node_ref=textarea
                placeholder="Write a message… (Enter sends, Shift+Enter for a new line)"
                prop:value=text
                on:input=move |ev| {
                    on_input(ev);
                    picker.refresh();
                }
                on:keydown=on_keydown
                aria-invalid=move || over().to_string()
            ></textarea>
            <button type="submit" class="primary" data-testid="send-button">
                {move || if editing() { "Save" } else { "Send" }}
            </button>
        </form>
    }
}

/// What the composer is doing besides writing a new message: editing, or replying (with a cancel).
#[component]
fn ComposeBar(compose: RwSignal<Compose>) -> impl IntoView {
    move || match compose.get() {
        Compose::Message => ().into_any(),
        Compose::Edit { .. } => view! {
            <div class="compose-bar" data-testid="editing-bar">
                <span>"Editing message · Esc to cancel"</span>
                <CancelCompose label="Cancel editing" compose />
            </div>
        }
        .into_any(),
        Compose::Reply(quote) => view! {
            <div class="compose-bar" data-testid="replying-bar">
                <span>
                    "Replying to " <strong>{quote.name}</strong> ": "
                    <span class="muted">{quote.text}</span>
                </span>
                <CancelCompose label="Cancel reply" compose />
            </div>
        }
        .into_any(),
    }
}

/// Sends a new message (a reply to `reply_to`, if any), shown as pending until confirmed.
fn send_message(
    model: LiveRoom,
    outgoing: Outgoing,
    text: String,
    reply_to: Option<crate::protocol::MessageId>,
) {
    let client_id = new_client_id();
    model.change(|m| m.add_pending(client_id.clone(), text.clone(), reply_to));
    send_frame(
        outgoing,
        ClientFrame::Send {
            client_id,
            text,
            reply_to,
        },
    );
}

/// The × that ends editing or replying.
#[component]
fn CancelCompose(label: &'static str, compose: RwSignal<Compose>) -> impl IntoView {
    view! {
        <button
            type="button"
            class="link"
            aria-label=label
            data-testid="cancel-compose"
            on:click=move |_| compose.set(Compose::Message)
        >
            "×"
        </button>
    }
}
