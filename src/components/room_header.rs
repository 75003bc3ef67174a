//! What the header says about a room: its topic (plain text), and badges for a lock and slow mode.

use leptos::prelude::*;

use crate::i18n::{t, use_lang, Text};
use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::standing::slow;

#[component]
pub fn RoomInfo(model: LiveRoom) -> impl IntoView {
    let settings = Memo::new(move |_| model.with(Parts::ROOM, |m| m.standing.settings.clone()));
    let topic = move || settings.with(|s| s.topic.clone());
    let slow_secs = move || settings.with(|s| s.slow_secs);
    let lang = use_lang();
    // Always there, hidden when empty: cheaper than mounting and unmounting them.
    view! {
        <p
            class="topic"
            data-testid="room-topic"
            hidden=move || settings.with(|s| s.topic.is_empty())
        >
            {topic}
        </p>
        <span
            class="badge"
            data-testid="locked-badge"
            title=t("read-only-hint")
            hidden=move || !settings.with(|s| s.locked)
        >
            {t("read-only")}
        </span>
        <span
            class="badge"
            data-testid="slow-badge"
            title=t("slow-mode-hint")
            hidden=move || { slow_secs() == 0 }
        >
            {move || {
                Text::new("slow-mode-badge").arg("interval", slow(slow_secs())).render(lang.get())
            }}
        </span>
    }
}
