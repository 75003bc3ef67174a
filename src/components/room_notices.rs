//! Notices across the page: a kick or ban with its reason, and the owner link of a room created here.

use leptos::prelude::*;

use super::time::local_when;
use super::{now_ms, send_claim, Outgoing};
use crate::i18n::{t, use_lang};
use crate::live_room::LiveRoom;
use crate::model::Parts;

#[component]
pub fn RoomNotices(model: LiveRoom, outgoing: Outgoing) -> impl IntoView {
    let removed = Memo::new(move |_| model.with(Parts::STANDING, |m| m.standing.removed.clone()));
    let owner = Memo::new(move |_| model.with(Parts::STANDING, |m| m.standing.owner_token.clone()));
    let room = model.with_untracked(|m| m.room.clone());
    let lang = use_lang();
    let rejoin = move |_| {
        // The session is still good after a kick: a fresh page joins again.
        #[cfg(feature = "hydrate")]
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    };
    let dismiss = move |_| {
        model.change(|m| {
            m.standing.owner_token = None;
            Parts::STANDING
        });
    };
    view! {
        {move || {
            removed
                .get()
                .map(|r| {
                    view! {
                        <div class="page-notice removed" role="alert" data-testid="removed-notice">
                            <p data-testid="removed-text">
                                {
                                    let r = r.clone();
                                    move || {
                                        let lang = lang.get();
                                        r.text(|ts| local_when(ts, now_ms() as i64, lang))
                                            .render(lang)
                                    }
                                }
                            </p>
                            {(!r.banned)
                                .then(|| {
                                    view! {
                                        <button
                                            type="button"
                                            class="primary"
                                            data-testid="rejoin-button"
                                            on:click=rejoin
                                        >
                                            {t("rejoin")}
                                        </button>
                                    }
                                })}
                        </div>
                    }
                })
        }}
        {move || {
            let room = room.clone();
            owner
                .get()
                .map(|token| {
                    let link = owner_link(&room, &token);
                    view! {
                        <div class="page-notice owner" role="status" data-testid="owner-notice">
                            <p>
                                {t("owner-link")} <a href=link.clone() data-testid="owner-link">
                                    {link.clone()}
                                </a>
                            </p>
                            <button
                                type="button"
                                class="primary"
                                data-testid="claim-now"
                                on:click=move |_| send_claim(model, outgoing, token.clone())
                            >
                                {t("claim-now")}
                            </button>
                            <button
                                type="button"
                                class="link"
                                aria-label=t("dismiss-owner-link")
                                data-testid="dismiss-owner"
                                on:click=dismiss
                            >
                                "×"
                            </button>
                        </div>
                    }
                })
        }}
    }
}

/// The owner link: absolute in the browser, from the site's root elsewhere.
fn owner_link(room: &str, token: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::client::claim::link(room, token)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        format!("/r/{room}?claim={token}")
    }
}
