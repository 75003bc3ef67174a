//! Who is typing: the members heard typing in the last few seconds, and the line that names them.

use crate::i18n::Text;
use crate::rules::name_fold;

/// How long a `typing` frame counts, in milliseconds.
pub const TYPING_SHOWN_MS: f64 = 6_000.0;

/// Least time between two `typing` frames sent, in milliseconds.
pub const TYPING_EVERY_MS: f64 = 3_000.0;

/// The members typing now, each with when to forget them (ms since the epoch), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Typing {
    people: Vec<(String, f64)>,
}

impl Typing {
    /// `name` is typing at `now`: shown until [`TYPING_SHOWN_MS`] later.
    pub fn heard(&mut self, name: &str, now: f64) {
        let until = now + TYPING_SHOWN_MS;
        let key = name_fold(name);
        match self.people.iter_mut().find(|(n, _)| name_fold(n) == key) {
            Some(entry) => entry.1 = until,
            None => self.people.push((name.to_string(), until)),
        }
    }

    /// Stops showing `name` (their message arrived, or they left); true if it was shown.
    pub fn forget(&mut self, name: &str) -> bool {
        let key = name_fold(name);
        let before = self.people.len();
        self.people.retain(|(n, _)| name_fold(n) != key);
        self.people.len() != before
    }

    /// Forgets whoever was last heard too long before `now`; true if anyone was.
    pub fn expire(&mut self, now: f64) -> bool {
        let before = self.people.len();
        self.people.retain(|(_, until)| *until > now);
        self.people.len() != before
    }

    /// When the next member is to be forgotten, if anyone is shown.
    pub fn next_expiry(&self) -> Option<f64> {
        self.people.iter().map(|(_, until)| *until).reduce(f64::min)
    }

    pub fn clear(&mut self) {
        self.people.clear();
    }

    /// The line under the conversation ("Ann is typing…"), never naming `me`; empty when nobody is.
    pub fn line(&self, me: Option<&str>) -> Text {
        let me = me.map(name_fold);
        let names: Vec<&str> = self
            .people
            .iter()
            .filter(|(n, _)| me.as_deref() != Some(name_fold(n).as_str()))
            .map(|(n, _)| n.as_str())
            .collect();
        match names.as_slice() {
            [] => Text::raw(""),
            [one] => Text::new("typing-one").arg("name", *one),
            [one, two] => Text::new("typing-two")
                .arg("first", *one)
                .arg("second", *two),
            many => Text::new("typing-many").arg("count", many.len() as i64),
        }
    }
}

/// Whether the composer should send `typing` now: it has text, and the last one went
/// [`TYPING_EVERY_MS`] ago or more (`last` is when, if ever).
pub fn should_send_typing(text: &str, last: Option<f64>, now: f64) -> bool {
    !text.trim().is_empty() && last.is_none_or(|t| now - t >= TYPING_EVERY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_one_or_two_and_counts_more_and_never_me() {
        let mut t = Typing::default();
        assert_eq!(t.line(Some("Ann")), "");
        t.heard("Ann", 0.0);
        assert_eq!(t.line(Some("Ann")), "", "never yourself");
        assert_eq!(t.line(Some("Cy")), "Ann is typing…");
        t.heard("Ben", 1.0);
        assert_eq!(t.line(Some("Cy")), "Ann and Ben are typing…");
        assert_eq!(
            t.line(Some("ann")),
            "Ben is typing…",
            "names compare by their key"
        );
        t.heard("Dee", 2.0);
        assert_eq!(t.line(Some("Cy")), "3 people are typing…");
        assert_eq!(t.line(None), "3 people are typing…");
    }

    #[test]
    fn members_are_forgotten_six_seconds_after_they_were_last_heard() {
        let mut t = Typing::default();
        t.heard("Ann", 0.0);
        t.heard("Ben", 1_000.0);
        t.heard("Ann", 3_000.0);
        assert_eq!(t.next_expiry(), Some(7_000.0));
        assert!(!t.expire(6_500.0), "Ann was heard again at 3 s");
        assert!(t.expire(7_000.0));
        assert_eq!(t.line(None), "Ann is typing…");
        assert!(t.expire(9_000.0));
        assert_eq!(
            (t.line(None).to_string().as_str(), t.next_expiry()),
            ("", None)
        );
    }

    #[test]
    fn a_message_or_leaving_forgets_at_once() {
        let mut t = Typing::default();
        t.heard("Ann", 0.0);
        assert!(!t.forget("Ben"));
        assert!(t.forget("ANN"));
        assert_eq!(t.line(None), "");
    }

    #[test]
    fn typing_is_sent_at_most_every_three_seconds_and_only_with_text() {
        assert!(!should_send_typing("  ", None, 0.0));
        assert!(should_send_typing("h", None, 0.0));
        assert!(!should_send_typing("hi", Some(0.0), 2_999.0));
        assert!(should_send_typing("hi", Some(0.0), 3_000.0));
    }
}
