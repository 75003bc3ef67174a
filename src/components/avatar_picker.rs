//! The avatar picker: the catalogue as native radio buttons (`name=avatar`) with pictures, one tab stop, arrows to choose.

use super::avatar_name;
use leptos::prelude::*;

use crate::avatars::{catalogue, Avatar};
use crate::i18n::use_lang;

/// The index `delta` steps from `current`, wrapping around.
fn step(current: usize, delta: isize, len: usize) -> usize {
    (current as isize + delta).rem_euclid(len as isize) as usize
}

#[component]
pub fn AvatarPicker(
    selected: RwSignal<String>,
    #[prop(into)] invalid: Signal<bool>,
) -> impl IntoView {
    // The catalogue is compiled in: the grid is in the page's first paint, not streamed in after
    // it (which pushed the rest of the form down: a layout shift).
    view! { <AvatarGrid list=catalogue() selected invalid /> }
}

#[component]
fn AvatarGrid(
    list: Vec<Avatar>,
    selected: RwSignal<String>,
    invalid: Signal<bool>,
) -> impl IntoView {
    let reader = use_lang();
    let ids: Vec<String> = list.iter().map(|a| a.id.clone()).collect();
    let len = ids.len();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let delta = match ev.key().as_str() {
            "ArrowRight" | "ArrowDown" => 1,
            "ArrowLeft" | "ArrowUp" => -1,
            "Home" => isize::MIN,
            "End" => isize::MAX,
            _ => return,
        };
        ev.prevent_default();
        let current = ids
            .iter()
            .position(|id| *id == selected.get_untracked())
            .unwrap_or(0);
        let next = match delta {
            isize::MIN => 0,
            isize::MAX => len.saturating_sub(1),
            d => step(current, d, len),
        };
        if let Some(id) = ids.get(next) {
            selected.set(id.clone());
            focus_avatar(id);
        }
    };
    // Real radios: the form posts `avatar` before the WASM has loaded too.
    view! {
        <div
            class="avatar-picker"
            role="radiogroup"
            aria-labelledby="avatar-legend"
            aria-invalid=move || invalid.get().to_string()
            aria-describedby="avatar-error"
            data-testid="avatar-picker"
            on:keydown=on_key
        >
            {list
                .into_iter()
                .map(|a| {
                    let id = a.id.clone();
                    let label = {
                        let id = id.clone();
                        Signal::derive(move || avatar_name(reader.get(), &id))
                    };
                    let is_selected = {
                        let id = id.clone();
                        move || selected.with(|s| *s == id)
                    };
                    let pick = {
                        let id = id.clone();
                        move |_| selected.set(id.clone())
                    };
                    view! {
                        <label class="avatar-option" class:selected=is_selected.clone() title=label>
                            <input
                                type="radio"
                                name="avatar"
                                value=id.clone()
                                class:selected=is_selected.clone()
                                checked=is_selected.clone()
                                prop:checked=is_selected.clone()
                                tabindex={
                                    let s = is_selected.clone();
                                    move || if s() { "0" } else { "-1" }
                                }
                                data-avatar=id.clone()
                                aria-label=label
                                on:change=pick
                            />
                            // Named on the radio: the picture is not read out a second time.
                            <img src=a.url alt="" width="48" height="48" />
                        </label>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// Moves keyboard focus to the avatar `id` (roving tab index).
fn focus_avatar(id: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let el = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| {
                d.query_selector(&format!("[data-avatar=\"{id}\"]"))
                    .ok()
                    .flatten()
            })
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(el) = el {
            let _ = el.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

#[cfg(test)]
mod tests {
    use super::step;

    #[test]
    fn arrows_wrap_around() {
        assert_eq!(step(0, -1, 16), 15);
        assert_eq!(step(15, 1, 16), 0);
        assert_eq!(step(3, 1, 16), 4);
    }
}
