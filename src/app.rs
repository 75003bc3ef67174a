//! The HTML shell and the root `App` component, which shows the page its address names.
//!
//! `/` is the default room, `/r/<room>` any room, `/status` the server's figures (`address::Page`).

use leptos::prelude::*;

use crate::address::Page;
use crate::components::room_page::RoomPage;
use crate::components::server_status::lazy_status_page;
use crate::components::{lazy_view, Hydrated};
use crate::i18n::{initial_lang, provide_language, t, tr, use_lang};

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    let lang = initial_lang();
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <meta charset="utf-8" />
                <title>{Page::current().title(lang)}</title>
                // The layout shrinks above a phone's on-screen keyboard, keeping the composer in view.
                <meta
                    name="viewport"
                    content="width=device-width, initial-scale=1, interactive-widget=resizes-content"
                />
                <meta name="description" content=tr(lang, "meta-description", &[]) />
                <meta name="theme-color" content="#4f5bd5" />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="icon" href="/avatars/fox.svg" type="image/svg+xml" />
                // Under `site_pkg_dir` (`pkg/<hash>` in embedded release builds); cargo-leptos reloads CSS by this id.
                <link rel="stylesheet" id="leptos" href=options.css_path() />
                <AutoReload options=options.clone() />
                {hydration_script(&options)}
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The script that starts the WASM once the page has loaded and painted; in a background tab,
/// which draws no frames, as soon as it has loaded (or is hidden).
///
/// Painted means the second frame has begun: a task queued from the first frame's callback ran
/// before that frame reached the screen (`weight.spec.ts` caught the WASM asked for 20 ms
/// before the first contentful paint).
///
/// Unlike leptos's `HydrationScripts` it preloads nothing: a preloaded module competes with the
/// HTML and CSS and, on a slow link, holds back the largest paint (Lighthouse counted the 455 KB
/// WASM in the join view's LCP: 3.5 s). The page is readable and its join form works as a plain
/// form before the WASM arrives; lazily loaded views fetch their chunks from `hydrate()`.
fn hydration_script(options: &LeptosOptions) -> impl IntoView {
    let pkg = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    // Named like the JS unless built outside cargo-leptos (wasm-bindgen's own `_bg` suffix).
    let wasm = if option_env!("LEPTOS_OUTPUT_NAME").is_some() {
        format!("{pkg}.wasm")
    } else {
        format!("{pkg}_bg.wasm")
    };
    let script = format!(
        "(function(js,wasm){{let started=false;\
         const go=()=>{{if(started)return;started=true;import(js).then(m=>m.default({{module_or_path:wasm}}).then(()=>m.hydrate()));}};\
         const later=()=>{{if(document.hidden)return go();requestAnimationFrame(()=>requestAnimationFrame(()=>setTimeout(go,0)));\
         addEventListener('visibilitychange',()=>{{if(document.hidden)go();}});}};\
         if(document.readyState==='complete')later();else addEventListener('load',later,{{once:true}});}})({:?},{:?});",
        format!("{pkg}.js"),
        wasm
    );
    view! {
        <script type="module" nonce=leptos::nonce::use_nonce()>
            {script}
        </script>
    }
}

/// Sets the page's Content-Security-Policy: the hydration script runs by this response's nonce.
#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) else {
        return;
    };
    // HTTP/2 names the host in the request's authority, HTTP/1.1 in `Host`.
    let host = use_context::<http::request::Parts>().and_then(|p| {
        p.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| p.uri.authority().map(|a| a.as_str().to_owned()))
    });
    let csp = crate::server::http::headers::page_csp(&nonce, host.as_deref());
    if let Ok(value) = http::HeaderValue::from_str(&csp) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_language();
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, after hydration. The switch waits for a task of its own:
    // the browser's first date formatter is slow to make (56 ms of a chat's first load at 4×
    // CPU throttling), and hydration is one long task already.
    Effect::new(move |_| set_timeout(move || set_hydrated.set(true), Default::default()));
    provide_context(Hydrated(hydrated));

    match Page::current() {
        Page::Room(_) => view! { <RoomPage /> }.into_any(),
        Page::Status => lazy_view(lazy_status_page()).into_any(),
        Page::NotFound => view! { <NotFound /> }.into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    let lang = use_lang();
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page-message">
            <h1>{t("not-found-heading")}</h1>
            <p>
                {move || tr(lang.get(), "not-found-text", &[("path", "/r/<room>".into())])} " "
                <a href="/">{t("go-to-lobby")}</a>
            </p>
        </main>
    }
}
