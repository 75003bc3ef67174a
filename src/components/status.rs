//! The connection badge: connecting, online, reconnecting or offline.

use leptos::prelude::*;

use crate::i18n::{tr, use_lang};
use crate::live_room::LiveRoom;
use crate::model::Parts;

#[component]
pub fn ConnectionStatus(model: LiveRoom) -> impl IntoView {
    let state = move || model.with(Parts::CONN, |m| m.conn);
    let lang = use_lang();
    view! {
        <span
            class="status"
            data-testid="connection-status"
            data-state=move || state().as_str()
            role="status"
            aria-live="polite"
        >
            {move || tr(lang.get(), state().label(), &[])}
        </span>
    }
}
