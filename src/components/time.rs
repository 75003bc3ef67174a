//! Message times: UTC on the server's first paint, the reader's local HH:MM once hydrated.

use jiff::tz::Offset;
use leptos::prelude::*;

use super::Hydrated;
use crate::protocol::Timestamp;

/// `HH:MM` in UTC.
pub fn utc_hhmm(ts: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(ts)
        .map(|t| {
            let t = Offset::UTC.to_datetime(t);
            format!("{:02}:{:02}", t.hour(), t.minute())
        })
        .unwrap_or_default()
}

/// ISO-8601 UTC, for the `datetime` attribute.
pub fn iso_utc(ts: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(ts)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// `HH:MM` in the browser's time zone (UTC where there is no browser).
pub fn local_hhmm(ts: Timestamp) -> String {
    #[cfg(feature = "hydrate")]
    {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
        format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        utc_hhmm(ts)
    }
}

/// A moment for the reader: `HH:MM` within the next 20 hours of `now`, else with its date too.
pub fn local_when(ts: Timestamp, now: Timestamp) -> String {
    if ts.saturating_sub(now) < 20 * 3_600_000 {
        return local_hhmm(ts);
    }
    #[cfg(feature = "hydrate")]
    {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
        let day = format!(
            "{}-{:02}-{:02}",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date()
        );
        format!("{day} {}", local_hhmm(ts))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        iso_utc(ts)
    }
}

#[component]
pub fn MessageTime(ts: Timestamp) -> impl IntoView {
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let text = move || {
        if hydrated.is_some_and(|h| h.get()) {
            local_hhmm(ts)
        } else {
            utc_hhmm(ts)
        }
    };
    view! {
        <time data-testid="message-time" datetime=iso_utc(ts) title=iso_utc(ts)>
            {text}
        </time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        // 2023-11-14T22:13:20Z
        assert_eq!(utc_hhmm(1_700_000_000_000), "22:13");
        assert_eq!(iso_utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso_utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_hhmm(-60_000), "23:59");
    }
}
