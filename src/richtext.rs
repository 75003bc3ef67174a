//! Message text as segments: plain text, http(s) links and @mentions of known names.
//!
//! Nothing else in a message means anything: the views render every segment as a text node
//! (a link's text too), so no message can ever become markup. Only `http://` and `https://`
//! make links, so an `href` can never be `javascript:` or `data:`. A mention is `@` and a
//! name known in the room, case ignored ([`name_fold`]), and ends at a word boundary; names
//! may contain spaces, so the longest known name wins (`@Ann Lee` over `@Ann`). One copy for both sides, so that the server's
//! first paint and the hydrated page agree.

use crate::rules::{is_word_char, name_fold, MAX_NAME_CHARS};

/// A piece of a message's text; the pieces, in order, make up the whole text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// An `http://` or `https://` URL, without trailing punctuation.
    Link(&'a str),
    /// `@` and a known name, as typed; `me` when the name is the reader's own.
    Mention {
        text: &'a str,
        me: bool,
    },
}

impl<'a> Segment<'a> {
    /// The segment's text, exactly as in the message.
    pub fn as_str(&self) -> &'a str {
        match self {
            Segment::Text(s) | Segment::Link(s) | Segment::Mention { text: s, .. } => s,
        }
    }
}

/// The names a mention may refer to (the room's members and the reader), as name keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    keys: Vec<String>,
    me: Option<String>,
}

impl Names {
    /// The names of `known` and `me` (the reader, if joined).
    pub fn new<'n>(known: impl IntoIterator<Item = &'n str>, me: Option<&str>) -> Self {
        let me = me.map(name_fold).filter(|k| !k.is_empty());
        let mut keys: Vec<String> = known
            .into_iter()
            .map(name_fold)
            .chain(me.clone())
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        Names { keys, me }
    }

    /// Is `name` the reader's?
    pub fn is_me(&self, name: &str) -> bool {
        self.me.as_ref().is_some_and(|me| *me == name_fold(name))
    }

    /// Does `text` mention the reader?
    pub fn mentions_me(&self, text: &str) -> bool {
        self.me.is_some()
            && segments(text, self)
                .iter()
                .any(|s| matches!(s, Segment::Mention { me: true, .. }))
    }
}

/// Splits `text` into text, links and mentions of `names`.
pub fn segments<'a>(text: &'a str, names: &Names) -> Vec<Segment<'a>> {
    let mut out = Vec::new();
    // Start of the plain text not yet pushed, and where to look next.
    let mut plain = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        // Only a mention or link can start here (`@`, `h`): look at the character before only then.
        let may_start = rest.starts_with(['@', 'h', 'H']);
        let found = if !may_start || text[..i].chars().next_back().is_some_and(is_word_char) {
            None
        } else if rest.starts_with('@') {
            mention_len(rest, names).map(|(len, me)| {
                (
                    len,
                    Segment::Mention {
                        text: &rest[..len],
                        me,
                    },
                )
            })
        } else {
            link_len(rest).map(|len| (len, Segment::Link(&rest[..len])))
        };
        match found {
            Some((len, segment)) => {
                if plain < i {
                    out.push(Segment::Text(&text[plain..i]));
                }
                out.push(segment);
                i += len;
                plain = i;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if plain < text.len() {
        out.push(Segment::Text(&text[plain..]));
    }
    out
}

/// The length in bytes of the URL `rest` starts with, if it starts with one.
fn link_len(rest: &str) -> Option<usize> {
    let scheme = ["https://", "http://"].into_iter().find(|s| {
        rest.get(..s.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(s))
    })?;
    // A host must follow: `https://` alone, or `https://.`, is no link.
    let first = rest[scheme.len()..].chars().next()?;
    if !(is_word_char(first) || first == '[') {
        return None;
    }
    let mut end = rest
        .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(rest.len());
    // Punctuation that ends a sentence, and a closing bracket the URL did not open, are not part of it.
    loop {
        let url = &rest[..end];
        let Some(last) = url.chars().next_back() else {
            break;
        };
        let unbalanced = |open: char| url.matches(open).count() < url.matches(last).count();
        let trim = match last {
            '.' | ',' | ':' | ';' | '!' | '?' | '\'' | '*' | '_' | '~' => true,
            ')' => unbalanced('('),
            ']' => unbalanced('['),
            '}' => unbalanced('{'),
            _ => false,
        };
        if !trim || end <= scheme.len() + first.len_utf8() {
            break;
        }
        end -= last.len_utf8();
    }
    Some(end)
}

/// The length in bytes of the mention `rest` (which starts with `@`) starts with, and whether it names the reader.
fn mention_len(rest: &str, names: &Names) -> Option<(usize, bool)> {
    if names.keys.is_empty() {
        return None;
    }
    let name = &rest[1..];
    if name.chars().next().is_none_or(char::is_whitespace) {
        return None;
    }
    // Every place a name may end: after a character that is not a space, before one that is not a word's.
    // Case folding may change a name's length (`İ` is two characters), so a little more than a name's length is tried.
    let mut best = None;
    let mut chars = name.char_indices().take(2 * MAX_NAME_CHARS).peekable();
    while let Some((at, c)) = chars.next() {
        if c == '\n' {
            break;
        }
        let end = at + c.len_utf8();
        let next = chars.peek().map(|&(_, n)| n).or(name[end..].chars().next());
        if c.is_whitespace() || next.is_some_and(is_word_char) {
            continue;
        }
        let key = name_fold(&name[..end]);
        if names.keys.binary_search(&key).is_ok() {
            best = Some((1 + end, names.me.as_ref() == Some(&key)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names() -> Names {
        Names::new(["Ann", "Ann Lee", "Ben", "Zoë"], Some("Cy"))
    }

    fn parse(text: &str) -> Vec<Segment<'_>> {
        segments(text, &names())
    }

    fn links(text: &str) -> Vec<&str> {
        parse(text)
            .into_iter()
            .filter_map(|s| match s {
                Segment::Link(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    fn mentions(text: &str) -> Vec<(&str, bool)> {
        parse(text)
            .into_iter()
            .filter_map(|s| match s {
                Segment::Mention { text, me } => Some((text, me)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn plain_text_is_one_segment() {
        assert_eq!(parse("hello there"), [Segment::Text("hello there")]);
        assert_eq!(parse(""), []);
    }

    #[test]
    fn http_and_https_urls_become_links() {
        assert_eq!(
            parse("see https://example.com/a?b=1#c now"),
            [
                Segment::Text("see "),
                Segment::Link("https://example.com/a?b=1#c"),
                Segment::Text(" now"),
            ]
        );
        assert_eq!(links("http://x.org"), ["http://x.org"]);
        assert_eq!(links("HTTPS://Example.com"), ["HTTPS://Example.com"]);
        assert_eq!(
            links("a https://a.b and http://c.d"),
            ["https://a.b", "http://c.d"]
        );
        assert_eq!(links("https://[::1]:8080/x"), ["https://[::1]:8080/x"]);
    }

    #[test]
    fn other_schemes_never_become_links() {
        for text in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "ftp://example.com",
            "file:///etc/passwd",
            "//example.com",
            "www.example.com",
            "https://",
            "https:// example.com",
            "https://.",
            "xhttps://example.com",
            "javascript:https://example.com",
        ] {
            assert!(
                links(text)
                    .iter()
                    .all(|l| l.to_ascii_lowercase().starts_with("http")),
                "{text}"
            );
            assert!(
                !links(text)
                    .iter()
                    .any(|l| l.contains("javascript:") && !l.starts_with("http")),
                "{text}"
            );
        }
        assert_eq!(links("javascript:alert(1)"), Vec::<&str>::new());
        assert_eq!(links("xhttps://example.com"), Vec::<&str>::new());
        assert_eq!(links("https://"), Vec::<&str>::new());
        // After a colon (not a word character) a URL starts, whatever came before.
        assert_eq!(links("javascript:https://e.com"), ["https://e.com"]);
    }

    #[test]
    fn trailing_punctuation_is_not_part_of_a_link() {
        assert_eq!(links("Go to https://e.com."), ["https://e.com"]);
        assert_eq!(links("https://e.com, then"), ["https://e.com"]);
        assert_eq!(links("really https://e.com!?"), ["https://e.com"]);
        assert_eq!(links("(see https://e.com/x)"), ["https://e.com/x"]);
        assert_eq!(links("(see https://e.com/x)."), ["https://e.com/x"]);
        assert_eq!(
            links("https://en.wikipedia.org/wiki/Rust_(language)"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(
            links("(https://en.wikipedia.org/wiki/Rust_(language))"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(links("'https://e.com/a'"), ["https://e.com/a"]);
        assert_eq!(links("https://e.com/a.b.c"), ["https://e.com/a.b.c"]);
        assert_eq!(links("https://e.com/?q=1;"), ["https://e.com/?q=1"]);
        assert_eq!(links("[https://e.com]"), ["https://e.com"]);
    }

    #[test]
    fn links_end_at_spaces_and_markup_characters() {
        assert_eq!(links("<https://e.com/x>"), ["https://e.com/x"]);
        assert_eq!(links("\"https://e.com/x\""), ["https://e.com/x"]);
        assert_eq!(links("https://e.com/x\nnext"), ["https://e.com/x"]);
        assert_eq!(
            links("https://e.com/\"onmouseover=alert(1)"),
            ["https://e.com/"]
        );
    }

    #[test]
    fn markup_stays_text() {
        let text = "<script>alert(1)</script> <img src=x onerror=alert(1)>";
        assert_eq!(parse(text), [Segment::Text(text)]);
    }

    #[test]
    fn mentions_of_known_names_end_at_a_word_boundary() {
        assert_eq!(
            parse("hi @Ben!"),
            [
                Segment::Text("hi "),
                Segment::Mention {
                    text: "@Ben",
                    me: false
                },
                Segment::Text("!"),
            ]
        );
        assert_eq!(
            mentions("@ben, @BEN and @bEn."),
            [("@ben", false), ("@BEN", false), ("@bEn", false)]
        );
        assert_eq!(mentions("@Benno"), []);
        assert_eq!(mentions("@Ben_"), []);
        assert_eq!(mentions("@Bob"), [], "not a member");
        assert_eq!(mentions("mail ann@Ben.com"), [], "inside a word");
        assert_eq!(mentions("@ Ben"), []);
        assert_eq!(
            mentions("@Ben\u{301}"),
            [],
            "a combining mark continues the word"
        );
        assert_eq!(
            mentions("@Zoë and @zoë"),
            [("@Zoë", false), ("@zoë", false)]
        );
    }

    #[test]
    fn the_longest_known_name_wins() {
        assert_eq!(mentions("@Ann Lee hi"), [("@Ann Lee", false)]);
        assert_eq!(mentions("@Ann Leeds"), [("@Ann", false)]);
        assert_eq!(mentions("@Ann  Lee"), [("@Ann", false)]);
        assert_eq!(mentions("@Ann\nLee"), [("@Ann", false)]);
    }

    #[test]
    fn the_readers_own_name_is_marked() {
        assert_eq!(mentions("@cy look"), [("@cy", true)]);
        let n = names();
        assert!(n.mentions_me("hey @Cy"));
        assert!(n.mentions_me("hey @CY."));
        // Only case is ignored: a lookalike (Cyrillic С and у) is another name.
        assert!(!n.mentions_me("hey @\u{0421}\u{0443}"));
        assert!(!n.mentions_me("hey @Cyd"));
        assert!(!n.mentions_me("hey Cy"));
        assert!(!n.mentions_me("https://e.com/@Cy"), "inside a link");
        assert!(!Names::new(["Cy"], None).mentions_me("@Cy"), "not joined");
    }

    #[test]
    fn names_with_spaces_are_matched_whole() {
        let n = Names::new(["Ann"], Some("Ann Lee"));
        assert!(n.mentions_me("@ann lee: look"));
        assert!(!n.mentions_me("@Ann: look"));
        assert!(!Names::new(["Ann Lee"], Some("Ann")).mentions_me("@Ann Lee"));
    }

    #[test]
    fn links_and_mentions_mix() {
        assert_eq!(
            parse("@Ann see https://e.com (@Ben)"),
            [
                Segment::Mention {
                    text: "@Ann",
                    me: false
                },
                Segment::Text(" see "),
                Segment::Link("https://e.com"),
                Segment::Text(" ("),
                Segment::Mention {
                    text: "@Ben",
                    me: false
                },
                Segment::Text(")"),
            ]
        );
    }

    proptest! {
        #[test]
        fn segments_put_together_are_the_text(text in "\\PC*") {
            let joined: String = parse(&text).iter().map(Segment::as_str).collect();
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn url_like_text_round_trips_and_links_are_http(
            text in "([ a-z.,:;!?()\\[\\]@/<>\"'\n]|https?://|@Ann|@Ben|Lee|é|\u{301})*"
        ) {
            let parts = parse(&text);
            let joined: String = parts.iter().map(Segment::as_str).collect();
            prop_assert_eq!(&joined, &text);
            for part in &parts {
                match part {
                    Segment::Link(l) => {
                        prop_assert!(l.starts_with("http://") || l.starts_with("https://"));
                        prop_assert!(!l.contains(char::is_whitespace));
                        prop_assert!(!l.ends_with(['.', ',', '!', '?']));
                    }
                    Segment::Mention { text, .. } => prop_assert!(text.starts_with('@')),
                    Segment::Text(t) => prop_assert!(!t.is_empty()),
                }
            }
        }
    }
}
