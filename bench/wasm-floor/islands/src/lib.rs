//! The smallest Leptos 0.8 islands app: a static page with the form and counter as one island.

use leptos::prelude::*;

include!("../../form.rs");
form_and_counter!(island);

#[component]
pub fn App() -> impl IntoView {
    view! { <main><h1>"Static page"</h1><p>"Server-only text."</p><FormAndCounter/></main> }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
}
