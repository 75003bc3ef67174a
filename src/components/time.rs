//! Message times: UTC on the server's first paint, the reader's local time once hydrated.
//!
//! The browser formats them with `Intl.DateTimeFormat` in the page's language.

use jiff::tz::Offset;
use leptos::prelude::*;

use super::Hydrated;
use crate::i18n::{use_lang, Lang};
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

/// The time of day in the browser's time zone, as `lang` writes it (UTC `HH:MM` where there is no browser).
pub fn local_hhmm(ts: Timestamp, lang: Lang) -> String {
    #[cfg(feature = "hydrate")]
    {
        intl_format(ts, lang, false).unwrap_or_else(|| utc_hhmm(ts))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = lang;
        utc_hhmm(ts)
    }
}

/// A moment for the reader: the time within the next 20 hours of `now`, else with its date too.
pub fn local_when(ts: Timestamp, now: Timestamp, lang: Lang) -> String {
    if ts.saturating_sub(now) < 20 * 3_600_000 {
        return local_hhmm(ts, lang);
    }
    #[cfg(feature = "hydrate")]
    {
        intl_format(ts, lang, true).unwrap_or_else(|| iso_utc(ts))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        iso_utc(ts)
    }
}

/// `Intl.DateTimeFormat` in `lang` and the browser's time zone: hours and minutes, with the date too if `date`.
#[cfg(feature = "hydrate")]
fn intl_format(ts: Timestamp, lang: Lang, date: bool) -> Option<String> {
    use wasm_bindgen::JsValue;
    let format = formatter(lang, date)?;
    let when = js_sys::Date::new(&JsValue::from_f64(ts as f64));
    format
        .format()
        .call1(&format, &when)
        .ok()
        .and_then(|s| s.as_string())
}

/// One formatter per language and kind, made once: making one is the costliest step of a
/// page's hydration (62 ms of a chat's first load with 4× CPU throttling, made per message).
#[cfg(feature = "hydrate")]
fn formatter(lang: Lang, date: bool) -> Option<js_sys::Intl::DateTimeFormat> {
    use std::cell::RefCell;
    use wasm_bindgen::JsValue;
    thread_local! {
        static MADE: RefCell<Vec<(Lang, bool, js_sys::Intl::DateTimeFormat)>> = const { RefCell::new(Vec::new()) };
    }
    if let Some(made) = MADE.with_borrow(|m| {
        m.iter()
            .find(|(l, d, _)| *l == lang && *d == date)
            .map(|(_, _, f)| f.clone())
    }) {
        return Some(made);
    }
    let options = js_sys::Object::new();
    let set = |k: &str, v: &str| js_sys::Reflect::set(&options, &k.into(), &v.into()).ok();
    set("hour", "2-digit")?;
    set("minute", "2-digit")?;
    // A 24-hour clock in both languages (as the chat has always shown times).
    set("hourCycle", "h23")?;
    if date {
        set("year", "numeric")?;
        set("month", "short")?;
        set("day", "numeric")?;
    }
    let locales = js_sys::Array::of1(&JsValue::from_str(lang.tag()));
    let format = js_sys::Intl::DateTimeFormat::new(&locales, &options);
    MADE.with_borrow_mut(|m| m.push((lang, date, format.clone())));
    Some(format)
}

#[component]
pub fn MessageTime(ts: Timestamp) -> impl IntoView {
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let lang = use_lang();
    let text = move || {
        if hydrated.is_some_and(|h| h.get()) {
            local_hhmm(ts, lang.get())
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
