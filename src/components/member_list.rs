//! Who is online, live: one entry per member however many tabs they have open.

use leptos::prelude::*;

use super::member_menu::MemberMenu;
use super::{is_moderator, Outgoing};
use crate::avatars::avatar_url;
use crate::i18n::{tr, use_lang};
use crate::live_room::LiveRoom;
use crate::model::Parts;

#[component]
pub fn MemberList(model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let lang = use_lang();
    // Names are unique in a room (the server decides by `rules::name_key`) and shown as typed.
    let me = move || model.with(Parts::ME, |m| m.me.as_ref().map(|me| me.name.clone()));
    // A big room lists its first members only.
    let more = move || {
        model.with(Parts::ONLINE | Parts::MEMBERS, |m| {
            m.online.saturating_sub(m.members.len())
        })
    };
    view! {
        <ul class="member-list" data-testid="member-list">
            <For
                // Cloned when the members change, never for a message.
                each=move || model.with(Parts::MEMBERS, |m| m.members.clone())
                key=|m| (m.name.clone(), m.avatar.clone())
                children=move |m| {
                    let key = m.name.clone();
                    let is_me = move || me().as_deref() == Some(key.as_str());
                    let tools = {
                        let is_me = is_me.clone();
                        move || is_moderator(model) && !is_me()
                    };
                    let name = m.name.clone();
                    view! {
                        <li class="member" class:me=is_me data-testid="member">
                            <img
                                data-testid="member-avatar"
                                src=avatar_url(&m.avatar)
                                // Beside the name it pictures: not read out.
                                alt=""
                                width="32"
                                height="32"
                            />
                            <span class="member-name" data-testid="member-name">
                                {m.name.clone()}
                            </span>
                            <Show when=is_me.clone()>
                                <span class="you">"(you)"</span>
                            </Show>
                            <Show when=tools.clone()>
                                <MemberMenu name=name.clone() model outgoing />
                            </Show>
                        </li>
                    }
                }
            />
            <Show when=move || { more() > 0 }>
                <li class="member more" data-testid="more-members">
                    {move || tr(lang.get(), "members-more", &[("count", (more() as i64).into())])}
                </li>
            </Show>
        </ul>
    }
}
