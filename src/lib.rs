//! backlogd: a daemon that keeps the state of every open case and employee of a case-handling agency
//! and exposes its backlog as Prometheus metrics. See ARCHITECTURE.md for the map.

pub mod core;
pub mod wire;
