//! Who wrote a message and when: the avatar beside it, the name and time above its text.

use leptos::prelude::*;

use super::time::MessageTime;
use crate::avatars::avatar_url;
use crate::protocol::Timestamp;

/// The author's avatar beside a message: not read out, the name beside it says who.
#[component]
pub fn MessageAvatar(avatar: String) -> impl IntoView {
    view! {
        <img
            class="avatar"
            data-testid="message-avatar"
            src=avatar_url(&avatar)
            alt=""
            width="36"
            height="36"
        />
    }
}

/// The author's name and the message's time, in its `.meta` line.
#[component]
pub fn Byline(name: String, ts: Timestamp) -> impl IntoView {
    view! {
        <span class="name" data-testid="message-name">
            {name}
        </span>
        <MessageTime ts />
    }
}
