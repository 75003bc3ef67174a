//! A moderator's menu on a member: mute, unmute, kick, ban or clear their recent messages, each with a reason.

use crate::standing::duration;
use leptos::prelude::*;

use crate::i18n::{t, tr, use_lang, Text};
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
    /// The action's message key: its name, its confirm button's label.
    fn verb(self) -> &'static str {
        match self {
            Pane::Items => "raw",
            Pane::Mute => "pane-mute",
            Pane::Unmute => "pane-unmute",
            Pane::Kick => "pane-kick",
            Pane::Ban => "pane-ban",
            Pane::Clear => "pane-clear",
        }
    }

    /// A duration choice's words: a span, its end-less choice, or the last minutes to clear.
    fn choice_label(self, minutes: Option<u32>) -> Text {
        match (self, minutes) {
            (Pane::Clear, Some(m)) => Text::new("last-minutes").arg("count", i64::from(m)),
            (Pane::Mute, None) => Text::new("until-unmuted"),
            (_, None) => Text::new("forever"),
            (_, Some(m)) => duration(i64::from(m) * 60_000),
        }
    }

    /// The durations offered, in minutes (`None` is no end), the first chosen at first.
    fn choices(self) -> &'static [Option<u32>] {
        match self {
            Pane::Mute => &[Some(10), Some(60), Some(1440), None],
            Pane::Ban => &[Some(60), Some(1440), None],
            Pane::Clear => &[Some(15), Some(60)],
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

/// "Moderate <name>" in the reader's language: the menu button's and the menu's name.
fn moderate_label(name: String) -> Signal<String> {
    let lang = use_lang();
    Signal::derive(move || {
        tr(
            lang.get(),
            "moderate-member",
            &[("name", name.as_str().into())],
        )
    })
}

#[component]
pub fn MemberMenu(name: String, model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let open = RwSignal::new(false);
    let pane = RwSignal::new(Pane::Items);
    let button = NodeRef::<leptos::html::Button>::new();
    let label = moderate_label(name.clone());
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
                {t(label)}
            </button>
        }
    };
    let menu_label = moderate_label(name.clone());
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
                        <div role="menu" aria-label=menu_label>
                            {item(Pane::Mute, "item-mute", "member-mute")}
                            {item(Pane::Unmute, "pane-unmute", "member-unmute")}
                            {item(Pane::Kick, "item-kick", "member-kick")}
                            {item(Pane::Ban, "item-ban", "member-ban")}
                            {item(Pane::Clear, "item-clear", "member-clear")}
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
    let minutes = RwSignal::new(choices.first().copied().flatten());
    let address = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let lang = use_lang();
    let title = {
        let name = name.clone();
        Signal::derive(move || {
            let verb = tr(lang.get(), pane.verb(), &[]);
            let args = [("verb", verb.into()), ("name", name.as_str().into())];
            tr(lang.get(), "pane-title", &args)
        })
    };
    let group = format!("duration-{}", pane.verb());
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
            aria-label=title
            data-testid="member-action-form"
            on:submit=submit
        >
            <p class="mod-title">{title}</p>
            {(!choices.is_empty())
                .then(|| {
                    view! {
                        <fieldset class="choices">
                            <legend class="sr-only">{t("for-how-long")}</legend>
                            {choices
                                .iter()
                                .map(|&value| {
                                    view! {
                                        <label>
                                            <input
                                                type="radio"
                                                name=group.clone()
                                                data-testid="duration"
                                                prop:checked=move || minutes.get() == value
                                                on:change=move |_| minutes.set(value)
                                            />
                                            {move || pane.choice_label(value).render(lang.get())}
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
                            {t("also-address")}
                        </label>
                    }
                })}
            {(pane != Pane::Unmute)
                .then(|| {
                    view! {
                        <label class="reason">
                            {t("reason-optional")}
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
                    {t("cancel")}
                </button>
                <button type="submit" class="danger" data-testid="mod-confirm">
                    {t(pane.verb())}
                </button>
            </div>
        </form>
    }
}
