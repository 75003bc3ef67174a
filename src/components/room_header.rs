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
    view! {
        <Show when=move || settings.with(|s| !s.topic.is_empty())>
            <p class="topic" data-testid="room-topic">
                {topic}
            </p>
        </Show>
        <Show when=move || settings.with(|s| s.locked)>
            <span
                class="badge"
                data-testid="locked-badge"
                title="Only moderators can post in this room"
            >
                "🔒 Read-only"
            </span>
        </Show>
        <Show when=move || { slow_secs() > 0 }>
            <span
                class="badge"
                data-testid="slow-badge"
                title="Each member may post one message in this interval"
            >
                {move || format!("Slow mode: {}", slow(slow_secs()))}
            </span>
        </Show>
    }
}
