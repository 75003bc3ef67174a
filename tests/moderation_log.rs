//! The log's moderation step on both logs (SQLite, and a real redis-server): removals, clears, fields, audit, re-sends.

#[path = "common/redis_server.rs"]
mod redis_server;

use chatroom::protocol::moderation::FOREVER;
use chatroom::protocol::pages::AuditEntry;
use chatroom::protocol::{Change, ChangeAction, ChatMessage, Member, MessageId, Role};
use chatroom::server::log::presence::{LiveRooms, PresenceChange, RemoteMembers};
use chatroom::server::log::redis::RedisLog;
use chatroom::server::log::sqlite::Store;
use chatroom::server::log::{
    now_ms, Action, Append, Delivery, Entry, MessageLog, Moderation, Outcome, Refusal,
};
use redis_server::RedisServer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// The hub: every outcome, and every committed entry, in order, on one channel.
struct Hub {
    tx: mpsc::UnboundedSender<Outcome>,
    delivered: Mutex<HashMap<String, MessageId>>,
    /// Kept: presence runs for as long as this is open.
    presence: Mutex<Option<mpsc::UnboundedSender<PresenceChange>>>,
}

impl Hub {
    fn new() -> (Arc<Hub>, mpsc::UnboundedReceiver<Outcome>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Hub {
            tx,
            delivered: Mutex::new(HashMap::new()),
            presence: Mutex::new(None),
        };
        (Arc::new(hub), rx)
    }

    fn mark(&self, room: &str, id: MessageId) {
        let mut d = self.delivered.lock().unwrap();
        let last = d.entry(room.to_string()).or_insert(0);
        *last = (*last).max(id);
    }
}

impl Delivery for Hub {
    fn deliver(&self, append: Append, outcome: Outcome) {
        if let Outcome::Stored(e) = &outcome {
            self.mark(&append.room, e.id());
        }
        let _ = self.tx.send(outcome);
    }

    fn deliver_committed(&self, room: &str, entry: Entry, _: Option<Instant>) {
        self.mark(room, entry.id());
        let _ = self.tx.send(Outcome::Stored(entry));
    }

    fn deliver_typing(&self, _: &str, _: &str) {}
}

impl LiveRooms for Hub {
    fn room_names(&self) -> Vec<String> {
        vec!["a".into()]
    }

    fn delivered_upto(&self, room: &str) -> Option<MessageId> {
        Some(*self.delivered.lock().unwrap().get(room).unwrap_or(&0))
    }

    fn sync_remote(&self, _: &str, _: &RemoteMembers) {}

    fn share_presence(&self, sink: mpsc::UnboundedSender<PresenceChange>) {
        *self.presence.lock().unwrap() = Some(sink);
    }
}

/// The log under test and what it hands its hub.
struct Log {
    log: MessageLog,
    rx: mpsc::UnboundedReceiver<Outcome>,
}

fn append(session: &str, client_id: &str, name: &str, action: Action) -> Append {
    Append {
        room: "a".into(),
        conn: 1,
        session: session.into(),
        client_id: client_id.into(),
        author: Member {
            name: name.into(),
            avatar: "fox".into(),
        },
        action,
        received: Instant::now(),
    }
}

fn post(session: &str, client_id: &str, name: &str, text: &str, reply_to: Option<u64>) -> Append {
    append(
        session,
        client_id,
        name,
        Action::Post {
            text: text.into(),
            reply_to,
        },
    )
}

/// A moderation step by "Mod", a moderator, with its client id.
fn moderate(client_id: &str, action: ChangeAction, target: MessageId) -> (String, Moderation) {
    let step = Moderation {
        action,
        target,
        clear: None,
        writes: Vec::new(),
        require: None,
        role: Some(Role::Moderator),
    };
    (client_id.to_string(), step)
}

impl Log {
    async fn commit(&mut self, a: Append) -> Outcome {
        self.log.append(a).unwrap();
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an outcome in time")
            .expect("the hub is there")
    }

    async fn stored(&mut self, a: Append) -> Entry {
        match self.commit(a).await {
            Outcome::Stored(e) => e,
            other => panic!("not stored: {other:?}"),
        }
    }

    async fn moderate(&mut self, (client_id, m): (String, Moderation)) -> Outcome {
        let a = append("sm", &client_id, "Mod", Action::Moderate(Box::new(m)));
        self.commit(a).await
    }

    async fn moderated(&mut self, step: (String, Moderation)) -> Change {
        match self.moderate(step).await {
            Outcome::Stored(Entry::Change(c)) => c,
            other => panic!("not stored: {other:?}"),
        }
    }

    async fn message(&self, id: MessageId) -> ChatMessage {
        self.log
            .recent("a", id, 1)
            .await
            .unwrap()
            .pop()
            .filter(|m| m.id == id)
            .expect("the message is kept")
    }
}

/// Everything the moderation step does, the same on both logs. Returns the moderation
/// changes stored, oldest first.
async fn scenario(log: &mut Log) -> Vec<Change> {
    let mut changes = Vec::new();
    log.stored(post("s1", "c1", "Ann", "SECRET-spam-one", None))
        .await;
    log.stored(post("s2", "c2", "Bob", "SECRET-fine-two", None))
        .await;
    log.stored(post("s1", "c3", "Ann", "SECRET-spam-three", None))
        .await;
    log.stored(post("s2", "c4", "Bob", "re", Some(1))).await;
    let react = Action::React {
        target: 3,
        emoji: "👍".into(),
        on: true,
    };
    log.stored(append("s2", "c5", "Bob", react)).await;
    log.stored(post("s3", "c6", "Cy", "mine", None)).await;

    // Remove: the message is gone and marked; a second removal finds nothing.
    let remove = ChangeAction::Remove {
        reason: "off topic".into(),
    };
    let removed = log.moderated(moderate("r1", remove.clone(), 2)).await;
    assert_eq!((removed.id, removed.target), (7, 2));
    assert_eq!(
        (removed.name.as_str(), removed.avatar.as_str()),
        ("Mod", "fox")
    );
    assert_eq!(removed.client_id.as_deref(), Some("r1"));
    assert_eq!(removed.action, remove);
    let two = log.message(2).await;
    assert!(two.deleted && two.removed && two.text.is_empty(), "{two:?}");
    for (cid, target) in [("r2", 2), ("r3", 999)] {
        let again = log.moderate(moderate(cid, remove.clone(), target)).await;
        assert!(
            matches!(again, Outcome::Refused(Refusal::NoSuchMessage)),
            "{again:?}"
        );
    }
    // A re-send is confirmed with the same change.
    match log.moderate(moderate("r1", remove.clone(), 2)).await {
        Outcome::Duplicate(Entry::Change(c)) => assert_eq!(c, removed),
        other => panic!("{other:?}"),
    }
    changes.push(removed);

    // Clear: only that session's messages since then; the log fills in the ids. The
    // member's name is awkward on purpose: the ids go in after `"ids":[`.
    let member = r#"Ann "ids":[] \"#.to_string();
    let clear = |ids: Vec<MessageId>| ChangeAction::Clear {
        member: member.clone(),
        ids,
        reason: "spam".into(),
    };
    let mut later = moderate("k0", clear(vec![]), 0);
    later.1.clear = Some(("s1".into(), now_ms() + 3_600_000));
    let none = log.moderated(later).await;
    assert_eq!(none.action, clear(vec![]), "nothing since a time to come");
    changes.push(none);
    let mut step = moderate("k1", clear(vec![]), 0);
    step.1.clear = Some(("s1".into(), now_ms() - 60_000));
    let cleared = log.moderated(step).await;
    assert_eq!(cleared.action, clear(vec![1, 3]));
    changes.push(cleared);
    let shown = log.log.recent("a", u64::MAX, 10).await.unwrap();
    let state: Vec<(MessageId, bool, bool, &str)> = shown
        .iter()
        .map(|m| (m.id, m.deleted, m.removed, m.text.as_str()))
        .collect();
    assert_eq!(
        state,
        [
            (1, true, true, ""),
            (2, true, true, ""),
            (3, true, true, ""),
            (4, false, false, "re"),
            (6, false, false, "mine"),
        ]
    );
    assert!(
        shown[2].reactions.is_empty(),
        "a removed message keeps no reactions"
    );
    let quote = shown[3].reply_to.clone().expect("a reply");
    assert!(quote.gone && quote.text.is_empty(), "{quote:?}");
    let older = log.log.before("a", 3, 10).await.unwrap();
    assert!(older.iter().all(|m| m.removed), "{older:?}");

    // Fields: written outside the log, and by a step only if its requirement holds.
    let writes: [(&str, Option<&str>, bool, bool); 6] = [
        ("owner_token", Some("abc"), true, true),
        ("owner_token", Some("xyz"), true, false),
        ("mute:s2", Some("{}"), false, true),
        ("topic", Some("old"), false, true),
        ("topic", None, false, true),
        ("nothing", None, false, false),
    ];
    for (field, value, only, wrote) in writes {
        let done = log
            .log
            .set_moderation("a", field, value, only)
            .await
            .unwrap();
        assert_eq!(done, wrote, "{field} {value:?} {only}");
    }
    let fields = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        log.log.moderation("a").await.unwrap(),
        fields(&[("mute:s2", "{}"), ("owner_token", "abc")])
    );
    let role = ChangeAction::Role {
        member: "Ann".into(),
        role: Some(Role::Owner),
    };
    let claim = |cid: &str, token: &str| {
        let mut step = moderate(cid, role.clone(), 0);
        step.1.require = Some(("owner_token".into(), token.into()));
        step.1.writes = vec![
            ("owner_token".into(), Some("claimed".into())),
            (
                "role:s1".into(),
                Some(r#"{"role":"owner","name":"Ann"}"#.into()),
            ),
            ("mute:s2".into(), None),
        ];
        step.1.role = None;
        step
    };
    let stale = log.moderate(claim("o1", "wrong")).await;
    assert!(
        matches!(stale, Outcome::Refused(Refusal::Stale)),
        "{stale:?}"
    );
    assert_eq!(
        log.log.moderation("a").await.unwrap(),
        fields(&[("mute:s2", "{}"), ("owner_token", "abc")]),
        "a refused step writes nothing"
    );
    let claimed = log.moderated(claim("o2", "abc")).await;
    assert_eq!(claimed.action, role);
    changes.push(claimed);
    assert_eq!(
        log.log.moderation("a").await.unwrap(),
        fields(&[
            ("owner_token", "claimed"),
            ("role:s1", r#"{"role":"owner","name":"Ann"}"#)
        ])
    );
    let used = log.moderate(claim("o3", "abc")).await;
    assert!(matches!(used, Outcome::Refused(Refusal::Stale)), "{used:?}");

    // Every other action, stored and read back as it was.
    let member = || "Bob".to_string();
    let others = [
        ChangeAction::Mute {
            member: member(),
            until: FOREVER,
            reason: "calm down".into(),
        },
        ChangeAction::Unmute { member: member() },
        ChangeAction::Kick {
            member: member(),
            reason: String::new(),
        },
        ChangeAction::Ban {
            member: member(),
            until: 1_700_000_000_123,
            address: true,
            reason: "ünïcode \"quoted\" \\ / \u{1f}".into(),
        },
        ChangeAction::Unban { member: member() },
        ChangeAction::Topic {
            text: r#"Rust {"ids":[]} 🦀"#.into(),
        },
        ChangeAction::Lock { on: true },
        ChangeAction::Slow { secs: 30 },
        ChangeAction::Role {
            member: member(),
            role: None,
        },
    ];
    for (i, action) in others.into_iter().enumerate() {
        let c = log
            .moderated(moderate(&format!("x{i}"), action.clone(), 0))
            .await;
        assert_eq!((c.action, c.target), (action, 0));
        changes.push(
            log.log
                .between("a", c.id - 1, c.id, 1)
                .await
                .unwrap()
                .pop()
                .and_then(|e| match e {
                    Entry::Change(c) => Some(c),
                    Entry::Message(_) => None,
                })
                .expect("the change is kept"),
        );
    }

    // Resume: every moderation change comes back exactly as stored.
    let all = log.log.between("a", 0, u64::MAX, 1000).await.unwrap();
    let read: Vec<Change> = all
        .into_iter()
        .filter_map(|e| match e {
            Entry::Change(c) if c.action.is_moderation() => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(read, changes);

    // Audit: newest first, with its roles, and pages below an id.
    let audit = log.log.audit("a", None, 100).await.unwrap();
    let expected: Vec<AuditEntry> = changes
        .iter()
        .rev()
        .map(|c| AuditEntry {
            change: c.clone(),
            role: if matches!(c.action, ChangeAction::Role { role: Some(_), .. }) {
                None
            } else {
                Some(Role::Moderator)
            },
        })
        .collect();
    assert_eq!(audit, expected);
    let below = changes[3].id;
    let page = log.log.audit("a", Some(below), 2).await.unwrap();
    let ids: Vec<MessageId> = page.iter().map(|e| e.change.id).collect();
    assert_eq!(ids, [changes[2].id, changes[1].id]);
    assert!(log.log.audit("a", Some(1), 10).await.unwrap().is_empty());
    assert!(log.log.audit("nowhere", None, 10).await.unwrap().is_empty());

    // Who posted as a name; the rooms the log knows.
    assert_eq!(
        log.log.session_of("a", "Ann").await.unwrap().as_deref(),
        Some("s1")
    );
    assert_eq!(
        log.log.session_of("a", "Bob").await.unwrap().as_deref(),
        Some("s2")
    );
    assert_eq!(log.log.session_of("a", "ann").await.unwrap(), None);
    assert_eq!(log.log.session_of("a", "Mod").await.unwrap(), None);
    assert!(log.log.rooms().await.unwrap().contains(&"a".to_string()));
    changes
}

#[tokio::test]
async fn sqlite_moderation_is_one_step_and_survives_reopening_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let (hub, rx) = Hub::new();
    let store = Store::open(&path, 0).unwrap();
    let (appender, handle) = store.start_writer(hub).unwrap();
    let mut log = Log {
        log: MessageLog::Local {
            store: Arc::new(store),
            appender: appender.clone(),
        },
        rx,
    };
    let changes = scenario(&mut log).await;
    log.log.close().await;
    handle.join().unwrap();
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b"SECRET-"),
        "a removed text is still in the database file"
    );

    // Reopened: the same fields, audit, changes and marks.
    let (hub, rx) = Hub::new();
    let store = Store::open(&path, 0).unwrap();
    let (appender, _handle) = store.start_writer(hub).unwrap();
    let log = Log {
        log: MessageLog::Local {
            store: Arc::new(store),
            appender: appender.clone(),
        },
        rx,
    };
    assert!(log.message(1).await.removed);
    assert_eq!(
        log.log.audit("a", None, 100).await.unwrap().len(),
        changes.len()
    );
    let fields = log.log.moderation("a").await.unwrap();
    assert_eq!(fields.len(), 2, "{fields:?}");
    assert_eq!(log.log.rooms().await.unwrap(), ["a"]);

    // Retention deletes entries, never fields or audit records.
    assert!(appender.purge(now_ms() + 1, 1000).await.unwrap() > 0);
    assert!(log.log.recent("a", u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(log.log.moderation("a").await.unwrap(), fields);
    assert_eq!(
        log.log.audit("a", None, 100).await.unwrap().len(),
        changes.len()
    );
}

#[tokio::test]
async fn redis_moderation_is_one_step_relayed_and_kept_through_retention() {
    let redis = RedisServer::start();
    let (hub, rx) = Hub::new();
    let cluster = RedisLog::start(&redis.url(), 10_000, Duration::from_secs(5), hub)
        .await
        .unwrap();
    let mut log = Log {
        log: MessageLog::Cluster(cluster.clone()),
        rx,
    };
    let ready = Instant::now();
    while log.log.check_writable().await.is_err() {
        assert!(ready.elapsed() < WAIT, "the relay subscribes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changes = scenario(&mut log).await;
    let body = redis.strings(&["HGETALL", "chat:{a}:body"]);
    assert!(
        !body.iter().any(|v| v.contains("SECRET-")),
        "a removed text is still in Redis: {body:?}"
    );
    assert!(body.contains(&"2:r".to_string()), "{body:?}");

    // A name held through presence is seen, and left as it is.
    let sid = chatroom::server::ids::SessionId("s7".into());
    let presence = cluster.presence();
    assert!(presence.hold_name("a", "bob", &sid, 60_000).await.unwrap());
    // The holder's node counts as live once its presence task has marked it.
    let live = Instant::now();
    while log.log.name_holder("a", "bob").await.unwrap().is_none() {
        assert!(live.elapsed() < WAIT, "the node is live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        log.log.name_holder("a", "bob").await.unwrap().as_deref(),
        Some("s7")
    );
    assert_eq!(log.log.name_holder("a", "nobody").await.unwrap(), None);

    // Retention trims the stream, never the fields or the audit records.
    let fields = log.log.moderation("a").await.unwrap();
    log.log.start_retention(0);
    let trimmed = Instant::now();
    while redis.command("XLEN chat:{a}:log") != ":0" {
        assert!(trimmed.elapsed() < WAIT, "retention trims the stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.log.moderation("a").await.unwrap(), fields);
    assert_eq!(
        log.log.audit("a", None, 100).await.unwrap().len(),
        changes.len()
    );
}
