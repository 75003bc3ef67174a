//! The language switch: a `<select>` that rewords the page in place and remembers the choice in a cookie.

use leptos::prelude::*;

use crate::i18n::{switch_to, t, Lang, Language};

#[component]
pub fn LanguageSwitch() -> impl IntoView {
    let Some(language) = use_context::<Language>() else {
        return ().into_any();
    };
    let current = language.0;
    let change = move |ev: leptos::ev::Event| {
        if let Some(lang) = Lang::from_tag(&event_target_value(&ev)) {
            switch_to(language, lang);
        }
    };
    view! {
        <label class="lang-switch">
            <span class="sr-only">{t("language")}</span>
            <select data-testid="language-select" aria-label=t("language") on:change=change>
                {Lang::ALL
                    .into_iter()
                    .map(|lang| {
                        view! {
                            <option
                                value=lang.code()
                                lang=lang.tag()
                                selected=move || current.get() == lang
                            >
                                {lang.own_name()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
    .into_any()
}
