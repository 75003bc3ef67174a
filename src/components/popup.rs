//! What the page's small menus and panels share: focus on open, Esc and a press elsewhere close them.

use leptos::prelude::*;

/// Focuses the first field or button in `panel` whenever `track` changes (and when it opens).
pub fn focus_first_on(panel: NodeRef<leptos::html::Div>, track: impl Fn() + 'static) {
    Effect::new(move |_| {
        track();
        #[cfg(feature = "hydrate")]
        if let Some(el) = panel.get() {
            use wasm_bindgen::JsCast;
            let target = el.query_selector("input, select, [data-focus-first], button");
            if let Some(first) = target
                .ok()
                .flatten()
                .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = first.focus();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = panel;
    });
}

/// Calls `close` on a press outside `panel` and its `button` (which toggles it itself), while the calling view lives.
pub fn close_on_press_elsewhere(
    panel: NodeRef<leptos::html::Div>,
    button: NodeRef<leptos::html::Button>,
    close: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::pointerdown, move |ev| {
            use wasm_bindgen::JsCast;
            let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Node>().ok()) else {
                return;
            };
            let inside =
                |el: Option<web_sys::HtmlElement>| el.is_some_and(|el| el.contains(Some(&target)));
            let panel = panel.get_untracked().map(Into::into);
            let button = button.get_untracked().map(Into::into);
            if !inside(panel) && !inside(button) {
                close();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (panel, button, close);
}

/// Closes a popup and gives the focus back to the `button` that opened it.
pub fn close_to(open: RwSignal<bool>, button: NodeRef<leptos::html::Button>) {
    open.set(false);
    if let Some(b) = button.get_untracked() {
        let _ = b.focus();
    }
}

/// An Esc key handler that calls `close`.
pub fn on_escape(close: impl Fn() + 'static) -> impl Fn(leptos::ev::KeyboardEvent) + 'static {
    move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            ev.stop_propagation();
            close();
        }
    }
}

/// Moves the focus between the items of the `[role=menu]` in the handler's element with the
/// arrow keys, Home and End (wrapping around, skipping hidden items).
pub fn move_in_menu(ev: &leptos::ev::KeyboardEvent) {
    #[derive(Clone, Copy)]
    enum To {
        Next,
        Previous,
        First,
        Last,
    }
    let to = match ev.key().as_str() {
        "ArrowDown" => To::Next,
        "ArrowUp" => To::Previous,
        "Home" => To::First,
        "End" => To::Last,
        _ => return,
    };
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(menu) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|el| el.query_selector("[role=\"menu\"]").ok().flatten())
        else {
            return;
        };
        let active = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .filter(|a| a.parent_element().as_ref() == Some(&menu));
        let step = |el: &web_sys::Element, forward: bool| {
            if forward {
                el.next_element_sibling()
            } else {
                el.previous_element_sibling()
            }
        };
        let (mut at, forward) = match (to, active) {
            (To::Next, Some(a)) => (step(&a, true), true),
            (To::Previous, Some(a)) => (step(&a, false), false),
            (To::First | To::Next, _) => (menu.first_element_child(), true),
            (To::Last | To::Previous, _) => (menu.last_element_child(), false),
        };
        let mut wrapped = false;
        loop {
            match at {
                Some(el)
                    if el.get_attribute("role").as_deref() == Some("menuitem")
                        && !el.has_attribute("hidden") =>
                {
                    ev.prevent_default();
                    if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                        let _ = el.focus();
                    }
                    return;
                }
                Some(el) => at = step(&el, forward),
                None if !wrapped => {
                    wrapped = true;
                    at = if forward {
                        menu.first_element_child()
                    } else {
                        menu.last_element_child()
                    };
                }
                None => return,
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = to;
}
