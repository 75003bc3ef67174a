//! The live status page `/status`: connections, rooms and message rate over the last minutes, redrawn every second.

use leptos::prelude::*;

use crate::api::load_status;
use crate::i18n::{t, tr, use_lang, Text};
use crate::protocol::pages::{StatusSample, StatusSnapshot};

/// Width and height of a chart's drawing, in SVG units.
const W: f64 = 600.0;
const H: f64 = 120.0;

/// The status page, from its own WASM chunk (the chat never loads it).
#[lazy]
pub fn lazy_status_page() -> AnyView {
    view! { <ServerStatusPage /> }.into_any()
}

#[component]
pub fn ServerStatusPage() -> impl IntoView {
    // Server-rendered first paint; then the browser asks again every second.
    let first = Resource::new(|| (), |_| load_status());
    let live = RwSignal::new(None::<StatusSnapshot>);
    let failed = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    poll(live, failed);
    view! {
        <main class="status-page">
            <h1>{t("status-heading")}</h1>
            <Suspense fallback=|| {
                view! { <p>{t("loading")}</p> }
            }>
                {move || Suspend::new(async move {
                    let first = first.await;
                    let current = move || live.get().or_else(|| first.clone().ok());
                    view! {
                        <Show when=move || failed.get()>
                            <p class="status-error" role="alert">
                                {t("status-stale")}
                            </p>
                        </Show>
                        {move || match current() {
                            Some(s) => view! { <StatusView snap=s /> }.into_any(),
                            None => view! { <p>{t("status-none")}</p> }.into_any(),
                        }}
                    }
                })}
            </Suspense>
        </main>
    }
}

/// Asks for fresh figures every second while the page is open.
#[cfg(feature = "hydrate")]
fn poll(live: RwSignal<Option<StatusSnapshot>>, failed: RwSignal<bool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let open = Arc::new(AtomicBool::new(true));
    let still_open = open.clone();
    on_cleanup(move || open.store(false, Ordering::Relaxed));
    leptos::task::spawn_local(async move {
        while still_open.load(Ordering::Relaxed) {
            gloo_timers::future::TimeoutFuture::new(1_000).await;
            if !still_open.load(Ordering::Relaxed) {
                break;
            }
            match load_status().await {
                Ok(s) => {
                    live.set(Some(s));
                    failed.set(false);
                }
                Err(_) => failed.set(true),
            }
        }
    });
}

#[component]
fn StatusView(snap: StatusSnapshot) -> impl IntoView {
    let last = snap.samples.last().cloned();
    let figure = |f: fn(&StatusSample) -> f64| last.as_ref().map(f).unwrap_or(0.0);
    let connections = figure(|s| s.connections as f64);
    let rooms = figure(|s| s.rooms as f64);
    let members = figure(|s| s.members as f64);
    let rate = figure(|s| s.messages_per_sec);
    let uptime = format_uptime(snap.uptime_secs);
    let lang = use_lang();
    let meta = Text::new("status-meta")
        .arg("version", snap.version.clone())
        .arg("uptime", uptime);
    let rooms_value = Text::new("status-rooms-value")
        .arg("rooms", format!("{rooms:.0}"))
        .arg("members", members as i64);
    view! {
        <p class="status-meta">{move || meta.render(lang.get())}</p>
        <Chart
            title="status-connections"
            testid="connections"
            value=format!("{connections:.0}").into()
            points=series(&snap.samples, |s| s.connections as f64)
        />
        <Chart
            title="status-rooms"
            testid="rooms"
            value=Signal::derive(move || rooms_value.render(lang.get()))
            points=series(&snap.samples, |s| s.rooms as f64)
        />
        <Chart
            title="status-messages"
            testid="messages"
            value=format!("{rate:.1}").into()
            points=series(&snap.samples, |s| s.messages_per_sec)
        />
    }
}

fn series(samples: &[StatusSample], f: fn(&StatusSample) -> f64) -> Vec<f64> {
    samples.iter().map(f).collect()
}

/// One figure: its current value and a line of the samples, oldest left, scaled to the highest.
#[component]
fn Chart(
    title: &'static str,
    testid: &'static str,
    value: Signal<String>,
    points: Vec<f64>,
) -> impl IntoView {
    let lang = use_lang();
    let count = points.len() as i64;
    let line = polyline(&points);
    let top = points.iter().cloned().fold(0.0, f64::max);
    view! {
        <section class="status-chart" data-testid=format!("status-{testid}")>
            <h2>
                {t(title)} ": " <span class="status-value" data-testid="value">
                    {value}
                </span>
            </h2>
            <svg
                viewBox=format!("0 0 {W} {H}")
                preserveAspectRatio="none"
                role="img"
                aria-label=move || {
                    let args = [
                        ("title", tr(lang.get(), title, &[]).into()),
                        ("count", count.into()),
                        ("top", format!("{top:.1}").into()),
                    ];
                    tr(lang.get(), "status-chart", &args)
                }
            >
                <polyline points=line fill="none" stroke="currentColor" stroke-width="2" />
            </svg>
        </section>
    }
}

/// SVG points for `values`, spread over the width and scaled so that the highest touches the top.
fn polyline(values: &[f64]) -> String {
    let top = values.iter().cloned().fold(0.0, f64::max).max(1.0);
    let step = if values.len() > 1 {
        W / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                H - v / top * (H - 4.0) - 2.0
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn format_uptime(secs: u64) -> Text {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match secs {
        s if s < 60 => Text::new("uptime-s").arg("s", n(s)),
        s if s < 3600 => Text::new("uptime-min").arg("min", n(s / 60)),
        s => Text::new("uptime-h")
            .arg("h", n(s / 3600))
            .arg("min", n(s % 3600 / 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_spans_the_chart_and_peaks_at_the_top() {
        assert_eq!(
            polyline(&[0.0, 5.0, 10.0]),
            "0.0,118.0 300.0,60.0 600.0,2.0"
        );
        assert_eq!(polyline(&[]), "");
        assert_eq!(polyline(&[0.0]), "0.0,118.0");
    }

    #[test]
    fn uptime_reads_naturally() {
        assert_eq!(format_uptime(42), "42 s");
        assert_eq!(format_uptime(3 * 3600 + 120), "3 h 2 min");
    }
}
