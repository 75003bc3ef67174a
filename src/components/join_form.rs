//! The join form: display name and avatar, checked here by the shared rules and then by the `join_room` server function.

use leptos::prelude::*;

use super::avatar_picker::AvatarPicker;
use super::now_ms;
use super::preview_list::Preview;
use super::time::local_when;
use crate::avatars::{avatar_url, DEFAULT_AVATAR};
use crate::i18n::{t, use_lang, Lang, Text};
use crate::live_room::LiveRoom;
use crate::model::Parts;
use crate::protocol::pages::{JoinField, JoinLimit, JoinOutcome, RefusalCode};
use crate::rules::{validate_name, NameError, RoomError};

#[component]
pub fn JoinForm(room: String, model: LiveRoom) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let avatar = RwSignal::new(DEFAULT_AVATAR.to_string());
    // A plain form post (before the WASM) that was refused comes back as `?refused=<code>`.
    let refused = crate::address::query_value("refused").and_then(|code| refused_in_address(&code));
    let at = |field| refused.clone().filter(|(f, _)| *f == field).map(|(_, t)| t);
    let name_error = RwSignal::new(
        model
            .with_untracked(|m| m.join_error.clone())
            .or_else(|| at(JoinField::Name)),
    );
    let avatar_error = RwSignal::new(at(JoinField::Avatar));
    let room_error = RwSignal::new(at(JoinField::Room));
    let pending = RwSignal::new(false);
    let room_field = room.clone();

    // Prefill what this browser used last time (only the browser has it).
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(saved) = crate::client::storage::load_identity() {
            name.set(saved.name);
            if crate::avatars::is_avatar(&saved.avatar) {
                avatar.set(saved.avatar);
            }
        }
    });

    let lang = use_lang();
    let answered = move |answer: Answer| match answer {
        Answer::Joined(member, owner_token) => joined(model, member, owner_token),
        Answer::Refused(field, text) => match field {
            JoinField::Name => name_error.set(Some(text)),
            JoinField::Avatar => avatar_error.set(Some(text)),
            JoinField::Room => room_error.set(Some(text)),
        },
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if pending.get_untracked() {
            return;
        }
        name_error.set(None);
        avatar_error.set(None);
        room_error.set(None);
        pending.set(true);
        let (room, name, avatar) = (room.clone(), name.get_untracked(), avatar.get_untracked());
        let lang = lang.get_untracked();
        leptos::task::spawn_local(async move {
            answered(lazy_join(room, name, avatar, lang).await);
            pending.set(false);
        });
    };

    let preview_members = move || model.with(Parts::MEMBERS, |m| m.members.clone());
    view! {
        <main class="join">
            // Before hydration (or without WASM) a plain post: the server function redirects back here.
            <form
                class="join-form card"
                data-testid="join-form"
                method="post"
                action="/api/join"
                on:submit=submit
                novalidate
            >
                <h2>{t("join-heading")}</h2>
                <input type="hidden" name="room" value=room_field />
                <div class="field">
                    <label for="name">{t("join-name")}</label>
                    <input
                        id="name"
                        name="name"
                        data-testid="name-input"
                        autocomplete="nickname"
                        placeholder=t("join-name-placeholder")
                        prop:value=name
                        // Someone about to join: the join's and the chat's chunks come while they type.
                        on:focus=move |_| preload_chat()
                        on:input=move |ev| {
                            name.set(event_target_value(&ev));
                            name_error.set(None);
                        }
                        aria-invalid=move || name_error.with(|e| e.is_some()).to_string()
                        aria-describedby="name-error"
                    />
                    <FieldError id="name-error" error=name_error />
                </div>
                <fieldset class="field">
                    <legend id="avatar-legend">{t("join-avatar")}</legend>
                    <AvatarPicker
                        selected=avatar
                        invalid=Signal::derive(move || avatar_error.with(|e| e.is_some()))
                    />
                    <FieldError id="avatar-error" error=avatar_error />
                </fieldset>
                <FieldError id="room-error" error=room_error />
                <button
                    type="submit"
                    class="primary"
                    data-testid="join-button"
                    disabled=move || pending.get()
                >
                    {t("join-submit")}
                </button>
            </form>
            <aside class="card who">
                <h2>{t("join-online-now")}</h2>
                <Show
                    when=move || model.with(Parts::MEMBERS, |m| !m.members.is_empty())
                    fallback=|| view! { <p class="muted">{t("join-nobody")}</p> }
                >
                    <ul class="preview-members">
                        {move || {
                            preview_members()
                                .into_iter()
                                .map(|m| {
                                    view! {
                                        <li>
                                            <img
                                                src=avatar_url(&m.avatar)
                                                alt=""
                                                width="24"
                                                height="24"
                                            />
                                            <span>{m.name}</span>
                                        </li>
                                    }
                                })
                                .collect_view()
                        }}
                    </ul>
                </Show>
            </aside>
            <Show when=move || model.with(Parts::ENTRIES, |m| m.has_recent())>
                <section class="card preview-conversation" aria-label=t("join-recent")>
                    <h2>{t("join-recent")}</h2>
                    <Preview model />
                </section>
            </Show>
        </main>
    }
}

/// Fetches the WASM chunks of the join and of the chat ahead of the submit (a second call costs
/// nothing).
fn preload_chat() {
    #[cfg(feature = "hydrate")]
    {
        leptos::task::spawn_local(__preload_lazy_join());
        leptos::task::spawn_local(super::chat_view::__preload_lazy_chat_view());
        leptos::task::spawn_local(super::chat_view::__preload_lazy_member_tools());
    }
}

/// What became of a join, as the form shows it.
enum Answer {
    /// Joined as this member (with a new room's owner token).
    Joined(crate::protocol::Member, Option<String>),
    Refused(JoinField, Text),
}

/// Checks the name by the shared rule, asks the server to join and words its answer in `lang`,
/// from a WASM chunk of its own: the rule's script tables, the join call's client (its form
/// encoding, the answer's decoding) and the refusals' wording are not part of the first load,
/// only of the first submit.
#[lazy]
async fn lazy_join(room: String, name: String, avatar: String, lang: Lang) -> Answer {
    let name = match validate_name(&name) {
        Ok(name) => name,
        Err(e) => return Answer::Refused(JoinField::Name, e.text()),
    };
    match crate::api::join_room(room, name, avatar).await {
        Ok(JoinOutcome::Joined(member)) => Answer::Joined(member, None),
        // A new room: its one-time owner link is shown until claimed or dismissed.
        Ok(JoinOutcome::Created { member, token }) => Answer::Joined(member, Some(token)),
        Ok(JoinOutcome::Refused {
            field,
            message,
            code,
        }) => Answer::Refused(field, refusal_text(code, message, lang)),
        // A limit (e.g. too many joins from one address), in the reader's words when known.
        Err(ServerFnError::ServerError(message)) => Answer::Refused(
            JoinField::Room,
            JoinLimit::from_message(&message).map_or(Text::raw(message), limit_text),
        ),
        Err(e) => Answer::Refused(
            JoinField::Room,
            Text::new("join-could-not").arg("error", e.to_string()),
        ),
    }
}

/// Joined as `member`: the chat takes over (with a fresh standing).
fn joined(model: LiveRoom, member: crate::protocol::Member, owner_token: Option<String>) {
    #[cfg(feature = "hydrate")]
    crate::client::storage::save_identity(&member);
    model.change(|m| {
        m.join_error = None;
        m.me = Some(member);
        m.standing.removed = None;
        m.standing.owner_token = owner_token;
        Parts::ME | Parts::STANDING
    });
}

/// The words for a refused join: its code's, else the server's sentence (a ban's with its end
/// in the reader's time, in `lang`, and its reason).
fn refusal_text(code: RefusalCode, message: String, lang: Lang) -> Text {
    match code {
        RefusalCode::Banned => crate::standing::Removed {
            banned: true,
            reason: message,
        }
        .text(|ts| local_when(ts, now_ms() as i64, lang)),
        RefusalCode::Other => Text::raw(message),
        code => code_text(code),
    }
}

/// The words for a refusal's code alone.
fn code_text(code: RefusalCode) -> Text {
    let key = match code {
        RefusalCode::NameLength => return NameError::Length.text(),
        RefusalCode::NameInvisible => return NameError::Characters.text(),
        RefusalCode::NameMixedScripts => return NameError::MixedScripts.text(),
        RefusalCode::RoomName => return RoomError::Invalid.text(),
        RefusalCode::Avatar => "join-pick-avatar",
        RefusalCode::Restarting => "join-restarting",
        RefusalCode::Unavailable => "join-unavailable",
        RefusalCode::NameTaken => "join-name-taken",
        RefusalCode::RoomFull => "join-room-full",
        // A ban named by the address alone: no end, no reason (anyone could write those there).
        RefusalCode::Banned => {
            return Text::new("removed-banned").arg("why", Text::new("full-stop"))
        }
        RefusalCode::Other => "join-refused",
    };
    Text::new(key)
}

/// The words for a join refused by a limit.
fn limit_text(limit: JoinLimit) -> Text {
    Text::new(match limit {
        JoinLimit::Joins => "join-too-many-joins",
        JoinLimit::Reservations => "join-too-many-reservations",
        JoinLimit::NewRooms => "join-too-many-new-rooms",
        JoinLimit::TooManyRooms => "join-too-many-rooms",
    })
}

/// The field and words of a refusal named in the address (`?refused=name_taken`) by a plain post.
fn refused_in_address(code: &str) -> Option<(JoinField, Text)> {
    if let Some(limit) = JoinLimit::from_slug(code) {
        return Some((JoinField::Room, limit_text(limit)));
    }
    // Its reason (e.g. a ban's) is not carried in the address, where anyone could write one.
    let code = RefusalCode::from_slug(code)?;
    Some((code.field(), code_text(code)))
}

/// An error shown next to a form field (hidden when there is none); `id` is also its test id.
#[component]
fn FieldError(id: &'static str, error: RwSignal<Option<Text>>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <p
            id=id
            class="field-error"
            data-testid=id
            role="alert"
            hidden=move || error.with(|e| e.is_none())
        >
            {move || error.with(|e| e.as_ref().map(|e| e.render(lang.get())).unwrap_or_default())}
        </p>
    }
}
