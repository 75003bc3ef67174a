//! The HTML shell and the root `App` component with its routes: `/` is the default room, `/r/<room>` any room, `/status` the server's figures.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::room_page::RoomPage;
use crate::components::server_status::ServerStatusPage;

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/avatars/fox.svg" type="image/svg+xml" />
                // Under `site_pkg_dir` (`pkg/<hash>` in embedded release builds); cargo-leptos reloads CSS by this id.
                <link rel="stylesheet" id="leptos" href=options.css_path() />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// True once the browser has hydrated the page: lets views switch from server-safe to browser-only rendering (e.g. local time).
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| set_hydrated.set(true));
    provide_context(Hydrated(hydrated));

    view! {
        <Title text="Chat" />
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=path!("/") view=RoomPage />
                <Route path=path!("/r/:room") view=RoomPage />
                <Route path=path!("/status") view=ServerStatusPage />
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page-message">
            <h1>"Page not found"</h1>
            <p>
                "Rooms live at " <code>"/r/<room>"</code> ". " <a href="/">"Go to the lobby"</a>
            </p>
        </main>
    }
}
