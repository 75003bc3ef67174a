//! The connection badge: connecting, online, reconnecting or offline.

use leptos::prelude::*;

use crate::i18n::{tr, use_lang};
use crate::live_room::LiveRoom;
use crate::model::{ConnState, Parts};

#[component]
pub fn ConnectionStatus(model: LiveRoom) -> impl IntoView {
    let state = move || model.with(Parts::CONN, |m| m.conn);
    let lang = use_lang();
    // Every state's words too, unseen and unread, in the same grid cell: the badge is as wide as
    // the longest, so that going from "Connecting…" to "Online" moves nothing beside it.
    let widths = move || {
        ConnState::ALL
            .map(|s| view! { <span>{tr(lang.get(), s.label(), &[])}</span> })
            .collect_view()
    };
    view! {
        <span class="status">
            <span
                class="status-now"
                data-testid="connection-status"
                data-state=move || state().as_str()
                role="status"
                aria-live="polite"
            >
                {move || tr(lang.get(), state().label(), &[])}
            </span>
            <span class="status-widths" aria-hidden="true">
                {widths}
            </span>
        </span>
    }
}
