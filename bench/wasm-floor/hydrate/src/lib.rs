//! The smallest hydrated Leptos 0.8 app with the router and meta tags: a form and a counter on one route.

use leptos::prelude::*;
use leptos_meta::*;
use leptos_router::{components::{Route, Router, Routes}, path};

include!("../../form.rs");
form_and_counter!(component);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="probe"/>
        <Router>
            <main>
                <Routes fallback=|| "Not found">
                    <Route path=path!("/") view=FormAndCounter/>
                </Routes>
            </main>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(App);
}
