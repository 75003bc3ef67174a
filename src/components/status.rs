//! The connection badge: connecting, online, reconnecting or offline.

use leptos::prelude::*;

use crate::model::RoomModel;

#[component]
pub fn ConnectionStatus(model: RwSignal<RoomModel>) -> impl IntoView {
    let state = move || model.with(|m| m.conn);
    view! {
        <span
            class="status"
            data-testid="connection-status"
            data-state=move || state().as_str()
            role="status"
            aria-live="polite"
        >
            {move || state().label()}
        </span>
    }
}
