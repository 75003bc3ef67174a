//! What the reader has not seen yet: messages from others while the tab was hidden, where they began, the title.
//!
//! Pure, so it is tested natively; `components::attention` feeds it the page's visibility and
//! the model's new messages. Like Slack: while the tab is hidden, messages from others are
//! counted (the title shows the count, and `(@)` once one mentions the reader); the count goes
//! when the tab shows again, but a "New messages" divider stays above the first of them until
//! the reader posts, or hides the tab and comes back.

use crate::i18n::{Lang, Text};
use crate::model::Entry;
use crate::protocol::{ChatMessage, MessageId};
use crate::richtext::Names;

/// Longest message text quoted in a notification, in characters.
const QUOTE_CHARS: usize = 100;

/// The reader's attention on one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attention {
    hidden: bool,
    /// Messages from others that arrived while the tab was hidden.
    pub unread: u32,
    /// One of them mentions the reader.
    pub mentioned: bool,
    /// The first message that arrived while the tab was hidden: the divider goes above it.
    pub divider: Option<MessageId>,
    /// The newest message already accounted for: older ones (history, replays) are not new.
    seen: Option<MessageId>,
}

impl Attention {
    /// Attention on a room whose newest message so far is `seen`.
    pub fn new(seen: Option<MessageId>, hidden: bool) -> Self {
        Attention {
            hidden,
            seen,
            ..Attention::default()
        }
    }

    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    /// The tab was hidden or shown. Hiding starts a new stretch away (the old divider goes);
    /// showing clears the count, and the divider stays where it is.
    pub fn set_hidden(&mut self, hidden: bool) {
        if hidden == self.hidden {
            return;
        }
        self.hidden = hidden;
        if hidden {
            self.divider = None;
        } else {
            self.unread = 0;
            self.mentioned = false;
        }
    }

    /// Accounts for the messages in `entries` newer than those seen, oldest first, and returns
    /// those that deserve a notification: from others, mentioning the reader, while hidden.
    pub fn catch_up<'e>(&mut self, entries: &'e [Entry], names: &Names) -> Vec<&'e ChatMessage> {
        let seen = self.seen;
        let new = entries
            .iter()
            .rev()
            .map_while(|e| match e {
                Entry::Message(m) if seen.is_none_or(|s| m.id > s) => Some(Some(m)),
                Entry::Message(_) => None,
                Entry::Notice { .. } => Some(None),
            })
            .flatten()
            .collect::<Vec<_>>();
        let mut notify = Vec::new();
        for m in new.into_iter().rev() {
            self.seen = Some(self.seen.map_or(m.id, |s| s.max(m.id)));
            if names.is_me(&m.name) {
                // Posting marks the room read.
                self.unread = 0;
                self.mentioned = false;
                self.divider = None;
                continue;
            }
            if !self.hidden {
                continue;
            }
            self.unread = self.unread.saturating_add(1);
            self.divider.get_or_insert(m.id);
            if names.mentions_me(&m.text) {
                self.mentioned = true;
                notify.push(m);
            }
        }
        notify
    }

    /// The page's title in English (see [`Attention::title_in`]).
    pub fn title(&self, room: &str) -> String {
        self.title_in(room, Lang::En)
    }

    /// The page's title: `#lobby · Chat`, with what is unread in front: `(@) (3) #lobby · Chat`.
    pub fn title_in(&self, room: &str, lang: Lang) -> String {
        let mut title = String::new();
        if self.unread > 0 {
            if self.mentioned {
                title.push_str("(@) ");
            }
            if self.unread > 99 {
                title.push_str("(99+) ");
            } else {
                title.push_str(&format!("({}) ", self.unread));
            }
        }
        title.push_str(&room_title(room, lang));
        title
    }
}

/// A room's page title with nothing unread (`#lobby · Chat`), as the server sends it.
pub fn room_title(room: &str, lang: Lang) -> String {
    Text::new("room-title").arg("room", room).render(lang)
}

/// A notification's text for `message`: `Ann: what she wrote`, long texts cut with `…`.
pub fn notification_body(message: &ChatMessage) -> String {
    let text = message.text.trim();
    let mut quote: String = text.chars().take(QUOTE_CHARS).collect();
    if quote.len() < text.len() {
        quote.push('…');
    }
    format!("{}: {quote}", message.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: MessageId, name: &str, text: &str) -> Entry {
        Entry::Message(ChatMessage {
            id,
            name: name.into(),
            text: text.into(),
            ..ChatMessage::default()
        })
    }

    fn names() -> Names {
        Names::new(["Ann", "Ben"], Some("Ben"))
    }

    /// Attention after `entries` arrived one by one (as the model shows them), and the ids of notifications.
    fn feed(a: &mut Attention, entries: &mut Vec<Entry>, new: Vec<Entry>) -> Vec<MessageId> {
        let mut notified = Vec::new();
        for e in new {
            entries.push(e);
            notified.extend(a.catch_up(entries, &names()).iter().map(|m| m.id));
        }
        notified
    }

    #[test]
    fn nothing_is_counted_while_the_tab_shows() {
        let mut entries = vec![msg(1, "Ann", "old")];
        let mut a = Attention::new(Some(1), false);
        feed(&mut a, &mut entries, vec![msg(2, "Ann", "hi @Ben")]);
        assert_eq!((a.unread, a.mentioned, a.divider), (0, false, None));
        assert_eq!(a.title("lobby"), "#lobby · Chat");
    }

    #[test]
    fn messages_from_others_while_hidden_are_counted_and_titled() {
        let mut entries = vec![msg(1, "Ann", "old")];
        let mut a = Attention::new(Some(1), false);
        a.set_hidden(true);
        let notified = feed(
            &mut a,
            &mut entries,
            vec![
                msg(2, "Ann", "one"),
                msg(3, "Ben", "my own, from another tab"),
            ],
        );
        assert!(notified.is_empty());
        assert_eq!(a.unread, 0, "posting marks the room read");
        let notified = feed(
            &mut a,
            &mut entries,
            vec![
                msg(4, "Ann", "two"),
                Entry::Notice {
                    seq: 1,
                    text: Text::raw("Cy joined"),
                },
                msg(5, "Ann", "three"),
                msg(6, "Ann", "four"),
            ],
        );
        assert!(notified.is_empty());
        assert_eq!(a.title("lobby"), "(3) #lobby · Chat");
        assert_eq!(a.divider, Some(4));
        let notified = feed(&mut a, &mut entries, vec![msg(7, "Ann", "look @ben!")]);
        assert_eq!(notified, [7]);
        assert_eq!(a.title("lobby"), "(@) (4) #lobby · Chat");
    }

    #[test]
    fn showing_the_tab_clears_the_count_and_keeps_the_divider_until_the_reader_posts() {
        let mut entries = vec![];
        let mut a = Attention::new(None, true);
        feed(
            &mut a,
            &mut entries,
            vec![msg(1, "Ann", "@Ben"), msg(2, "Ann", "x")],
        );
        assert_eq!((a.unread, a.mentioned, a.divider), (2, true, Some(1)));
        a.set_hidden(false);
        assert_eq!((a.unread, a.mentioned, a.divider), (0, false, Some(1)));
        assert_eq!(a.title("r"), "#r · Chat");
        feed(&mut a, &mut entries, vec![msg(3, "Ann", "while here")]);
        assert_eq!(a.divider, Some(1));
        feed(&mut a, &mut entries, vec![msg(4, "Ben", "my reply")]);
        assert_eq!(a.divider, None);
    }

    #[test]
    fn the_divider_moves_when_the_reader_hides_and_comes_back() {
        let mut entries = vec![];
        let mut a = Attention::new(None, true);
        feed(&mut a, &mut entries, vec![msg(1, "Ann", "a")]);
        a.set_hidden(false);
        assert_eq!(a.divider, Some(1));
        a.set_hidden(true);
        feed(&mut a, &mut entries, vec![msg(2, "Ann", "b")]);
        a.set_hidden(false);
        assert_eq!(a.divider, Some(2));
        a.set_hidden(true);
        a.set_hidden(false);
        assert_eq!(a.divider, None, "nothing new the second time");
    }

    #[test]
    fn history_and_replays_are_not_new() {
        let mut a = Attention::new(Some(10), true);
        let mut entries = vec![msg(5, "Ann", "older page"), msg(10, "Ann", "seen")];
        assert!(a.catch_up(&entries, &names()).is_empty());
        entries.insert(0, msg(3, "Ann", "@Ben older still"));
        assert!(a.catch_up(&entries, &names()).is_empty());
        assert_eq!(a.unread, 0);
        // Several at once (a reconnect's replay), counted once each.
        entries.extend([msg(11, "Ann", "x"), msg(12, "Ann", "@Ben y")]);
        assert_eq!(a.catch_up(&entries, &names()).len(), 1);
        assert_eq!(a.catch_up(&entries, &names()).len(), 0);
        assert_eq!((a.unread, a.divider), (2, Some(11)));
    }

    #[test]
    fn big_counts_are_capped_in_the_title() {
        let a = Attention {
            unread: 150,
            ..Attention::default()
        };
        assert_eq!(a.title("lobby"), "(99+) #lobby · Chat");
    }

    #[test]
    fn notifications_quote_the_sender_and_a_short_text() {
        let Entry::Message(m) = msg(1, "Ann", "  hi @Ben  ") else {
            unreachable!()
        };
        assert_eq!(notification_body(&m), "Ann: hi @Ben");
        let long = ChatMessage {
            text: "é".repeat(300),
            ..m
        };
        let body = notification_body(&long);
        assert_eq!(body.chars().count(), "Ann: ".len() + QUOTE_CHARS + 1);
        assert!(body.ends_with('…'));
    }
}
