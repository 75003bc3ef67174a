//! The composer's @-autocomplete: a list of the room's members matching what follows `@`, picked by keys or mouse.
//!
//! The composer keeps its textarea; it hands the picker its text, lets it see keys first
//! ([`MentionPicker::keydown`]: ArrowUp/ArrowDown move, Enter or Tab pick, Esc closes, and Enter
//! does not send while the list is open) and spreads [`MentionPicker::combobox`] on the textarea
//! (the ARIA combobox pattern: `aria-expanded`, `aria-activedescendant` on the listbox's options).
//! The text rules (what counts as a query, what a pick inserts) are `crate::mentions`.

use super::avatar_name;
use leptos::prelude::*;

use crate::avatars::avatar_url;
use crate::i18n::{t, use_lang};
use crate::live_room::LiveRoom;
use crate::mentions::{insert, matching, query_at, Query};
use crate::model::Parts;
use crate::protocol::Member;
use crate::rules::name_fold;

/// The listbox's id, which the textarea's `aria-controls` names.
const LIST_ID: &str = "mention-list";
/// The composer's textarea, whose caret the picker reads.
#[cfg(feature = "hydrate")]
const TEXTAREA_ID: &str = "composer";

fn option_id(i: usize) -> String {
    format!("mention-option-{i}")
}

/// The picker's state; `Copy`, created by the composer.
#[derive(Clone, Copy)]
pub struct MentionPicker {
    text: RwSignal<String>,
    query: RwSignal<Option<Query>>,
    /// The `@` that Esc closed the list for: it stays closed until another `@`.
    dismissed: RwSignal<Option<usize>>,
    active: RwSignal<usize>,
    options: Memo<Vec<Member>>,
}

impl MentionPicker {
    /// A picker for the composer's `text`, offering `model`'s members (the reader aside).
    pub fn new(model: LiveRoom, text: RwSignal<String>) -> Self {
        let query = RwSignal::new(None::<Query>);
        let options = Memo::new(move |_| {
            query.with(|q| {
                let Some(q) = q else {
                    return Vec::new();
                };
                model.with(Parts::MEMBERS | Parts::ME, |m| {
                    let me = m.me.as_ref().map(|me| name_fold(&me.name));
                    let others: Vec<&Member> = m
                        .members
                        .iter()
                        .filter(|x| me.as_deref() != Some(name_fold(&x.name).as_str()))
                        .collect();
                    matching(others.iter().map(|x| x.name.as_str()), &q.text)
                        .into_iter()
                        .filter_map(|name| others.iter().find(|x| x.name == name))
                        .map(|x| (*x).clone())
                        .collect()
                })
            })
        });
        MentionPicker {
            text,
            query,
            dismissed: RwSignal::new(None),
            active: RwSignal::new(0),
            options,
        }
    }

    /// Is the list open (something typed after `@` matches a member)?
    pub fn is_open(&self) -> bool {
        self.options.with(|o| !o.is_empty())
    }

    /// After the text changed or the caret moved: opens, narrows or closes the list.
    pub fn refresh(&self) {
        let query = caret().and_then(|caret| self.text.with_untracked(|t| query_at(t, caret)));
        if query.is_none() {
            // Past the `@` that Esc closed: the next one opens the list again.
            self.dismissed.set(None);
        }
        let query = query.filter(|q| self.dismissed.get_untracked() != Some(q.at));
        if query != self.query.get_untracked() {
            self.active.set(0);
            self.query.set(query);
        }
    }

    /// Closes the list (the textarea lost focus).
    pub fn close(&self) {
        self.query.set(None);
    }

    /// Handles a key in the textarea while the list is open; true if it was the list's (the
    /// composer then does nothing with it: Enter picks instead of sending).
    pub fn keydown(&self, ev: &leptos::ev::KeyboardEvent) -> bool {
        let count = self.options.with_untracked(Vec::len);
        if count == 0 || ev.is_composing() || ev.alt_key() || ev.ctrl_key() || ev.meta_key() {
            return false;
        }
        let active = self.active.get_untracked().min(count - 1);
        match ev.key().as_str() {
            "ArrowDown" => self.active.set((active + 1) % count),
            "ArrowUp" => self.active.set((active + count - 1) % count),
            "Enter" | "Tab" if !ev.shift_key() => self.pick(active),
            "Escape" => {
                self.dismissed
                    .set(self.query.with_untracked(|q| q.as_ref().map(|q| q.at)));
                self.close();
            }
            _ => return false,
        }
        ev.prevent_default();
        true
    }

    /// Puts `@Name ` in place of what was typed after `@`, and the caret after it.
    fn pick(&self, index: usize) {
        let (Some(q), Some(member)) = (
            self.query.get_untracked(),
            self.options.with_untracked(|o| o.get(index).cloned()),
        ) else {
            return;
        };
        let caret = q.at + 1 + q.text.len();
        let (text, caret) = self
            .text
            .with_untracked(|t| insert(t, q.at, caret, &member.name));
        set_textarea(&text, caret);
        self.text.set(text);
        self.close();
    }

    /// The textarea's side of the list: its ARIA state, and the events that move the caret or end the list.
    /// A textarea may take neither the combobox role nor `aria-expanded` (ARIA in HTML).
    pub fn combobox(self) -> impl leptos::attr::Attribute {
        view! {
            <{..}
                aria-autocomplete="list"
                aria-controls=LIST_ID
                aria-activedescendant=move || {
                    self.is_open().then(|| option_id(self.active.get()))
                }
                on:click=move |_| self.refresh()
                on:keyup=move |ev: leptos::ev::KeyboardEvent| {
                    if matches!(ev.key().as_str(), "ArrowLeft" | "ArrowRight" | "Home" | "End") {
                        self.refresh();
                    }
                }
                on:blur=move |_| self.close()
            />
        }
    }
}

/// The list of members that match, above the composer.
#[component]
pub fn MentionList(picker: MentionPicker) -> impl IntoView {
    let lang = use_lang();
    let options = move || {
        picker
            .options
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let selected = move || picker.active.get() == i;
                view! {
                    <li
                        id=option_id(i)
                        role="option"
                        class="mention-option"
                        class:active=selected
                        data-testid="mention-option"
                        aria-selected=move || selected().to_string()
                        // Keeps the focus in the textarea.
                        on:mousedown=move |ev| {
                            ev.prevent_default();
                            picker.pick(i);
                        }
                        on:mousemove=move |_| {
                            if !selected() {
                                picker.active.set(i);
                            }
                        }
                    >
                        <img
                            src=avatar_url(&m.avatar)
                            alt={
                                let avatar = m.avatar.clone();
                                move || avatar_name(lang.get(), &avatar)
                            }
                            width="20"
                            height="20"
                        />
                        <span>{m.name.clone()}</span>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <ul
            id=LIST_ID
            class="mention-list"
            role="listbox"
            aria-label=t("members-to-mention")
            data-testid="mention-list"
            hidden=move || !picker.is_open()
        >
            {options}
        </ul>
    }
}

/// The caret in the composer's textarea, as a byte offset into its text.
fn caret() -> Option<usize> {
    #[cfg(feature = "hydrate")]
    {
        let el = textarea()?;
        let units = el.selection_start().ok()??;
        Some(crate::mentions::byte_offset(&el.value(), units as usize))
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

/// Writes `text` into the textarea at once, so that the caret can go to `caret` (a byte offset).
fn set_textarea(text: &str, caret: usize) {
    #[cfg(feature = "hydrate")]
    if let Some(el) = textarea() {
        el.set_value(text);
        let at = crate::mentions::utf16_offset(text, caret) as u32;
        let _ = el.set_selection_range(at, at);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, caret);
}

#[cfg(feature = "hydrate")]
fn textarea() -> Option<web_sys::HtmlTextAreaElement> {
    use wasm_bindgen::JsCast;
    document()
        .get_element_by_id(TEXTAREA_ID)?
        .dyn_into::<web_sys::HtmlTextAreaElement>()
        .ok()
}
