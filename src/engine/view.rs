//! The view: the aggregates as the engine publishes them, and the cell scrapes read them from.

use std::sync::{Arc, RwLock};

use crate::core::aggregates::{Aggregates, Flows};
use crate::core::{CoreSettings, EpochNanos, State};
use crate::workforce::{EdgeSettings, Workforce};

/// The aggregates as of one moment, published after every commit group and tick. Scrapes read the
/// latest one and never touch the live state.
#[derive(Debug, Clone)]
pub struct View {
    pub now: EpochNanos,
    pub settings: Arc<CoreSettings>,
    pub aggregates: Aggregates,
    pub max_overdue_nanos: Vec<EpochNanos>,
    pub flows: Flows,
    pub workforce: Arc<Workforce>,
    pub edge: Arc<EdgeSettings>,
    pub known_cases: u64,
    pub remembered_event_ids: u64,
}

/// The latest view, swapped atomically. The lock is held only to clone or replace an `Arc`. It
/// is empty until recovery is complete: nothing can serve a state that is not the recovered one.
#[derive(Debug, Default)]
pub struct ViewCell(RwLock<Option<Arc<View>>>);

impl ViewCell {
    /// The latest view, or `None` while the state is being recovered.
    pub fn latest(&self) -> Option<Arc<View>> {
        // A poisoned lock means a thread panicked while swapping an Arc, which cannot leave it
        // half-written; the Arc inside is still whole.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn publish(&self, view: View) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(view));
    }
}

/// The view of `state` as the engine publishes it.
pub fn view_of(
    state: &State,
    settings: Arc<CoreSettings>,
    workforce: Arc<Workforce>,
    edge: Arc<EdgeSettings>,
) -> View {
    View {
        flows: state.flows(),
        workforce,
        edge,
        now: state.now(),
        settings,
        aggregates: state.aggregates().clone(),
        max_overdue_nanos: state.max_overdue_nanos(),
        known_cases: state.known_cases(),
        remembered_event_ids: state.remembered_event_ids(),
    }
}
