//! The composer's @-autocomplete: the name being typed at the caret, the members it matches, the text after a pick.
//!
//! Positions are byte offsets into the text; the browser's caret counts UTF-16 units, so
//! [`byte_offset`] and [`utf16_offset`] convert between the two.

use crate::rules::{is_word_char, lowercase, MAX_NAME_CHARS};

/// Most names the list offers at once.
pub const MAX_OPTIONS: usize = 8;

/// An `@name` being typed: where its `@` is, and what follows it up to the caret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub at: usize,
    pub text: String,
}

/// The `@name` the caret (a byte offset) is at the end of, if any: an `@` at the start or
/// after a character that is not a word's (so not in `ann@example.com`), then no line break
/// and at most a name's length up to the caret.
pub fn query_at(text: &str, caret: usize) -> Option<Query> {
    let caret = floor_boundary(text, caret);
    let before = &text[..caret];
    let at = before.rfind('@')?;
    let typed = &before[at + 1..];
    if typed.contains('\n')
        || typed.starts_with(char::is_whitespace)
        || typed.chars().count() > MAX_NAME_CHARS
        || before[..at].chars().next_back().is_some_and(is_word_char)
    {
        return None;
    }
    Some(Query {
        at,
        text: typed.to_string(),
    })
}

/// The names that `typed` could start, best first: those it starts, then those one of whose
/// later words it starts, case ignored; at most [`MAX_OPTIONS`].
pub fn matching<'a>(names: impl IntoIterator<Item = &'a str>, typed: &str) -> Vec<&'a str> {
    let typed = lowercase(typed);
    let mut starts = Vec::new();
    let mut words = Vec::new();
    for name in names {
        let lower = lowercase(name);
        if lower.starts_with(&typed) {
            starts.push(name);
        } else if !typed.is_empty()
            && lower
                .split_whitespace()
                .skip(1)
                .any(|w| w.starts_with(&typed))
        {
            words.push(name);
        }
    }
    starts.extend(words);
    starts.truncate(MAX_OPTIONS);
    starts
}

/// `text` with the `@name` typed from `at` to `caret` replaced by `@{name} `, and where the
/// caret goes then (after the space; an existing space after the caret is used, not doubled).
pub fn insert(text: &str, at: usize, caret: usize, name: &str) -> (String, usize) {
    let caret = floor_boundary(text, caret).max(at.min(text.len()));
    let at = floor_boundary(text, at);
    let rest = &text[caret..];
    let mention = format!("@{name}");
    let mut out = String::with_capacity(text.len() + mention.len() + 1);
    out.push_str(&text[..at]);
    out.push_str(&mention);
    let space = rest.starts_with(' ');
    if !space {
        out.push(' ');
    }
    let new_caret = at + mention.len() + 1;
    out.push_str(rest);
    (out, new_caret)
}

/// The byte offset of the UTF-16 offset `units` (as the browser counts a caret) in `text`.
pub fn byte_offset(text: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    text.len()
}

/// The UTF-16 offset (as the browser counts a caret) of the byte offset `byte` in `text`.
pub fn utf16_offset(text: &str, byte: usize) -> usize {
    text[..floor_boundary(text, byte)]
        .chars()
        .map(char::len_utf16)
        .sum()
}

/// The largest character boundary at or before `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Option<String> {
        query_at(text, text.len()).map(|q| q.text)
    }

    #[test]
    fn an_at_sign_starts_a_query_up_to_the_caret() {
        assert_eq!(q("@"), Some(String::new()));
        assert_eq!(q("hi @b"), Some("b".into()));
        assert_eq!(q("hi (@Ann Le"), Some("Ann Le".into()));
        assert_eq!(
            query_at("hi @bob there", 6).map(|q| (q.at, q.text)),
            Some((3, "bo".into()))
        );
    }

    #[test]
    fn no_query_inside_words_across_lines_or_after_a_space() {
        assert_eq!(q("ann@exa"), None);
        assert_eq!(q("@ann\nhi"), None);
        assert_eq!(q("@ b"), None);
        assert_eq!(q("no at here"), None);
        assert_eq!(q(&format!("@{}", "x".repeat(MAX_NAME_CHARS + 1))), None);
        assert_eq!(
            query_at("@é", 2),
            Some(Query {
                at: 0,
                text: String::new()
            }),
            "inside a character"
        );
    }

    #[test]
    fn names_that_start_with_the_query_come_first() {
        let names = ["Ben", "Abe Bennett", "Ann", "bea", "Cy"];
        assert_eq!(matching(names, "b"), ["Ben", "bea", "Abe Bennett"]);
        assert_eq!(matching(names, "BEN"), ["Ben", "Abe Bennett"]);
        assert_eq!(matching(names, "abe b"), ["Abe Bennett"]);
        assert_eq!(matching(names, ""), names);
        assert_eq!(matching(names, "z"), Vec::<&str>::new());
        let many: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        assert_eq!(
            matching(many.iter().map(String::as_str), "n").len(),
            MAX_OPTIONS
        );
    }

    #[test]
    fn a_pick_replaces_the_query_and_leaves_the_caret_after_a_space() {
        assert_eq!(insert("hi @b", 3, 5, "Ben"), ("hi @Ben ".into(), 8));
        assert_eq!(insert("@b there", 0, 2, "Ben"), ("@Ben there".into(), 5));
        assert_eq!(insert("@bx", 0, 2, "Ben"), ("@Ben x".into(), 5));
        assert_eq!(insert("é @", 3, 4, "Zoë"), ("é @Zoë ".into(), 9));
    }

    #[test]
    fn carets_convert_between_utf16_and_bytes() {
        let text = "a😀é@b";
        assert_eq!(byte_offset(text, 0), 0);
        assert_eq!(byte_offset(text, 3), 5);
        assert_eq!(byte_offset(text, 5), 8);
        assert_eq!(byte_offset(text, 99), text.len());
        for units in 0..=6 {
            let byte = byte_offset(text, units);
            if units != 2 {
                assert_eq!(utf16_offset(text, byte), units);
            }
        }
        assert_eq!(utf16_offset(text, 2), 1, "inside a character");
    }
}
