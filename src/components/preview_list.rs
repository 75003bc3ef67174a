//! The join view's read-only look at the conversation: the room's latest messages and notices.
//!
//! Rendered by the server alone, in the reader's language and, in a `<template>`, in the other:
//! a visitor holds no connection, so the page's snapshot is all it shows, and it never changes.
//! Hydrating it took the list's views and the snapshot's messages into the first load (15 KB
//! of its brotli WASM, measured by leaving it out); the browser now only puts its times into
//! the reader's time zone and, when the language is switched, swaps in the other copy. Shown
//! again in a live page (back from the chat), it asks the server for the room's page anew and
//! takes both copies from it. Not the chat's `MessageList`, which has menus, reactions and paging.

use leptos::prelude::*;

use crate::live_room::LiveRoom;

#[cfg(feature = "ssr")]
use super::byline::{Byline, MessageAvatar};
#[cfg(feature = "ssr")]
use super::message_text::MessageText;
#[cfg(feature = "ssr")]
use crate::i18n::{t, use_lang, Lang, Language};
#[cfg(feature = "ssr")]
use crate::model::{Entry, Parts};
#[cfg(feature = "ssr")]
use crate::protocol::ChatMessage;

/// The preview: the reader's copy, and the other language's in a `<template>`.
#[component]
pub fn Preview(model: LiveRoom) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let (shown, other) = {
        let lang = use_lang().get_untracked();
        let other = Lang::ALL.into_iter().find(|l| *l != lang).unwrap_or(lang);
        (in_language(model, lang), in_language(model, other))
    };
    #[cfg(not(feature = "ssr"))]
    let (shown, other) = {
        let _ = model;
        (String::new(), String::new())
    };
    let host = NodeRef::<leptos::html::Div>::new();
    let spare = NodeRef::<leptos::html::Template>::new();
    #[cfg(feature = "hydrate")]
    {
        let lang = crate::i18n::use_lang();
        let hydrated = use_context::<super::Hydrated>().map(|h| h.0);
        // Shown again in a live page (back from the chat: left, removed): the server renders it
        // anew, with what was said meanwhile (the list's own code would weigh on the first load).
        if hydrated.is_some_and(|h| h.get_untracked()) {
            let room = model.with_untracked(|m| m.room.clone());
            leptos::task::spawn_local(async move {
                let (Some((shown, other)), Some(host), Some(spare)) = (
                    page_preview(&room).await,
                    host.get_untracked(),
                    spare.get_untracked(),
                ) else {
                    return;
                };
                host.set_inner_html(&shown);
                spare.set_inner_html(&other);
                local_times(&host, lang.get_untracked());
                open_at_newest(&host);
            });
        }
        // Local times wait until the page is live (as the chat's do), out of hydration's long task.
        Effect::new(move |showing: Option<Option<crate::i18n::Lang>>| {
            let lang = lang.get();
            let (Some(host), Some(spare)) = (host.get(), spare.get()) else {
                return None;
            };
            if !hydrated.is_some_and(|h| h.get()) {
                return None;
            }
            match showing.flatten() {
                Some(shown) if shown != lang => {
                    let other = spare.inner_html();
                    spare.set_inner_html(&host.inner_html());
                    host.set_inner_html(&other);
                }
                Some(_) => {}
                None => open_at_newest(&host),
            }
            local_times(&host, lang);
            Some(lang)
        });
    }
    view! {
        <div class="preview-list" node_ref=host inner_html=shown></div>
        <template node_ref=spare inner_html=other></template>
    }
}

/// The preview's two copies in the room's page as the server renders it now.
#[cfg(feature = "hydrate")]
async fn page_preview(room: &str) -> Option<(String, String)> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let fetched = JsFuture::from(web_sys::window()?.fetch_with_str(&format!("/r/{room}")));
    let response: web_sys::Response = fetched.await.ok()?.dyn_into().ok()?;
    let html = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    // Parsed inert: a template's content runs no script and loads no image.
    let parsed: web_sys::HtmlTemplateElement = document()
        .create_element("template")
        .ok()?
        .dyn_into()
        .ok()?;
    parsed.set_inner_html(&html);
    let page = parsed.content();
    let copy = |selector: &str| Some(page.query_selector(selector).ok()??.inner_html());
    Some((
        copy(".preview-list")?,
        copy(".preview-conversation template")?,
    ))
}

/// Scrolls the list in `host` to its newest line.
#[cfg(feature = "hydrate")]
fn open_at_newest(host: &web_sys::Element) {
    if let Ok(Some(list)) = host.query_selector("ol") {
        list.set_scroll_top(list.scroll_height());
    }
}

/// Writes each `<time>` under `root` in the reader's time zone, as `lang` writes times.
#[cfg(feature = "hydrate")]
fn local_times(root: &web_sys::Element, lang: crate::i18n::Lang) {
    let Ok(times) = root.query_selector_all("time[datetime]") else {
        return;
    };
    for i in 0..times.length() {
        let Some(time) = times
            .item(i)
            .and_then(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
        else {
            continue;
        };
        let Some(at) = time.get_attribute("datetime") else {
            continue;
        };
        let ms = js_sys::Date::parse(&at);
        if ms.is_finite() {
            time.set_text_content(Some(&super::time::local_hhmm(ms as i64, lang)));
        }
    }
}

/// The list in `lang`, as HTML.
#[cfg(feature = "ssr")]
fn in_language(model: LiveRoom, lang: Lang) -> String {
    let owner = Owner::current().map_or_else(Owner::new, |o| o.child());
    owner.with(|| {
        provide_context(Language(RwSignal::new(lang)));
        view! { <PreviewList model /> }.to_html()
    })
}

#[cfg(feature = "ssr")]
#[component]
fn PreviewList(model: LiveRoom) -> impl IntoView {
    let lang = use_lang();
    model.change(|m| {
        m.load_recent();
        Parts::NONE
    });
    let rows = model
        .with_untracked(|m| m.entries.clone())
        .into_iter()
        .map(|entry| match entry {
            Entry::Message(message) => view! { <PreviewItem message model /> }.into_any(),
            Entry::Notice { text, .. } => view! {
                <li class="notice" data-testid="notice">
                    {move || text.render(lang.get())}
                </li>
            }
            .into_any(),
        })
        .collect_view();
    view! {
        <ol class="messages" data-testid="messages" aria-label=t("messages") tabindex="0">
            {rows}
        </ol>
    }
}

/// One message as a visitor sees it: who, when, what it says (or that it is gone), its reactions.
#[cfg(feature = "ssr")]
#[component]
fn PreviewItem(message: ChatMessage, model: LiveRoom) -> impl IntoView {
    let m = message;
    let edited = (m.edited.is_some() && !m.deleted && !m.removed).then(|| {
        view! {
            <span class="edited" data-testid="message-edited">
                {t("edited")}
            </span>
        }
    });
    let quote = m.reply_to.map(|q| {
        let words = if q.gone {
            view! { <em class="muted">{t("original-deleted")}</em> }.into_any()
        } else {
            view! {
                <strong class="quote-name">{q.name}</strong>
                " "
                <span class="quote-text">{q.text}</span>
            }
            .into_any()
        };
        view! {
            <div class="quote" data-testid="quote">
                {words}
            </div>
        }
    });
    let body = if m.removed || m.deleted {
        let key = if m.removed {
            "message-removed"
        } else {
            "message-deleted"
        };
        view! {
            <p class="text deleted" data-testid=key>
                {t(key)}
            </p>
        }
        .into_any()
    } else {
        let chips = m
            .reactions
            .iter()
            .map(|r| {
                let label = format!("{} {}: {}", r.emoji, r.names.len(), r.names.join(", "));
                view! {
                    <span
                        class="reaction"
                        data-testid="reaction"
                        data-emoji=r.emoji.clone()
                        title=label
                    >
                        {r.emoji.clone()}
                        " "
                        <span class="count">{r.names.len()}</span>
                    </span>
                }
            })
            .collect_view();
        let reactions = (!m.reactions.is_empty()).then(|| {
            view! {
                <div class="reactions" role="group" aria-label=t("reactions")>
                    {chips}
                </div>
            }
        });
        view! {
            <MessageText model text=m.text />
            {reactions}
        }
        .into_any()
    };
    view! {
        <li class="message" data-testid="message" data-id=m.id.to_string()>
            <MessageAvatar avatar=m.avatar />
            <div class="body">
                <div class="meta">
                    <Byline name=m.name ts=m.ts />
                    {edited}
                </div>
                {quote}
                {body}
            </div>
        </li>
    }
}
