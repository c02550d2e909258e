//! The one integration-test binary: runs the real `backlogd` binary and checks what an operator
//! notices (HTTP answers, /metrics values, exit codes), never internals.
//!
//! Modules: `harness` starts daemons and speaks HTTP; `scenario` is the rich fixture before and
//! after restarts plus the overdue drill-down; `ingest` covers rejections and bad bodies;
//! `demo` runs `backlogd demo`; `durability` kills the daemon mid-stream; `metrics` lints /metrics; `config` covers check-config;
//! `operations` covers workforce metrics, reload, ingest auth, label modes, windows and forecast;
//! `tls` covers TLS on the listener and certificate rotation; `tls_client` the commands' HTTP client
//! against it (`--ca-file`, `SSL_CERT_FILE`, failures at once); `metrics_auth` basic auth on /metrics;
//! `targets` covers `target.announced` and `GET /v1/targets`; `forecast` `GET /v1/forecast` and
//! `backlogd forecast`; `integrity` damages a stopped store (snapshots, log tail) and checks that
//! the daemon refuses by name or starts with the figures the undamaged store gives; `reloads` a reload
//! storm.

mod config;
mod demo;
mod durability;
mod edge;
mod failure;
mod forecast;
mod harness;
mod ingest;
mod integrity;
mod metrics;
mod metrics_auth;
mod operations;
mod reloads;
mod scenario;
mod soak;
mod targets;
mod tls;
mod tls_client;
