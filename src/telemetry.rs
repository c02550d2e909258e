//! The daemon's own metrics (ingest, store, config, build) as `prometheus` crate instruments, in one
//! explicit registry together with the process collector and the state collector.
//!
//! These counters describe this process: they start at zero on every start and do not include
//! events replayed from the log during recovery (Prometheus' `rate()` handles the reset). The domain
//! counters (cases registered, decided, …) are part of the state and survive restarts.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::core::event::{Event, EventType, RejectReason};

/// Registers `metric` in `registry` and hands it back.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// `backlogd_source_lag_messages`.
pub const SOURCE_LAG: &str = "backlogd_source_lag_messages";
/// `backlogd_source_connected`.
pub const SOURCE_CONNECTED: &str = "backlogd_source_connected";
/// `backlogd_source_messages_missed_total`.
pub const SOURCE_MISSED: &str = "backlogd_source_messages_missed_total";
/// `backlogd_source_stream_behind`.
pub const SOURCE_BEHIND: &str = "backlogd_source_stream_behind";

/// `backlogd_tls_certificate_not_after_timestamp_seconds`.
pub const TLS_NOT_AFTER: &str = "backlogd_tls_certificate_not_after_timestamp_seconds";

/// The stream source's own gauges (registered by `Telemetry::source_metrics`).
#[derive(Clone)]
pub struct SourceMetrics {
    pub lag: IntGauge,
    pub connected: IntGauge,
    /// Stream messages after the logged position that the stream no longer holds.
    pub missed: IntCounter,
    /// 1 while the stream's last sequence is below the logged position.
    pub behind: IntGauge,
    /// The daemon's count of events with non-ASCII ids, shared with the HTTP edge.
    pub non_ascii_ids: NonAsciiIds,
}

/// `backlogd_events_non_ascii_ids_total` and its log line: ids are compared byte for byte
/// (docs/events.md, "Ids"), so an id with a non-ASCII character may have look-alikes (NFC and NFD
/// spellings) that are other ids. Each such event is counted; a warning names the event and the
/// field (never the id's value) at most once a minute, with the count since the last line.
#[derive(Clone)]
pub struct NonAsciiIds {
    counter: IntCounter,
    /// When the last line was logged, and how many such events arrived since.
    logged: std::sync::Arc<std::sync::Mutex<(Option<std::time::Instant>, u64)>>,
}

impl NonAsciiIds {
    /// At most one warning in this interval.
    const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// Counts the parsed events of a batch that carry a non-ASCII id. The ASCII path takes no
    /// lock.
    pub fn observe<'a, R>(&self, events: impl IntoIterator<Item = &'a Result<Event, R>>)
    where
        R: 'a,
    {
        for event in events.into_iter().filter_map(|parsed| parsed.as_ref().ok()) {
            let Some(field) = event.non_ascii_id_field() else {
                continue;
            };
            self.counter.inc();
            // A poisoned lock only means another thread panicked while logging, and a panic
            // aborts the process: recover the value.
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            logged.1 += 1;
            if logged.0.is_none_or(|at| at.elapsed() >= Self::LOG_EVERY) {
                tracing::warn!(
                    event_id = %event.id.escape_debug(),
                    field,
                    events_since_last_line = logged.1,
                    "an event has a non-ASCII id; ids are compared byte for byte, so a look-alike \
                     spelling (NFC or NFD) is another id (docs/events.md, Ids; \
                     backlogd_events_non_ascii_ids_total counts them)"
                );
                *logged = (Some(std::time::Instant::now()), 0);
            }
        }
    }
}

pub struct Telemetry {
    pub registry: Registry,
    pub events_received: IntCounterVec,
    pub events_applied: IntCounterVec,
    pub events_duplicate: IntCounter,
    pub events_rejected: IntCounterVec,
    pub ingest_request_duration: Histogram,
    pub store_commit_duration: Histogram,
    pub config_last_reload_successful: Gauge,
    pub build_info: IntGaugeVec,
    pub series_dropped: IntCounter,
    pub replay_rejected: IntCounterVec,
    pub store_healthy: IntGauge,
    pub connections_refused: IntCounter,
    pub connections_reclaimed: IntCounter,
    pub requests_refused: IntCounterVec,
    pub inflight_bytes: IntGauge,
    pub metrics_auth_checks: IntCounter,
    pub metrics_auth_refused: IntCounterVec,
    pub ready: IntGauge,
    /// Damaged snapshots passed over at the last start (the state came from an older one).
    pub snapshots_damaged: IntGauge,
    /// Snapshots made durable by this process.
    pub snapshots_written: IntCounter,
    /// Reloads that found nothing changed and did nothing.
    pub reloads_unchanged: IntCounter,
    pub start_time: Gauge,
    pub non_ascii_ids: NonAsciiIds,
    /// `statvfs` of `store.path`, refreshed every `time.tick` (`crate::daemon`); NaN until the
    /// first reading and after a failed one.
    pub store_free_bytes: Gauge,
    pub store_filesystem_size_bytes: Gauge,
    /// `events_applied` per event type, indexed by the type's position in `EventType::ALL`.
    applied_by_type: Vec<IntCounter>,
    /// `events_rejected` per reason, indexed by the reason's position in `RejectReason::ALL`.
    rejected_by_reason: Vec<IntCounter>,
}

impl Telemetry {
    pub fn new() -> prometheus::Result<Telemetry> {
        let registry = Registry::new();
        // Each instrument is created and registered in one step: a family cannot be declared and
        // forgotten in the registry.
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help)?);
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help)?);
        let float_gauge = |name: &str, help: &str| register(&registry, Gauge::new(name, help)?);
        let counters = |name: &str, help: &str, label: &str| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), &[label])?,
            )
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            register(&registry, Histogram::with_opts(opts)?)
        };

        let mut telemetry = Telemetry {
            events_received: counters(
                "backlogd_events_received_total",
                "Events received by this process, per source (http, nats), whether applied or not.",
                "source",
            )?,
            events_applied: counters(
                "backlogd_events_applied_total",
                "Events applied to the state by this process, per event type (not counting replay).",
                "event_type",
            )?,
            events_duplicate: counter(
                "backlogd_events_duplicate_total",
                "Events ignored because their id was applied before.",
            )?,
            events_rejected: counters(
                "backlogd_events_rejected_total",
                "Events rejected, per reason.",
                "reason",
            )?,
            ingest_request_duration: histogram(
                "backlogd_ingest_request_duration_seconds",
                "Time from receiving a POST /v1/events request to answering it, commit included.",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )?,
            store_commit_duration: histogram(
                "backlogd_store_commit_duration_seconds",
                "Time to write and sync one group commit of the event log.",
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ],
            )?,
            config_last_reload_successful: float_gauge(
                "backlogd_config_last_reload_successful",
                "1 if the last configuration (re)load succeeded, 0 if it failed and the old one is kept.",
            )?,
            build_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "backlogd_build_info",
                        "Always 1; the version of the running binary.",
                    ),
                    &["version"],
                )?,
            )?,
            series_dropped: counter(
                "backlogd_series_dropped_total",
                "Employees whose per-employee series were dropped because limits.max_employee_series was reached.",
            )?,
            replay_rejected: counters(
                "backlogd_replay_rejected_total",
                "Logged events rejected when this process replayed the log at start, per reason: acknowledged events that are not in the state (should stay 0; see docs/runbooks.md).",
                "reason",
            )?,
            store_healthy: gauge(
                "backlogd_store_healthy",
                "1 while the event log accepts writes; 0 after a write or sync failed (ingestion is refused and the daemon exits to be restarted).",
            )?,
            connections_refused: counter(
                "backlogd_http_connections_refused_total",
                "Connections closed at once because server.max_connections were open and none of them was idle.",
            )?,
            connections_reclaimed: counter(
                "backlogd_http_connections_reclaimed_total",
                "Idle keep-alive connections closed to make room for a new connection because server.max_connections were open.",
            )?,
            requests_refused: counters(
                "backlogd_ingest_requests_refused_total",
                "Ingest requests answered 503 before reaching the engine, per cause (inflight_bytes: server.max_inflight_bytes reached; queue_full: the engine's queue was full; store_failed).",
                "cause",
            )?,
            inflight_bytes: gauge(
                "backlogd_ingest_inflight_bytes",
                "Bytes of ingest request bodies being read or waiting for the engine (limit: server.max_inflight_bytes).",
            )?,
            metrics_auth_checks: counter(
                "backlogd_metrics_auth_checks_total",
                "bcrypt checks of /metrics basic-auth passwords run (outcomes already remembered are not checked again).",
            )?,
            metrics_auth_refused: counters(
                "backlogd_metrics_auth_refused_total",
                "/metrics requests turned away without a password check, per cause (peer_busy: 429, the peer had a check waiting; queue_full: 503, server.metrics_auth_queue checks were waiting).",
                "cause",
            )?,
            ready: gauge(
                "backlogd_ready",
                "1 once the state is recovered from the store and ingestion is open; 0 while recovering and after the event log failed.",
            )?,
            snapshots_damaged: gauge(
                "backlogd_snapshots_damaged",
                "Damaged snapshots (checksum mismatch, unreadable) passed over at the last start: the state was recovered from an older snapshot and the log. Nonzero means the disk or someone changed snapshots.sqlite.",
            )?,
            snapshots_written: counter(
                "backlogd_snapshots_written_total",
                "Snapshots of the state written to snapshots.sqlite by this process (every store.snapshot_interval, snapshot_every_events or _bytes when something was logged, and at shutdown; never per reload).",
            )?,
            reloads_unchanged: counter(
                "backlogd_config_reloads_unchanged_total",
                "Reloads (SIGHUP, POST /-/reload) that found the configuration and the files it names unchanged and did nothing: no settings record, no snapshot.",
            )?,
            // Set here rather than read from /proc: the shipped unit's ProcSubset=pid hides
            // /proc/stat, without which the process collector's process_start_time_seconds cannot
            // be computed.
            start_time: float_gauge(
                "backlogd_start_time_seconds",
                "When this process started, in seconds since the epoch (restarts: changes() of it).",
            )?,
            non_ascii_ids: NonAsciiIds {
                counter: counter(
                    "backlogd_events_non_ascii_ids_total",
                    "Events received (parsed, whether applied or not) whose id or a case, employee, mentor or mentee id holds a non-ASCII character: ids are compared byte for byte, so look-alike spellings are different ids.",
                )?,
                logged: Default::default(),
            },
            store_free_bytes: float_gauge(
                "backlogd_store_free_bytes",
                "Bytes free for the daemon (not counting the root reserve) on the filesystem of store.path, read every time.tick; NaN when it cannot be read.",
            )?,
            store_filesystem_size_bytes: float_gauge(
                "backlogd_store_filesystem_size_bytes",
                "Size of the filesystem of store.path in bytes, read every time.tick; NaN when it cannot be read.",
            )?,
            registry: registry.clone(),
            applied_by_type: Vec::new(),
            rejected_by_reason: Vec::new(),
        };
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        telemetry
            .start_time
            .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        telemetry
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        telemetry.config_last_reload_successful.set(1.0);
        telemetry.store_healthy.set(1);
        telemetry.store_free_bytes.set(f64::NAN);
        telemetry.store_filesystem_size_bytes.set(f64::NAN);
        // Known label values start at zero so rates and alerts see the series from the start.
        for cause in ["inflight_bytes", "queue_full", "store_failed"] {
            telemetry.requests_refused.with_label_values(&[cause]);
        }
        for cause in ["peer_busy", "queue_full"] {
            telemetry.metrics_auth_refused.with_label_values(&[cause]);
        }
        for reason in RejectReason::ALL {
            telemetry
                .replay_rejected
                .with_label_values(&[reason.as_str()]);
        }
        telemetry.rejected_by_reason = RejectReason::ALL
            .iter()
            .map(|reason| {
                telemetry
                    .events_rejected
                    .with_label_values(&[reason.as_str()])
            })
            .collect();
        telemetry.applied_by_type = EventType::ALL
            .iter()
            .map(|event_type| {
                telemetry
                    .events_applied
                    .with_label_values(&[event_type.as_str()])
            })
            .collect();
        telemetry.events_received.with_label_values(&["http"]);
        Ok(telemetry)
    }

    /// Registers the stream source's gauges (only when a source is configured, so a daemon
    /// without one exports neither) and starts the `nats` series of `events_received` at zero.
    pub fn source_metrics(&self) -> prometheus::Result<SourceMetrics> {
        self.events_received.with_label_values(&["nats"]);
        Ok(SourceMetrics {
            lag: register(
                &self.registry,
                IntGauge::new(
                    SOURCE_LAG,
                    "Messages of the stream source's consumer not yet delivered to this process (the consumer's pending count).",
                )?,
            )?,
            connected: register(
                &self.registry,
                IntGauge::new(
                    SOURCE_CONNECTED,
                    "1 while the stream source is connected and consuming; 0 while it is not (it retries with backoff).",
                )?,
            )?,
            missed: register(
                &self.registry,
                IntCounter::new(
                    SOURCE_MISSED,
                    "Stream messages after the position this daemon logged that the stream no longer held when the source started reading (removed by its limits before they were read): events this daemon never saw. Per process.",
                )?,
            )?,
            behind: register(
                &self.registry,
                IntGauge::new(
                    SOURCE_BEHIND,
                    "1 while the stream's last sequence is below the position this daemon logged (the stream was purged or recreated): its messages up to that position are not read; 0 otherwise.",
                )?,
            )?,
            non_ascii_ids: self.non_ascii_ids.clone(),
        })
    }

    /// Registers the gauge of the listener certificate's not-after time (only with TLS, so a
    /// daemon without it exports none and no expiry alert can take its absence for 1970).
    pub fn tls_metrics(&self) -> prometheus::Result<Gauge> {
        register(
            &self.registry,
            Gauge::new(
                TLS_NOT_AFTER,
                "When the certificate the listener presents (the first of server.tls_cert_file) expires: its not-after time in seconds since the epoch, read at start and at every reload. Only with TLS.",
            )?,
        )
    }

    pub fn reject(&self, reason: RejectReason) {
        // `ALL` lists the variants in declaration order, so the discriminant is the index.
        self.rejected_by_reason[reason as usize].inc();
    }

    pub fn applied(&self, event_type: EventType) {
        // The label is looked up once at start, not hashed per event (it showed in profiles).
        self.applied_by_type[event_type as usize].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source's and the TLS families are documented in docs/metrics.md like those of the
    /// golden /metrics (which is a daemon without a source and without TLS, so the check there does
    /// not see them).
    #[test]
    fn source_and_tls_families_are_documented() {
        let telemetry = Telemetry::new().expect("instruments register");
        let _source = telemetry.source_metrics().expect("source gauges register");
        let _tls = telemetry.tls_metrics().expect("the TLS gauge registers");
        let doc = include_str!("../docs/metrics.md");
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&telemetry.registry.gather(), &mut text)
            .expect("encodes");
        let mut missing = Vec::new();
        let mut help = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split_once(' ').map_or("", |(_, h)| h);
            } else if let Some(rest) = line.strip_prefix("# TYPE ")
                && let Some((name, kind)) = rest.split_once(' ')
                && (name.starts_with("backlogd_source_") || name.starts_with("backlogd_tls_"))
            {
                let row = format!("| `{name}` | {kind} | {help} |");
                if !doc.contains(&row) {
                    missing.push(row);
                }
            }
        }
        assert!(text.contains("source=\"nats\""), "{text}");
        assert!(text.contains(TLS_NOT_AFTER), "{text}");
        assert!(
            missing.is_empty(),
            "docs/metrics.md lacks rows {missing:#?}"
        );
    }

    /// `applied` and `reject` index by discriminant: each must land on the series of its own name.
    #[test]
    fn per_event_counters_land_on_their_own_label() {
        let telemetry = Telemetry::new().expect("instruments register");
        for (i, event_type) in EventType::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                telemetry.applied(event_type);
            }
        }
        for (i, reason) in RejectReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                telemetry.reject(reason);
            }
        }
        for (i, event_type) in EventType::ALL.into_iter().enumerate() {
            let counted = telemetry
                .events_applied
                .with_label_values(&[event_type.as_str()])
                .get();
            assert_eq!(counted, i as u64 + 1, "{}", event_type.as_str());
        }
        for (i, reason) in RejectReason::ALL.into_iter().enumerate() {
            let counted = telemetry
                .events_rejected
                .with_label_values(&[reason.as_str()])
                .get();
            assert_eq!(counted, i as u64 + 1, "{}", reason.as_str());
        }
    }
}
