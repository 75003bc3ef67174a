//! "Ann is typing…" under the conversation, announced politely and only when who is typing changes.

use leptos::prelude::*;

use super::now_ms;
use crate::i18n::use_lang;
use crate::live_room::LiveRoom;
use crate::model::Parts;

#[component]
pub fn TypingLine(model: LiveRoom) -> impl IntoView {
    let lang = use_lang();
    // The text changes only when the names do: a typist heard again redraws nothing.
    let line = Memo::new(move |_| {
        model.with(Parts::TYPING | Parts::ME, |m| {
            m.typing.line(m.me.as_ref().map(|me| me.name.as_str()))
        })
    });
    // Forget typists when their time is up: one timer, set again whenever the list changes.
    let timer = StoredValue::new(None::<TimeoutHandle>);
    Effect::new(move |_| {
        let next = model.with(Parts::TYPING, |m| m.typing.next_expiry());
        if let Some(old) = timer.try_update_value(Option::take).flatten() {
            old.clear();
        }
        if let Some(at) = next {
            let wait = std::time::Duration::from_millis((at - now_ms()).max(0.0) as u64 + 1);
            let handle = set_timeout_with_handle(
                move || {
                    model.change(|m| m.expire_typing(now_ms()));
                },
                wait,
            );
            timer.set_value(handle.ok());
        }
    });
    on_cleanup(move || {
        if let Some(old) = timer.try_update_value(Option::take).flatten() {
            old.clear();
        }
    });
    view! {
        <p class="typing" data-testid="typing" aria-live="polite" aria-atomic="true">
            {move || line.with(|l| l.render(lang.get()))}
        </p>
    }
}
