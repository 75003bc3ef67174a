//! The header's "Moderate" panel for moderators: topic, lock, slow mode, unban, and the audit log.

use leptos::prelude::*;

use crate::i18n::{t, tr, use_lang, Text};
use crate::protocol::moderation::MAX_TOPIC_CHARS;

use super::popup::{close_on_press_elsewhere, close_to, focus_first_on, on_escape};
use super::time::local_hhmm;
use super::{lazy_view, send_moderation, Outgoing};
use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::protocol::pages::AuditEntry;
use crate::protocol::ModRequest;
use crate::standing::{audit_row, slow};

/// The slow modes offered, in seconds (0: off).
const SLOW_CHOICES: [u32; 5] = [0, 10, 30, 60, 300];

#[component]
pub fn ModeratePanel(model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let open = RwSignal::new(false);
    let button = NodeRef::<leptos::html::Button>::new();
    view! {
        <div class="moderate">
            <button
                type="button"
                node_ref=button
                data-testid="moderate-button"
                aria-haspopup="dialog"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                {t("moderate")}
            </button>
            <Show when=move || {
                open.get()
            }>{move || lazy_view(lazy_controls(model, outgoing, open, button))}</Show>
        </div>
    }
}

/// The open panel, from its own WASM chunk (members never load it).
#[lazy]
fn lazy_controls(
    model: LiveRoom,
    outgoing: Outgoing,
    open: RwSignal<bool>,
    button: NodeRef<leptos::html::Button>,
) -> AnyView {
    view! { <Controls model outgoing open button /> }.into_any()
}

/// The open panel.
#[component]
fn Controls(
    model: LiveRoom,
    outgoing: Outgoing,
    open: RwSignal<bool>,
    button: NodeRef<leptos::html::Button>,
) -> impl IntoView {
    let lang = use_lang();
    let panel = NodeRef::<leptos::html::Div>::new();
    focus_first_on(panel, || ());
    close_on_press_elsewhere(panel, button, move || open.set(false));
    let settings = Memo::new(move |_| model.with(Parts::ROOM, |m| m.standing.settings.clone()));
    let topic = RwSignal::new(settings.get_untracked().topic);
    let unban = RwSignal::new(String::new());
    let send = move |request| send_moderation(model, outgoing, request);
    let set_topic = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send(ModRequest::Topic {
            text: topic.get_untracked().trim().to_string(),
        });
    };
    let do_unban = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = unban.get_untracked().trim().to_string();
        if !name.is_empty() {
            send(ModRequest::Unban { name });
            unban.set(String::new());
        }
    };
    let locked = move || settings.with(|s| s.locked);
    view! {
        <div
            class="panel card"
            role="dialog"
            aria-label=t("moderate-room")
            data-testid="moderate-panel"
            node_ref=panel
            on:keydown=on_escape(move || close_to(open, button))
        >
            <form class="row" on:submit=set_topic>
                <label for="topic-input">{t("topic")}</label>
                <input
                    id="topic-input"
                    data-testid="topic-input"
                    maxlength=MAX_TOPIC_CHARS.to_string()
                    prop:value=topic
                    on:input=move |ev| topic.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="topic-save">
                    {t("set-topic")}
                </button>
            </form>
            <div class="row">
                <button
                    type="button"
                    data-testid="lock-toggle"
                    aria-pressed=move || locked().to_string()
                    on:click=move |_| send(ModRequest::Lock { on: !locked() })
                >
                    {move || tr(
                        lang.get(),
                        if locked() { "unlock-room" } else { "lock-room" },
                        &[],
                    )}
                </button>
            </div>
            <div class="row">
                <label for="slow-select">{t("slow-mode")}</label>
                <select
                    id="slow-select"
                    data-testid="slow-select"
                    prop:value=move || settings.with(|s| s.slow_secs.to_string())
                    on:change=move |ev| {
                        if let Ok(secs) = event_target_value(&ev).parse() {
                            send(ModRequest::Slow { secs });
                        }
                    }
                >
                    {SLOW_CHOICES
                        .iter()
                        .map(|&secs| {
                            let label = move || {
                                if secs == 0 {
                                    tr(lang.get(), "slow-mode-off", &[])
                                } else {
                                    slow(secs).render(lang.get())
                                }
                            };
                            view! { <option value=secs.to_string()>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </div>
            <form class="row" on:submit=do_unban>
                <label for="unban-input">{t("unban")}</label>
                <input
                    id="unban-input"
                    data-testid="unban-input"
                    placeholder=t("name")
                    prop:value=unban
                    on:input=move |ev| unban.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="unban-button">
                    {t("unban")}
                </button>
            </form>
            <AuditLog model />
        </div>
    }
}

/// "Audit log": loads the room's moderation history on demand and lists it.
#[component]
fn AuditLog(model: LiveRoom) -> impl IntoView {
    let entries = RwSignal::new(None::<Result<Vec<AuditEntry>, Text>>);
    let lang = use_lang();
    let loading = RwSignal::new(false);
    let load = move |_| {
        if loading.get_untracked() {
            return;
        }
        loading.set(true);
        #[cfg(feature = "hydrate")]
        {
            let room = model.with_untracked(|m| m.room.clone());
            leptos::task::spawn_local(async move {
                let result = crate::client::audit::load(&room).await;
                let _ = entries.try_set(Some(result));
                let _ = loading.try_set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = model;
    };
    view! {
        <div class="audit">
            <button
                type="button"
                data-testid="audit-button"
                // Not `disabled` while loading: a disabled button would drop the keyboard focus.
                aria-disabled=move || loading.get().to_string()
                on:click=load
            >
                {move || tr(lang.get(), if loading.get() { "loading" } else { "audit-log" }, &[])}
            </button>
            {move || match entries.get() {
                None => ().into_any(),
                Some(Err(message)) => {
                    view! {
                        <p class="field-error" role="alert" data-testid="audit-error">
                            {move || message.render(lang.get())}
                        </p>
                    }
                        .into_any()
                }
                Some(Ok(list)) if list.is_empty() => {
                    view! {
                        <p class="muted" data-testid="audit-empty">
                            {t("audit-empty")}
                        </p>
                    }
                        .into_any()
                }
                Some(Ok(list)) => view! { <AuditTable list /> }.into_any(),
            }}
        </div>
    }
}

/// The audit log's rows: when, who, what, whom, why.
#[component]
fn AuditTable(list: Vec<AuditEntry>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <table class="audit-table" data-testid="audit-log">
            <caption class="sr-only">{t("audit-caption")}</caption>
            <thead>
                <tr>
                    <th scope="col">{t("audit-when")}</th>
                    <th scope="col">{t("audit-who")}</th>
                    <th scope="col">{t("audit-what")}</th>
                    <th scope="col">{t("audit-whom")}</th>
                    <th scope="col">{t("audit-why")}</th>
                </tr>
            </thead>
            <tbody>
                {list
                    .into_iter()
                    .map(|entry| {
                        let change = entry.change;
                        let (what, whom, why) = audit_row(&change);
                        let who = if change.name.is_empty() {
                            Text::new("operator-subject")
                        } else {
                            Text::raw(change.name.clone())
                        };
                        view! {
                            <tr data-testid="audit-entry">
                                <td>
                                    <time datetime=super::time::iso_utc(
                                        change.ts,
                                    )>{move || local_hhmm(change.ts, lang.get())}</time>
                                </td>
                                <td>{move || who.render(lang.get())}</td>
                                <td>{move || what.render(lang.get())}</td>
                                <td>{whom}</td>
                                <td>{why}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
