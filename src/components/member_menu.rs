//! A moderator's menu on a member: mute, unmute, kick, ban or clear their recent messages, each with a reason.

use leptos::prelude::*;

use crate::protocol::moderation::MAX_REASON_CHARS;

use super::popup::{close_on_press_elsewhere, close_to, focus_first_on, move_in_menu, on_escape};
use super::{lazy_view, send_moderation, Outgoing};
use crate::live_room::LiveRoom;
use crate::protocol::ModRequest;

/// What the open menu shows: its items, or one action's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pane {
    Items,
    Mute,
    Unmute,
    Kick,
    Ban,
    Clear,
}

impl Pane {
    /// The action's name, its confirm button's label.
    fn verb(self) -> &'static str {
        match self {
            Pane::Items => "",
            Pane::Mute => "Mute",
            Pane::Unmute => "Unmute",
            Pane::Kick => "Kick",
            Pane::Ban => "Ban",
            Pane::Clear => "Clear messages",
        }
    }

    /// The durations offered (label, minutes; `None` is no end), the first chosen at first.
    fn choices(self) -> &'static [(&'static str, Option<u32>)] {
        match self {
            Pane::Mute => &[
                ("10 minutes", Some(10)),
                ("1 hour", Some(60)),
                ("1 day", Some(1440)),
                ("Until unmuted", None),
            ],
            Pane::Ban => &[
                ("1 hour", Some(60)),
                ("1 day", Some(1440)),
                ("Forever", None),
            ],
            Pane::Clear => &[("Last 15 minutes", Some(15)), ("Last 60 minutes", Some(60))],
            _ => &[],
        }
    }

    /// The request this form makes for member `name`.
    fn request(
        self,
        name: String,
        minutes: Option<u32>,
        address: bool,
        reason: String,
    ) -> Option<ModRequest> {
        Some(match self {
            Pane::Items => return None,
            Pane::Mute => ModRequest::Mute {
                name,
                minutes,
                reason,
            },
            Pane::Unmute => ModRequest::Unmute { name },
            Pane::Kick => ModRequest::Kick { name, reason },
            Pane::Ban => ModRequest::Ban {
                name,
                minutes,
                address,
                reason,
            },
            Pane::Clear => ModRequest::Clear {
                name,
                minutes: minutes.unwrap_or(15),
                reason,
            },
        })
    }
}

#[component]
pub fn MemberMenu(name: String, model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let open = RwSignal::new(false);
    let pane = RwSignal::new(Pane::Items);
    let button = NodeRef::<leptos::html::Button>::new();
    let label = format!("Moderate {name}");
    let toggle = move |_| {
        pane.set(Pane::Items);
        open.update(|o| *o = !*o);
    };
    view! {
        <div class="member-tools">
            <button
                type="button"
                class="more"
                node_ref=button
                data-testid="member-menu-button"
                aria-label=label
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                on:click=toggle
            >
                "⋯"
            </button>
            <Show when=move || {
                open.get()
            }>
                {
                    let name = name.clone();
                    move || lazy_view(
                        lazy_menu_body(name.clone(), model, outgoing, open, pane, button),
                    )
                }
            </Show>
        </div>
    }
}

/// The open menu, from its own WASM chunk (only moderators see it).
#[lazy]
fn lazy_menu_body(
    name: String,
    model: LiveRoom,
    outgoing: Outgoing,
    open: RwSignal<bool>,
    pane: RwSignal<Pane>,
    button: NodeRef<leptos::html::Button>,
) -> AnyView {
    view! { <MenuBody name model outgoing open pane button /> }.into_any()
}

/// The open menu: its items, then the chosen action's form.
#[component]
fn MenuBody(
    name: String,
    model: LiveRoom,
    outgoing: Outgoing,
    open: RwSignal<bool>,
    pane: RwSignal<Pane>,
    button: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let panel = NodeRef::<leptos::html::Div>::new();
    focus_first_on(panel, move || pane.track());
    close_on_press_elsewhere(panel, button, move || open.set(false));
    let close = move || close_to(open, button);
    let item = move |p: Pane, label: &'static str, test: &'static str| {
        view! {
            <button type="button" role="menuitem" data-testid=test on:click=move |_| pane.set(p)>
                {label}
            </button>
        }
    };
    let menu_label = format!("Moderate {name}");
    view! {
        <div
            class="menu member-menu"
            data-testid="member-menu"
            node_ref=panel
            on:keydown={
                let escape = on_escape(close);
                move |ev: leptos::ev::KeyboardEvent| {
                    move_in_menu(&ev);
                    escape(ev);
                }
            }
        >
            {move || {
                if pane.get() == Pane::Items {
                    view! {
                        <div role="menu" aria-label=menu_label.clone()>
                            {item(Pane::Mute, "Mute…", "member-mute")}
                            {item(Pane::Unmute, "Unmute", "member-unmute")}
                            {item(Pane::Kick, "Kick…", "member-kick")}
                            {item(Pane::Ban, "Ban…", "member-ban")}
                            {item(Pane::Clear, "Clear recent messages…", "member-clear")}
                        </div>
                    }
                        .into_any()
                } else {
                    view! { <ActionForm name=name.clone() model outgoing pane=pane.get() close /> }
                        .into_any()
                }
            }}
        </div>
    }
}

/// One action's form: its duration, the ban's address box, a reason, and Cancel or confirm.
#[component]
fn ActionForm(
    name: String,
    model: LiveRoom,
    outgoing: Outgoing,
    pane: Pane,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let choices = pane.choices();
    let minutes = RwSignal::new(choices.first().and_then(|c| c.1));
    let address = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let title = format!("{} {name}", pane.verb());
    let group = format!("duration-{}", pane.verb().to_lowercase().replace(' ', "-"));
    let submit = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let request = pane.request(
                name.clone(),
                minutes.get_untracked(),
                address.get_untracked(),
                reason.get_untracked().trim().to_string(),
            );
            if let Some(request) = request {
                send_moderation(model, outgoing, request);
            }
            close();
        }
    };
    view! {
        <form
            class="mod-form"
            role="dialog"
            aria-label=title.clone()
            data-testid="member-action-form"
            on:submit=submit
        >
            <p class="mod-title">{title.clone()}</p>
            {(!choices.is_empty())
                .then(|| {
                    view! {
                        <fieldset class="choices">
                            <legend class="sr-only">"For how long"</legend>
                            {choices
                                .iter()
                                .map(|&(label, value)| {
                                    view! {
                                        <label>
                                            <input
                                                type="radio"
                                                name=group.clone()
                                                data-testid="duration"
                                                prop:checked=move || minutes.get() == value
                                                on:change=move |_| minutes.set(value)
                                            />
                                            {label}
                                        </label>
                                    }
                                })
                                .collect_view()}
                        </fieldset>
                    }
                })}
            {(pane == Pane::Ban)
                .then(|| {
                    view! {
                        <label>
                            <input
                                type="checkbox"
                                data-testid="ban-address"
                                on:change=move |ev| address.set(event_target_checked(&ev))
                            />
                            "Also their address"
                        </label>
                    }
                })}
            {(pane != Pane::Unmute)
                .then(|| {
                    view! {
                        <label class="reason">
                            "Reason (optional)"
                            <input
                                data-testid="mod-reason"
                                maxlength=MAX_REASON_CHARS.to_string()
                                on:input=move |ev| reason.set(event_target_value(&ev))
                            />
                        </label>
                    }
                })}
            <div class="buttons">
                <button type="button" data-testid="mod-cancel" on:click=move |_| close()>
                    "Cancel"
                </button>
                <button type="submit" class="danger" data-testid="mod-confirm">
                    {pane.verb()}
                </button>
            </div>
        </form>
    }
}
