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
