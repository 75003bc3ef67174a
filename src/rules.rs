//! Validation rules for names, rooms and message text, enforced by the server and checked early by the browser.
//!
//! One definition for both sides.

use thiserror::Error;

use crate::i18n::Text;

/// Longest display name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;
/// The room served at `/`.
pub const DEFAULT_ROOM: &str = "lobby";
/// Default longest message, in characters (the server's limit is configurable and sent to the browser).
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 2000;
/// Longest client-generated message id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Why a display name was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("Name must be 1–{MAX_NAME_CHARS} characters")]
    Length,
    #[error("Name must not contain control or invisible characters")]
    Characters,
    #[error("Name mixes alphabets that look alike (such as Latin with Cyrillic letters); use one")]
    MixedScripts,
}

/// Why a room name was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RoomError {
    #[error("Room names are 1–{MAX_ROOM_CHARS} characters of a–z, 0–9 and -")]
    Invalid,
}

/// Why a message text was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("Message is empty")]
    Empty,
    #[error("Message is longer than {max} characters")]
    TooLong { max: usize },
    #[error("Message contains control characters")]
    Characters,
}

impl NameError {
    /// The words for the reader.
    pub fn text(&self) -> Text {
        match self {
            NameError::Length => Text::new("join-name-length").arg("max", MAX_NAME_CHARS as i64),
            NameError::Characters => Text::new("join-name-invisible"),
            NameError::MixedScripts => Text::new("join-name-mixed-scripts"),
        }
    }
}

impl RoomError {
    /// The words for the reader.
    pub fn text(&self) -> Text {
        Text::new("join-room-name").arg("max", MAX_ROOM_CHARS as i64)
    }
}

impl TextError {
    /// The words for the reader.
    pub fn text(&self) -> Text {
        match self {
            TextError::Empty => Text::new("text-empty"),
            TextError::TooLong { max } => Text::new("text-too-long").arg("max", *max as i64),
            TextError::Characters => Text::new("text-control"),
        }
    }
}

/// Characters that render as nothing or reorder text: allowed nowhere in names, since they let one name pose as another.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// Checks a display name and returns it trimmed.
pub fn validate_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_CHARS {
        return Err(NameError::Length);
    }
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(NameError::Characters);
    }
    if mixes_lookalike_scripts(name) {
        return Err(NameError::MixedScripts);
    }
    Ok(name.to_string())
}

/// Does `name` mix scripts beyond Unicode TS #39's "moderately restrictive" level? Latin may
/// go with Han, Japanese or Korean, or with one other script that is neither Cyrillic nor
/// Greek (whose letters pose as Latin ones); digits, spaces and symbols go with any.
fn mixes_lookalike_scripts(name: &str) -> bool {
    use unicode_script::Script;
    use unicode_security::mixed_script::AugmentedScriptSet;
    let mut all = AugmentedScriptSet::default();
    let mut not_latin = AugmentedScriptSet::default();
    for c in name.chars() {
        let set = AugmentedScriptSet::for_char(c);
        all.intersect_with(set);
        if !set.base.contains_script(Script::Latin) {
            not_latin.intersect_with(set);
        }
    }
    if !all.is_empty() || not_latin.hanb || not_latin.jpan || not_latin.kore {
        return false;
    }
    let mut others = not_latin.base.iter();
    match (others.next(), others.next()) {
        (Some(one), None) => matches!(one, Script::Cyrillic | Script::Greek),
        _ => true,
    }
}

/// How the page tells names apart: case folded and trimmed (`aLICE` is `Alice`). Both sides match
/// mentions and recognise the reader's own name by it, so the server's first paint and the
/// hydrated page agree. The server keeps names unique by the stricter [`name_key`], which folds
/// lookalikes too; its Unicode tables (80 KB of brotli WASM, measured) stay out of the browser.
pub fn name_fold(name: &str) -> String {
    lowercase(name.trim())
}

/// Unicode's lower case of `text`. In the browser it is the browser's own `toLowerCase` (the same
/// mapping), so the page does not carry Rust's case tables (10 KB of the first load's brotli WASM,
/// measured).
pub fn lowercase(text: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        js_sys::JsString::from(text).to_lower_case().into()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        text.to_lowercase()
    }
}

/// A character that continues a word: a letter, digit, combining mark or `_`. In the browser
/// the browser's own Unicode tables answer (`\p{Alphabetic}`, `\p{N}`, `\p{M}`: the same
/// properties), so the page does not carry Rust's tables (9 KB of the first load's brotli
/// WASM, measured).
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static WORD: js_sys::RegExp = js_sys::RegExp::new(r"^[\p{Alphabetic}\p{N}\p{M}]$", "u");
        }
        WORD.with(|word| word.test(c.encode_utf8(&mut [0; 4])))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c)
    }
}

/// The key under which a name is unique in a room: names that look alike collide. Compatibility
/// forms are folded (NFKC: `Ａｎｎ` is `Ann`), each character is mapped to the prototype it can
/// be mistaken for (the TS #39 skeleton: Cyrillic `А` is Latin `A`, capital `I` is `l`), then
/// case is folded and the skeleton taken again (for lower-case lookalikes). Since `I` passes for
/// `l` and, ignoring case, is `i`, the key makes `i` `l` too: `BiII` is `Bill`, `aLICE` is `Alice`.
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_security::skeleton;
    let folded: String = name.trim().nfkc().collect();
    let lower: String = skeleton(&folded).flat_map(char::to_lowercase).collect();
    skeleton(&lower)
        .map(|c| if c == 'i' { 'l' } else { c })
        .collect()
}

/// Checks a room name and returns its canonical (lower-case) form.
pub fn validate_room(raw: &str) -> Result<String, RoomError> {
    let room = raw.trim().to_ascii_lowercase();
    let len = room.len();
    if len == 0
        || len > MAX_ROOM_CHARS
        || !room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(RoomError::Invalid);
    }
    Ok(room)
}

/// Checks a message text: not blank, at most `max_chars` characters, no control characters but newline and tab.
pub fn validate_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > max_chars {
        return Err(TextError::TooLong { max: max_chars });
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(TextError::Characters);
    }
    Ok(())
}

/// A client message id is 1–64 bytes of ASCII letters, digits, `-` and `_`.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Ada  ").as_deref(), Ok("Ada"));
        assert_eq!(validate_name(""), Err(NameError::Length));
        assert_eq!(validate_name("   \t "), Err(NameError::Length));
        assert!(
            validate_name(&"é".repeat(32)).is_ok(),
            "32 characters, not bytes"
        );
        assert_eq!(validate_name(&"a".repeat(33)), Err(NameError::Length));
    }

    #[test]
    fn names_refuse_control_and_invisible_characters() {
        assert_eq!(validate_name("a\u{0007}b"), Err(NameError::Characters));
        assert_eq!(validate_name("a\nb"), Err(NameError::Characters));
        assert_eq!(validate_name("ad\u{200B}a"), Err(NameError::Characters));
        assert_eq!(validate_name("\u{202E}ada"), Err(NameError::Characters));
        assert!(
            validate_name("<b>bold</b>").is_ok(),
            "markup is text, shown literally"
        );
        assert!(validate_name("Zoë 🦊").is_ok());
    }

    #[test]
    fn the_page_folds_case_only() {
        assert_eq!(name_fold(" aLICE "), name_fold("Alice"));
        assert_ne!(
            name_fold("\u{0410}nn"),
            name_fold("Ann"),
            "lookalikes are the server's"
        );
    }

    #[test]
    fn name_keys_ignore_case() {
        assert_eq!(name_key("Alice"), name_key("aLICE"));
        assert_ne!(name_key("Alice"), name_key("Alicia"));
    }

    #[test]
    fn names_that_look_alike_are_one_name() {
        let ann = name_key("Ann");
        // Cyrillic capital A, Cyrillic small a, fullwidth letters.
        for lookalike in [
            "\u{0410}nn",
            "\u{0430}nn",
            "\u{FF21}\u{FF4E}\u{FF4E}",
            "ANN",
        ] {
            assert_eq!(name_key(lookalike), ann, "{lookalike}");
        }
        assert_eq!(name_key("BiII"), name_key("Bill"), "capital I as l");
        assert_ne!(name_key("Ann"), name_key("Anne"));
        assert_ne!(name_key("Ann"), name_key("Ben"));
    }

    #[test]
    fn names_mixing_lookalike_scripts_are_refused_and_others_kept_as_typed() {
        assert_eq!(
            validate_name("\u{0410}nn"),
            Err(NameError::MixedScripts),
            "Cyrillic A in Latin"
        );
        assert_eq!(
            validate_name("P\u{03B1}ul"),
            Err(NameError::MixedScripts),
            "Greek alpha in Latin"
        );
        for fine in [
            "Ann",
            "Анна",
            "Ἀλέξανδρος",
            "Ann 李",
            "山田 Taro",
            "Tom-42 🦊",
            "Ａｎｎ",
            "O'Brien",
        ] {
            assert_eq!(validate_name(fine).as_deref(), Ok(fine), "{fine}");
        }
    }

    #[test]
    fn rooms_are_canonical_lower_case() {
        assert_eq!(validate_room("Lobby").as_deref(), Ok("lobby"));
        assert_eq!(validate_room("team-42").as_deref(), Ok("team-42"));
        for bad in ["", "a b", "a/b", "ä", "x_y", &"r".repeat(33)] {
            assert_eq!(validate_room(bad), Err(RoomError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn texts_refuse_blank_long_and_control() {
        assert!(validate_text("hi\nthere\t!", 2000).is_ok());
        assert_eq!(validate_text(" \n\t ", 2000), Err(TextError::Empty));
        assert_eq!(
            validate_text(&"x".repeat(11), 10),
            Err(TextError::TooLong { max: 10 })
        );
        assert!(validate_text(&"ü".repeat(10), 10).is_ok());
        assert_eq!(validate_text("a\u{0000}", 10), Err(TextError::Characters));
    }

    #[test]
    fn client_ids_are_short_tokens() {
        assert!(valid_client_id("k3j-x_9"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a b"));
        assert!(!valid_client_id(&"a".repeat(65)));
    }
}
