//! The smallest hydrated Leptos 0.8 app: a form and a counter, without router or meta tags.

use leptos::prelude::*;

include!("../../form.rs");
form_and_counter!(component);

#[component]
pub fn App() -> impl IntoView {
    view! { <main><FormAndCounter/></main> }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(App);
}
