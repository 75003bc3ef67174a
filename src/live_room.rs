//! The room model as the page's views share it: each view re-renders only for the parts it reads.
//!
//! The model itself sits in a non-reactive `StoredValue`; beside it is one `Trigger` per
//! [`Parts`] bit. A change says which parts it touched (`RoomModel::apply` reports them), and
//! only those triggers fire: a new message re-runs the conversation's list, which renders the
//! new row only, and never the member list, the online count or the status badge. A change
//! that touched nothing (a heartbeat) notifies nobody.

use leptos::prelude::*;

use crate::model::{Parts, RoomModel};

/// A handle on one room's model; `Copy`, owned by the view that created it.
#[derive(Clone, Copy)]
pub struct LiveRoom {
    model: StoredValue<RoomModel>,
    triggers: [Trigger; Parts::COUNT],
}

impl LiveRoom {
    pub fn new(model: RoomModel) -> Self {
        LiveRoom {
            model: StoredValue::new(model),
            triggers: std::array::from_fn(|_| Trigger::new()),
        }
    }

    /// Reads the model and subscribes the running view to `parts`.
    pub fn with<R>(&self, parts: Parts, f: impl FnOnce(&RoomModel) -> R) -> R {
        for i in parts.indexes() {
            self.triggers[i].track();
        }
        self.model.with_value(f)
    }

    /// Reads the model without subscribing.
    pub fn with_untracked<R>(&self, f: impl FnOnce(&RoomModel) -> R) -> R {
        self.model.with_value(f)
    }

    /// Reads the model without subscribing; `None` once the view has gone.
    pub fn try_with_untracked<R>(&self, f: impl FnOnce(&RoomModel) -> R) -> Option<R> {
        self.model.try_with_value(f)
    }

    /// Changes the model, then notifies the views of the parts `f` says it changed.
    /// `None` once the view has gone.
    pub fn change(&self, f: impl FnOnce(&mut RoomModel) -> Parts) -> Option<Parts> {
        // The model is unlocked again before any view hears of the change.
        let changed = self.model.try_update_value(f)?;
        for i in changed.indexes() {
            self.triggers[i].notify();
        }
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::protocol::pages::RoomSnapshot;
    use crate::protocol::{ChatMessage, Member, ServerFrame};

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            avatar: "fox".into(),
        }
    }

    fn msg(id: u64) -> ChatMessage {
        ChatMessage {
            id,
            ts: 0,
            name: "Ada".into(),
            avatar: "fox".into(),
            text: format!("m{id}"),
            client_id: None,
            ..ChatMessage::default()
        }
    }

    /// A derived view of `parts` that counts how often it is recomputed.
    fn counted<T: Clone + PartialEq + Send + Sync + 'static>(
        room: LiveRoom,
        parts: Parts,
        f: fn(&RoomModel) -> T,
    ) -> (Memo<T>, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let memo = Memo::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            room.with(parts, f)
        });
        (memo, runs)
    }

    #[test]
    fn a_message_redraws_the_conversation_only_and_a_heartbeat_nothing() {
        let owner = Owner::new();
        owner.set();
        let room = LiveRoom::new(RoomModel::from_snapshot(RoomSnapshot {
            room: "lobby".into(),
            members: vec![member("Ada")],
            online: 1,
            recent: vec![msg(1)].into(),
            me: Some(member("Ada")),
            max_message_chars: 2000,
            page_size: 50,
            upto: 0,
        }));
        let (members, member_runs) = counted(room, Parts::MEMBERS, |m| m.members.len());
        let (entries, entry_runs) = counted(room, Parts::ENTRIES, |m| m.entries.len());
        assert_eq!((members.get(), entries.get()), (1, 1));

        room.change(|m| m.apply(ServerFrame::Message(msg(2))));
        assert_eq!((members.get(), entries.get()), (1, 2));
        assert_eq!(member_runs.load(Ordering::Relaxed), 1, "not the members");
        assert_eq!(entry_runs.load(Ordering::Relaxed), 2);

        room.change(|m| m.apply(ServerFrame::Heartbeat));
        assert_eq!((members.get(), entries.get()), (1, 2));
        assert_eq!(entry_runs.load(Ordering::Relaxed), 2, "nothing recomputed");

        room.change(|m| {
            m.apply(ServerFrame::Joined {
                member: member("Bob"),
            })
        });
        assert_eq!((members.get(), entries.get()), (2, 3));
        assert_eq!(member_runs.load(Ordering::Relaxed), 2);
    }
}
