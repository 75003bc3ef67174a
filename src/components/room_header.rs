//! What the header says about a room: its topic (plain text), and badges for a lock and slow mode.

use leptos::prelude::*;

use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::standing::slow;

#[component]
pub fn RoomInfo(model: LiveRoom) -> impl IntoView {
    let settings = Memo::new(move |_| model.with(Parts::ROOM, |m| m.standing.settings.clone()));
    let topic = move || settings.with(|s| s.topic.clone());
    let slow_secs = move || settings.with(|s| s.slow_secs);
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
            title="Only moderators can post in this room"
            hidden=move || !settings.with(|s| s.locked)
        >
            "🔒 Read-only"
        </span>
        <span
            class="badge"
            data-testid="slow-badge"
            title="Each member may post one message in this interval"
            hidden=move || { slow_secs() == 0 }
        >
            {move || format!("Slow mode: {}", slow(slow_secs()))}
        </span>
    }
}
