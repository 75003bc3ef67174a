//! The composer: Enter sends (or saves an edit), Shift+Enter makes a new line, Up edits your last message, Esc cancels.
//!
//! It says why the reader may not send when a moderator muted them, the room is read-only, or
//! slow mode asks them to wait (counting down).

use leptos::prelude::*;

use super::mention_picker::{MentionList, MentionPicker};
use super::time::local_when;
use super::{new_client_id, now_ms, send_change, send_frame, Outgoing};
use crate::i18n::{t, tr, use_lang, Text};
use crate::live_room::LiveRoom;
use crate::model::{Compose, Parts};
use crate::protocol::ClientFrame;
use crate::rules::validate_text;
use crate::standing::Block;
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
    let report = move |e: Text| {
        model.change(|m| {
            m.error = Some(e);
            Parts::ERROR
        });
    };
    let picker = MentionPicker::new(model, text);
    // The clock that ends a mute and counts slow mode down.
    let now = RwSignal::new(now_ms());
    #[cfg(feature = "hydrate")]
    {
        let tick = std::time::Duration::from_secs(1);
        let handle = set_interval_with_handle(move || now.set(js_sys::Date::now()), tick);
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    }
    let block = Memo::new(move |_| {
        let at = now.get() as i64;
        model.with(Parts::STANDING | Parts::ROOM, |m| m.standing.block(at))
    });
    let editing = move || compose.with(|c| matches!(c, Compose::Edit { .. }));
    // An edit is not a new message: only a kick or ban stops it here.
    let blocked = move || {
        block.with(|b| match b {
            Some(Block::Removed) => true,
            Some(_) => !editing(),
            None => false,
        })
    };
    let closed = move || {
        block.with(|b| {
            matches!(
                b,
                Some(Block::Removed | Block::Locked | Block::Muted { .. })
            )
        }) && !editing()
    };
    let send = move || {
        if blocked() {
            return;
        }
        let body = text.get_untracked();
        let max = model.with_untracked(|m| m.max_message_chars);
        if let Err(e) = validate_text(&body, max) {
            // Blank input just does nothing; other problems are explained.
            if !body.trim().is_empty() {
                report(e.text());
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
    let lang = use_lang();
    let error = move || {
        model.with(Parts::ERROR, |m| {
            m.error.as_ref().map(|e| e.render(lang.get()))
        })
    };
    let over = move || {
        let max = model.with(Parts::LIMITS, |m| m.max_message_chars);
        text.with(|t| t.chars().count() > max)
    };
    let block_text = move || {
        block.get().map(|b| {
            b.text(|until| local_when(until, now.get_untracked() as i64, lang.get()))
                .render(lang.get())
        })
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
        <ComposeBar compose />
        <p
            id="composer-block"
            class="composer-block"
            data-testid="composer-block"
            role="status"
            hidden=move || block_text().is_none()
        >
            {move || block_text().unwrap_or_default()}
        </p>
        <form
            class="composer"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                send();
            }
        >
            <label class="sr-only" for="composer">
                {move || tr(
                    lang.get(),
                    if editing() { "composer-label-edit" } else { "composer-label" },
                    &[],
                )}
            </label>
            <MentionList picker />
            <textarea
                {..picker.combobox()}
                id="composer"
                data-testid="composer"
                rows="2"
                node_ref=textarea
                placeholder=t("composer-placeholder")
                prop:value=text
                on:input=move |ev| {
                    on_input(ev);
                    picker.refresh();
                }
                on:keydown=on_keydown
                aria-invalid=move || over().to_string()
                disabled=closed
                aria-describedby="composer-block"
            ></textarea>
            <button type="submit" class="primary" data-testid="send-button" disabled=blocked>
                {move || tr(
                    lang.get(),
                    if editing() { "composer-save" } else { "composer-send" },
                    &[],
                )}
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
                <span>{t("composer-editing")}</span>
                <CancelCompose label="composer-cancel-edit" compose />
            </div>
        }
        .into_any(),
        Compose::Reply(quote) => view! {
            <div class="compose-bar" data-testid="replying-bar">
                <span>
                    {t("composer-replying")} " " <strong>{quote.name}</strong> ": "
                    <span class="muted">{quote.text}</span>
                </span>
                <CancelCompose label="composer-cancel-reply" compose />
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
    model.change(|m| {
        // Slow mode counts from here.
        m.standing.last_sent = Some(now_ms() as i64);
        m.add_pending(client_id.clone(), text.clone(), reply_to) | Parts::STANDING
    });
    send_frame(
        outgoing,
        ClientFrame::Send {
            client_id,
            text,
            reply_to,
        },
    );
}

/// The × that ends editing or replying; `label` is its name's message key.
#[component]
fn CancelCompose(label: &'static str, compose: RwSignal<Compose>) -> impl IntoView {
    view! {
        <button
            type="button"
            class="link"
            aria-label=t(label)
            data-testid="cancel-compose"
            on:click=move |_| compose.set(Compose::Message)
        >
            "×"
        </button>
    }
}
