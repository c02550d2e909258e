//! backlogd: a daemon that keeps the state of every open case and employee of a case-handling agency
//! and exposes its backlog as Prometheus metrics. See ARCHITECTURE.md for the map.

pub mod alert_replay;
pub mod api;
pub mod backfill;
pub mod client;
pub mod config;
pub use backlogd_core as core;
pub mod daemon;
pub mod engine;
pub mod forecast;
pub mod import;
pub mod instant;
pub mod metrics;
pub mod metrics_auth;
pub mod progress;
pub mod publish;
pub mod report;
pub mod send;
pub mod server;
pub mod simulate;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wire;
pub mod workforce;
