//! The smallest hydrated Leptos 0.8 app with the router and meta tags: a form and a counter on one route.

use leptos::prelude::*;
use leptos_meta::*;
use leptos_router::{components::{Route, Router, Routes}, path};

#[component]
fn FormAndCounter() -> impl IntoView {
    let (count, set_count) = signal(0);
    view! {
        <form>
            <input type="text" name="name"/>
            <label><input type="radio" name="choice" value="a"/>"A"</label>
            <label><input type="radio" name="choice" value="b"/>"B"</label>
            <label><input type="radio" name="choice" value="c"/>"C"</label>
            <select name="pick">
                <option value="1">"One"</option>
                <option value="2">"Two"</option>
            </select>
        </form>
        <button on:click=move |_| set_count.update(|n| *n += 1)>"Count: " {count}</button>
    }
}

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
