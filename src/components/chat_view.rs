//! The chat of a joined member: members beside the conversation, and the live connection that feeds both.

use leptos::prelude::*;

use super::composer::Composer;
use super::member_list::MemberList;
use super::message_list::MessageList;
use super::room_notices::RoomNotices;
use super::typing_line::TypingLine;
use super::Outgoing;
use crate::api::LeaveRoom;
use crate::live_room::LiveRoom;
use crate::model::{Compose, Parts};

/// The chat, from its own WASM chunk: a visitor who has not joined never loads it.
#[lazy]
pub fn lazy_chat_view(model: LiveRoom, outgoing: Outgoing) -> AnyView {
    view! { <ChatView model outgoing /> }.into_any()
}

#[component]
pub fn ChatView(model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    // What the composer writes: shared with the messages' menus (Edit, Reply).
    let compose = RwSignal::new(Compose::Message);

    // The socket lives in the browser only; it closes when this view goes away.
    #[cfg(feature = "hydrate")]
    {
        let room = model.with_untracked(|m| m.room.clone());
        // A claim link's token is sent once the welcome has come.
        if let Some(token) = crate::client::claim::from_url() {
            model.change(|m| {
                m.standing.claim = Some(token);
                Parts::NONE
            });
        }
        // A message's menu comes in a chunk of its own: fetch it now, so that it opens at once
        // (and opens while the connection is down).
        leptos::task::spawn_local(super::message_item::__preload_lazy_message_menu());
        let handle = crate::client::socket::connect(room, model);
        outgoing.set_value(Some(handle.sender()));
        on_cleanup(move || {
            handle.close();
            outgoing.try_set_value(None);
        });
    }

    let leave = ServerAction::<LeaveRoom>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = leave.value().get() {
            model.change(|m| {
                m.me = None;
                m.pending.clear();
                m.pending_changes.clear();
                Parts::ME | Parts::PENDING
            });
        }
    });
    let room = model.with_untracked(|m| m.room.clone());

    view! {
        <RoomNotices model outgoing />
        <main class="chat" data-testid="chat">
            <aside class="members card">
                <h2>"Members"</h2>
                <MemberList model outgoing />
                <button
                    class="link"
                    data-testid="leave-button"
                    on:click=move |_| {
                        leave.dispatch(LeaveRoom { room: room.clone() });
                    }
                >
                    "Leave room"
                </button>
            </aside>
            <section class="conversation card" aria-label="Conversation">
                <MessageList model outgoing compose />
                <TypingLine model />
                <Composer model outgoing compose />
            </section>
        </main>
    }
}
