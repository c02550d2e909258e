//! The sans-IO core: the event model, validation against the state, case and employee state, the
//! deadline (timer) index and the aggregates behind every metric.
//!
//! Architecture invariant: nothing in here does IO, reads a clock, spawns, locks or knows about
//! serde, hyper, tokio or Prometheus. Time comes in as a value (`now`), so every behaviour can be
//! tested deterministically with a fake clock.

pub mod aggregates;
pub mod event;
pub mod forecast;
pub mod history;
pub mod ids;
pub mod presence;
pub mod rolling;
pub mod settings;
pub mod state;
pub mod time;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use aggregates::{Aggregates, TrackAggregates};
pub use event::{Event, EventKind, EventType, RejectReason, Rejection};
pub use settings::CoreSettings;
pub use state::{
    Applied, EmployeeRow, OverdueCase, SettingsError, SnapshotError, State, TargetReport,
};
pub use time::EpochNanos;
