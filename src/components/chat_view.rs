//! The chat of a joined member: members beside the conversation, and the live connection that feeds both.

use leptos::prelude::*;

use super::attention::{MentionBell, RoomAttention};
use super::composer::Composer;
use super::member_list::MemberList;
use super::message_list::MessageList;
use super::moderate_panel::ModeratePanel;
use super::popup::on_escape;
use super::room_notices::RoomNotices;
use super::status::ConnectionStatus;
use super::typing_line::TypingLine;
use super::{is_moderator, Outgoing};
use crate::api::LeaveRoom;
use crate::i18n::{t, use_lang, Text};
use crate::live_room::LiveRoom;
use crate::model::{Compose, Parts};

/// The chat, from its own WASM chunk: a visitor who has not joined never loads it.
#[lazy]
pub fn lazy_chat_view(model: LiveRoom, outgoing: Outgoing, drawer: MembersDrawer) -> AnyView {
    view! { <ChatView model outgoing drawer /> }.into_any()
}

/// A joined member's tools in the header (the members button, the connection, mentions and, for
/// moderators, the panel), from the chat's chunks: a visitor never loads them.
#[lazy]
pub fn lazy_member_tools(model: LiveRoom, outgoing: Outgoing, drawer: MembersDrawer) -> AnyView {
    view! {
        <MembersButton drawer model />
        <ConnectionStatus model />
        <MentionBell />
        <Show when=move || is_moderator(model)>
            <ModeratePanel model outgoing />
        </Show>
    }
    .into_any()
}

#[component]
pub fn ChatView(
    model: LiveRoom,
    outgoing: Outgoing,
    /// The member list's drawer on narrow screens (always shown on wide ones), and its header button.
    drawer: MembersDrawer,
) -> impl IntoView {
    // What the composer writes: shared with the messages' menus (Edit, Reply).
    let compose = RwSignal::new(Compose::Message);
    // The page's recent messages, read now (before the views below show them: no one to tell).
    model.change(|m| {
        m.load_recent();
        Parts::NONE
    });
    // Unread counts, the divider and the bell follow the conversation while the chat is open.
    if let Some(attention) = use_context::<RoomAttention>() {
        attention.watch(model);
    }

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

    // Opened from its button, the drawer takes the focus (and gives it back when closed). On a
    // narrow screen it is modal: it covers the page, whose header and conversation are inert.
    let close_button = NodeRef::<leptos::html::Button>::new();
    let modal = RwSignal::new(false);
    Effect::new(move |was_open: Option<bool>| {
        let open = drawer.open.get();
        #[cfg(feature = "hydrate")]
        {
            let window = web_sys::window();
            let narrow = window
                .as_ref()
                .and_then(|w| w.inner_width().ok())
                .and_then(|w| w.as_f64())
                .is_some_and(|w| w <= 720.0);
            modal.set(open && narrow);
            let document = window.and_then(|w| w.document());
            for selector in [".topbar", ".conversation"] {
                if let Some(el) = document
                    .as_ref()
                    .and_then(|d| d.query_selector(selector).ok().flatten())
                {
                    let _ = if open && narrow {
                        el.set_attribute("inert", "")
                    } else {
                        el.remove_attribute("inert")
                    };
                }
            }
        }
        // Focus moves once the page behind is no longer inert.
        if open {
            if let Some(b) = close_button.get_untracked() {
                let _ = b.focus();
            }
        } else if was_open == Some(true) {
            if let Some(b) = drawer.button.get_untracked() {
                let _ = b.focus();
            }
        }
        open
    });
    let close_drawer = move || drawer.open.set(false);
    let leave_button = NodeRef::<leptos::html::Button>::new();
    let focus = |button: NodeRef<leptos::html::Button>| {
        if let Some(b) = button.get_untracked() {
            let _ = b.focus();
        }
    };
    view! {
        <RoomNotices model outgoing />
        <main class="chat" class:members-open=move || drawer.open.get() data-testid="chat">
            // A tap beside the open drawer closes it.
            <div class="drawer-backdrop" aria-hidden="true" on:click=move |_| close_drawer()></div>
            <aside
                class="members card"
                id="members-drawer"
                aria-labelledby="members-heading"
                data-testid="members-drawer"
                role=move || modal.get().then_some("dialog")
                aria-modal=move || modal.get().then_some("true")
                on:keydown=on_escape(close_drawer)
            >
                // While modal, Tab wraps around inside the drawer: past either end it lands here
                // and is sent to the other end.
                <span
                    class="focus-wrap"
                    tabindex=move || modal.get().then_some("0")
                    on:focus=move |_| focus(leave_button)
                ></span>
                <div class="drawer-head">
                    <h2 id="members-heading">{t("members-heading")}</h2>
                    <button
                        type="button"
                        class="drawer-close"
                        node_ref=close_button
                        data-testid="members-close"
                        aria-label=t("close-members")
                        on:click=move |_| close_drawer()
                    >
                        "×"
                    </button>
                </div>
                <MemberList model outgoing />
                <button
                    class="link"
                    node_ref=leave_button
                    data-testid="leave-button"
                    on:click=move |_| {
                        leave.dispatch(LeaveRoom { room: room.clone() });
                    }
                >
                    {t("leave-room")}
                </button>
                <span
                    class="focus-wrap"
                    tabindex=move || modal.get().then_some("0")
                    on:focus=move |_| focus(close_button)
                ></span>
            </aside>
            <section class="conversation card" aria-label=t("conversation")>
                <MessageList model outgoing compose />
                <TypingLine model />
                <Composer model outgoing compose />
            </section>
        </main>
    }
}

/// The member list's drawer on narrow screens: open or not, and the header button that toggles it.
#[derive(Clone, Copy)]
pub struct MembersDrawer {
    pub open: RwSignal<bool>,
    pub button: NodeRef<leptos::html::Button>,
}

impl Default for MembersDrawer {
    fn default() -> Self {
        MembersDrawer {
            open: RwSignal::new(false),
            button: NodeRef::new(),
        }
    }
}

/// The header's members button: an icon with how many are online, named "Members, 2 people
/// online" (shown on narrow screens only, by the style sheet, which there hides the header's count).
#[component]
pub fn MembersButton(drawer: MembersDrawer, model: LiveRoom) -> impl IntoView {
    let lang = use_lang();
    let online = move || model.with(Parts::ONLINE, |m| m.online);
    let label = move || {
        Text::new("members-button")
            .arg("count", online() as i64)
            .render(lang.get())
    };
    view! {
        <button
            type="button"
            class="members-button"
            node_ref=drawer.button
            data-testid="members-button"
            aria-controls="members-drawer"
            aria-expanded=move || drawer.open.get().to_string()
            on:click=move |_| drawer.open.update(|o| *o = !*o)
            aria-label=label
        >
            // Two people and the count: narrow enough for the phone's header to keep to two rows.
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                <path d="M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8Zm-7 9a7 7 0 0 1 14 0v1H2Zm15.5-9.5a3.5 3.5 0 1 0 0-7M19 21h3v-1a6 6 0 0 0-4.5-5.8" />
            </svg>
            <span class="count" aria-hidden="true">
                {online}
            </span>
        </button>
    }
}
