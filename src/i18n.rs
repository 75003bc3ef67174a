//! The UI's words in English and Simplified Chinese, from the Fluent catalogues in `locales/` (compiled by `build.rs`).
//!
//! The server picks the language of its first render from the `lang` cookie, else from
//! `Accept-Language` (English when neither names a language we have), and writes it into
//! `<html lang>`; the browser reads it back from there when it hydrates, so both render the same
//! words. [`Text`] is a message key with its arguments, kept by the model and put into words
//! only when shown, so that switching the language rewords what is already on the page.

use std::borrow::Cow;

use leptos::prelude::*;

use crate::protocol::ErrorCode;

/// The cookie that remembers the reader's choice (`en` or `zh`).
pub const COOKIE: &str = "lang";

/// A language the UI speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The BCP 47 tag for `<html lang>` and `Intl`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The cookie's and the switch's value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The language's own name, as the switch lists it.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    /// The language a tag or code names (`zh`, `zh-CN`, `zh-Hans-CN`, `en-GB`), if we have it.
    /// Traditional Chinese (`zh-TW`, `zh-HK`, `zh-Hant`) is not ours.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut parts = tag.split(['-', '_']);
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let traditional = parts.any(|p| matches!(p, "hant" | "tw" | "hk" | "mo"));
                (!traditional).then_some(Lang::Zh)
            }
            _ => None,
        }
    }

    /// The best language of an `Accept-Language` header by its q-values (English if none fits).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',') {
            let mut fields = item.split(';');
            let Some(lang) = fields.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    /// The language a `Cookie` header's `lang` names, if any.
    pub fn from_cookie_header(header: &str) -> Option<Lang> {
        header
            .split(';')
            .find_map(|pair| pair.trim().strip_prefix("lang="))
            .and_then(Lang::from_tag)
    }

    /// The language for a request: its cookie, else its `Accept-Language`.
    pub fn for_request(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        cookie
            .and_then(Lang::from_cookie_header)
            .unwrap_or_else(|| {
                accept_language
                    .map(Lang::from_accept_language)
                    .unwrap_or_default()
            })
    }

    /// The CLDR cardinal plural category of the whole number `n` (English: "1 person", "2 people";
    /// Chinese has one form).
    pub fn plural(self, n: i64) -> &'static str {
        match self {
            Lang::En if n.unsigned_abs() == 1 => "one",
            _ => "other",
        }
    }
}

/// The catalogues, compiled by `build.rs`: each language's messages, `key KEY_END body`, sorted
/// by key and joined by `ENTRY`.
mod catalogue {
    include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));
}

use catalogue::{ARG, END, ENTRY, KEY_END, SELECT, SELECT_END, VARIANT};

/// `lang`'s messages, by key (indexed the first time they are asked for).
fn messages(lang: Lang) -> &'static [(&'static str, &'static str)] {
    use std::sync::OnceLock;
    static INDEX: [OnceLock<Vec<(&str, &str)>>; 2] = [OnceLock::new(), OnceLock::new()];
    let (i, compiled) = match lang {
        Lang::En => (0, catalogue::EN),
        Lang::Zh => (1, catalogue::ZH),
    };
    INDEX[i].get_or_init(|| {
        compiled
            .split(ENTRY)
            .filter_map(|entry| entry.split_once(KEY_END))
            .collect()
    })
}

/// The message `key` in `lang` with `args`; English where `lang` lacks it, the key where both do.
pub fn tr(lang: Lang, key: &str, args: &[(&str, Value<'_>)]) -> String {
    for l in [lang, Lang::En] {
        let table = messages(l);
        if let Ok(i) = table.binary_search_by(|(k, _)| (*k).cmp(key)) {
            let mut out = String::new();
            Args(args).write_pattern(table[i].1, l, Some(&mut out));
            return out;
        }
    }
    // A key neither catalogue has (a newer server's code): the server's own words, if it sent any.
    args.iter()
        .find(|(name, _)| *name == "server")
        .map(|(_, v)| match v {
            Value::Str(s) => s.to_string(),
            Value::Num(_) => key.to_string(),
        })
        .unwrap_or_else(|| key.to_string())
}

/// An argument's value as a message reads it: words, or a whole number (which picks plural forms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Num(i64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}
impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Num(n)
    }
}

/// One message's arguments, as the compiled catalogue reads them.
struct Args<'a>(&'a [(&'a str, Value<'a>)]);

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&Value<'_>> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Writes the argument `name` (`{$name}` if it is missing, as Fluent does).
    fn write(&self, name: &str, o: &mut String) {
        match self.get(name) {
            Some(Value::Str(s)) => o.push_str(s),
            Some(Value::Num(n)) => o.push_str(&n.to_string()),
            None => {
                o.push_str("{$");
                o.push_str(name);
                o.push('}');
            }
        }
    }

    /// Writes the compiled `pattern` to `out` (or only reads it, if `None`) up to the end of
    /// its variant or of the whole; returns how many bytes it read.
    fn write_pattern(&self, pattern: &str, lang: Lang, mut out: Option<&mut String>) -> usize {
        let mut at = 0;
        // The marks are ASCII: one byte each.
        while let Some(offset) = pattern[at..].find([ARG, SELECT, VARIANT, SELECT_END]) {
            if let Some(out) = out.as_deref_mut() {
                out.push_str(&pattern[at..at + offset]);
            }
            at += offset;
            let mark = pattern.as_bytes()[at];
            if mark == VARIANT as u8 || mark == SELECT_END as u8 {
                return at;
            }
            let name = pattern[at + 1..].split(END).next().unwrap_or_default();
            at += 1 + name.len() + 1;
            if mark == ARG as u8 {
                if let Some(out) = out.as_deref_mut() {
                    self.write(name, out);
                }
                continue;
            }
            // A selection: where each variant's pattern starts, then the chosen one.
            let mut variants = Vec::new();
            while pattern[at..].starts_with(VARIANT) {
                let key = pattern[at + 1..].split(END).next().unwrap_or_default();
                let start = at + 1 + key.len() + 1;
                variants.push((key, start));
                at = start + self.write_pattern(&pattern[start..], lang, None);
            }
            at += 1; // SELECT_END
            let keys = variants.iter().map(|(key, _)| key.trim_start_matches('*'));
            let chosen = self
                .pick(name, lang, keys)
                .or_else(|| variants.iter().position(|(key, _)| key.starts_with('*')));
            if let (Some(out), Some((_, start))) =
                (out.as_deref_mut(), chosen.and_then(|i| variants.get(i)))
            {
                self.write_pattern(&pattern[*start..], lang, Some(out));
            }
        }
        if let Some(out) = out {
            out.push_str(&pattern[at..]);
        }
        pattern.len()
    }

    /// The first of `keys` that the argument `name` matches, as Fluent selects: a number its own
    /// value or its plural category in `lang`, words the same word. None: the default variant.
    fn pick<'k>(
        &self,
        name: &str,
        lang: Lang,
        keys: impl Iterator<Item = &'k str>,
    ) -> Option<usize> {
        let value = self.get(name)?;
        let mut keys = keys;
        keys.position(|key| match (key.parse::<i64>(), value) {
            (Ok(k), Value::Num(n)) => k == *n,
            (Err(_), Value::Num(n)) => key == lang.plural(*n),
            (Err(_), Value::Str(s)) => key == s,
            (Ok(_), Value::Str(_)) => false,
        })
    }
}

/// A message's argument: words, a number (which picks plural forms), or another message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Str(String),
    Num(i64),
    Text(Text),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Str(s.to_string())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Str(s)
    }
}
impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Num(n)
    }
}
impl From<Text> for Arg {
    fn from(t: Text) -> Self {
        Arg::Text(t)
    }
}

/// Words to show, by key: put into the reader's language when shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub key: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

impl Text {
    pub fn new(key: &'static str) -> Self {
        Text {
            key,
            args: Vec::new(),
        }
    }

    /// Adds the argument `name`.
    pub fn arg(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    /// Words that are not ours to translate (a server's sentence, a moderator's reason).
    pub fn raw(text: impl Into<String>) -> Self {
        Text::new("raw").arg("text", text.into())
    }

    /// The words in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        let args: Vec<(&str, Value<'_>)> = self
            .args
            .iter()
            .map(|(name, arg)| {
                let value = match arg {
                    Arg::Str(s) => Value::from(s.as_str()),
                    Arg::Num(n) => Value::Num(*n),
                    Arg::Text(t) => Value::from(t.render(lang)),
                };
                (*name, value)
            })
            .collect();
        tr(lang, self.key, &args)
    }
}

/// English, for logs and tests.
impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

/// Compares the English words (tests read what an English reader sees).
impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.render(Lang::En) == *other
    }
}
impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.render(Lang::En) == other
    }
}

/// The words for a server's error, by its code (the server's English sentence rides along as
/// `$server`, for a catalogue that has no better words).
pub fn error_text(code: ErrorCode, message: String) -> Text {
    let key = match code {
        ErrorCode::BadJson
        | ErrorCode::UnknownType
        | ErrorCode::BadFrame
        | ErrorCode::BinaryFrame
        | ErrorCode::InvalidClientId
        | ErrorCode::BadRequest => "error-bad-request",
        ErrorCode::NotJoined | ErrorCode::SessionInvalid => "error-session-invalid",
        ErrorCode::AlreadyJoined => "error-already-joined",
        ErrorCode::NameTaken => "error-name-taken",
        ErrorCode::RoomFull => "error-room-full",
        ErrorCode::EmptyMessage => "error-empty-message",
        ErrorCode::MessageTooLong => "error-message-too-long",
        ErrorCode::InvalidText => "error-invalid-text",
        ErrorCode::StorageFailed => "error-storage-failed",
        ErrorCode::Busy => "error-busy",
        ErrorCode::RateLimited => "error-rate-limited",
        ErrorCode::NotAuthor => "error-not-author",
        ErrorCode::NoSuchMessage => "error-no-such-message",
        ErrorCode::InvalidEmoji => "error-invalid-emoji",
        ErrorCode::TooManyReactions => "error-too-many-reactions",
        ErrorCode::NotModerator => "error-not-moderator",
        ErrorCode::NoSuchMember => "error-no-such-member",
        ErrorCode::Muted => "error-muted",
        ErrorCode::Locked => "error-locked",
        ErrorCode::Banned => "error-banned",
        ErrorCode::InvalidToken => "error-invalid-token",
        ErrorCode::SlowMode => "error-slow-mode",
    };
    Text::new(key).arg("server", message)
}

/// The page's language, switchable without a reload.
#[derive(Clone, Copy)]
pub struct Language(pub RwSignal<Lang>);

/// Provides the page's language: the request's on the server, `<html lang>`'s in the browser.
pub fn provide_language() -> Language {
    let language = Language(RwSignal::new(initial_lang()));
    provide_context(language);
    language
}

/// The page's language (English outside a page).
pub fn use_lang() -> Signal<Lang> {
    match use_context::<Language>() {
        Some(l) => l.0.into(),
        None => Signal::stored(Lang::En),
    }
}

/// The words of `key` in the page's language, following a switch.
pub fn t(key: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || tr(lang.get(), key, &[])
}

/// The language this render starts in.
pub fn initial_lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        request_lang()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|tag| Lang::from_tag(&tag))
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::En
    }
}

/// The current request's language (English outside a request).
#[cfg(feature = "ssr")]
pub fn request_lang() -> Lang {
    let Some(parts) = use_context::<http::request::Parts>() else {
        return Lang::En;
    };
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    Lang::for_request(
        header(http::header::COOKIE),
        header(http::header::ACCEPT_LANGUAGE),
    )
}

/// Switches the page to `lang`: its words now, `<html lang>`, and the cookie for the next visit.
pub fn switch_to(language: Language, lang: Lang) {
    language.0.set(lang);
    #[cfg(feature = "hydrate")]
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        if let Some(root) = doc.document_element() {
            let _ = root.set_attribute("lang", lang.tag());
        }
        let cookie = format!(
            "{COOKIE}={}; path=/; max-age=31536000; samesite=lax",
            lang.code()
        );
        let _ = js_sys::Reflect::set(&doc, &"cookie".into(), &cookie.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,zh;q=0.8"),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language("fr;q=1, zh-Hans;q=0.5"),
            Lang::Zh
        );
        assert_eq!(Lang::from_accept_language("fr, de"), Lang::En);
        assert_eq!(Lang::from_accept_language("zh-TW"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn the_cookie_wins_over_the_header() {
        assert_eq!(
            Lang::for_request(Some("a=1; lang=zh"), Some("en")),
            Lang::Zh
        );
        assert_eq!(Lang::for_request(Some("lang=en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::for_request(Some("lang=xx"), Some("zh-CN")), Lang::Zh);
        assert_eq!(Lang::for_request(None, None), Lang::En);
    }

    #[test]
    fn plurals_follow_each_language() {
        let typing = |n: i64| Text::new("typing-many").arg("count", n);
        assert_eq!(typing(1).render(Lang::En), "1 person is typing…");
        assert_eq!(typing(3).render(Lang::En), "3 people are typing…");
        assert_eq!(typing(3).render(Lang::Zh), "3 人正在输入…");
    }

    #[test]
    fn missing_keys_fall_back_to_english_then_the_key() {
        assert_eq!(tr(Lang::Zh, "no-such-key", &[]), "no-such-key");
        assert_eq!(Text::raw("as said").render(Lang::Zh), "as said");
    }
}
